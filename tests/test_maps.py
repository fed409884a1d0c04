"""SSIM and error maps: the values, the pictures and the command line."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner
from skimage.metrics import structural_similarity

from iqeval import Options
from iqeval.cli import cli
from iqeval.evaluate import CompareConfig, evaluate
from iqeval.maps import LUTS, colorize, error_map, render, safe_name, ssim_map, worst
from iqeval.prepare import prepare

from .conftest import noisy


@pytest.mark.parametrize("kernel", ["uniform", "gaussian"])
def test_ssim_map_is_skimages_full_map(rgb, kernel):
    pred = noisy(rgb, 10)
    options = Options(ssim_kernel=kernel)
    kw = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False} if kernel == "gaussian" else {}
    _, full = structural_similarity(rgb, pred, data_range=255, channel_axis=-1, full=True, **kw)
    np.testing.assert_allclose(ssim_map(prepare(pred, rgb, options), options), full.mean(axis=2), atol=1e-12)


def test_error_map_is_mean_absolute_difference(rgb):
    pred = noisy(rgb, 10)
    expected = np.abs(pred.astype(float) - rgb.astype(float)).mean(axis=2)
    np.testing.assert_array_equal(error_map(prepare(pred, rgb, Options())), expected)


def test_colorize_clips_and_uses_the_lut_ends():
    out = colorize(np.array([[-1.0, 0.0, 0.5, 1.0, 2.0]]), 0.0, 1.0, "viridis")
    assert out.shape == (1, 5, 3) and out.dtype == np.uint8
    assert (out[0, 0] == LUTS["viridis"][0]).all() and (out[0, 1] == LUTS["viridis"][0]).all()
    assert (out[0, 3] == LUTS["viridis"][255]).all() and (out[0, 4] == LUTS["viridis"][255]).all()


def test_render_adds_title_and_colour_bar():
    values = np.linspace(0, 1, 64 * 80).reshape(64, 80)
    img = render(values, "SSIM map", 0.0, 1.0, "viridis")
    assert img.shape[0] == 64 + 18 + 4 and img.shape[1] >= 80 + 8 + 16
    # the body is the colour-mapped values, placed under the title
    np.testing.assert_array_equal(img[18 : 18 + 64, :80], colorize(values, 0.0, 1.0, "viridis"))
    # the bar runs from the top colour (vmax) to the bottom colour (vmin)
    assert (img[18, 80 + 8 + 2] == LUTS["viridis"][255]).all()
    assert (img[18 + 63, 80 + 8 + 2] == LUTS["viridis"][0]).all()


def test_safe_name():
    assert safe_name("a/b c/x") == "a__b_c__x"


def test_worst_orders_by_first_metric(tmp_path, write_png, rgb):
    for i, sigma in enumerate((2, 30, 10)):
        write_png(f"gt/{i}x.png", rgb)
        write_png(f"pred/{i}x.png", noisy(rgb, sigma, seed=i))
    results = list(evaluate(CompareConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", jobs=1)))
    assert [r.id for r in worst(results, 2)] == ["1x", "2x"]
    mse_first = list(
        evaluate(CompareConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", jobs=1, options=Options(metrics=("mse",))))
    )
    assert [r.id for r in worst(mse_first, 3)] == ["1x", "2x", "0x"]


def test_cli_maps_single_pair(tmp_path, write_png, rgb):
    gt = write_png("gt.png", rgb)
    pred = write_png("pred.png", noisy(rgb, 8))
    result = CliRunner().invoke(cli, ["compare", str(pred), str(gt), "--maps", str(tmp_path / "maps")])
    assert result.exit_code == 0, result.output
    ssim_png = iio.imread(tmp_path / "maps" / "pred.ssim.png")
    error_png = iio.imread(tmp_path / "maps" / "pred.error.png")
    h, w = rgb.shape[:2]
    assert ssim_png.shape[0] == h + 22 and error_png.shape[0] == h + 22
    options = Options()
    expected = colorize(ssim_map(prepare(noisy(rgb, 8), rgb, options), options), 0.0, 1.0, "viridis")
    np.testing.assert_array_equal(ssim_png[18 : 18 + h, :w], expected)


def test_cli_maps_for_worst_items_and_worst_frame(tmp_path, write_png, rgb):
    for i, sigma in enumerate((2, 30, 10)):
        write_png(f"gt/g/{chr(97 + i)}.png", rgb)
        write_png(f"pred/g/{chr(97 + i)}.png", noisy(rgb, sigma, seed=i))
    for i in range(3):  # a sequence whose frame 1 is the bad one
        write_png(f"gt/clip/{i}.png", rgb)
        write_png(f"pred/clip/{i}.png", noisy(rgb, 80 if i == 1 else 35, seed=i))
    out = tmp_path / "maps"
    result = CliRunner().invoke(
        cli, ["compare", str(tmp_path / "pred"), str(tmp_path / "gt"), "--maps", str(out), "--worst", "2", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "clip.frame00001.error.png",
        "clip.frame00001.ssim.png",
        "g__b.error.png",
        "g__b.ssim.png",
    ]
