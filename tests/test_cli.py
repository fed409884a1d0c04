"""The command line: exact user-facing text and exit codes."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from iqeval.cli import cli

from .conftest import noisy


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_single_pair_prints_scores_and_facts(write_png, rgb):
    gt = write_png("gt.png", rgb)
    pred = write_png("pred.png", np.clip(rgb.astype(int) + 3, 0, 255).astype(np.uint8))
    result = run("compare", str(pred), str(gt))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[2] == "size        112x96, 3 channels"
    assert lines[3] == "dtype       uint8"
    assert lines[4] == "data range  255 (dtype uint8)"
    assert lines[5] == "colour      rgb"
    assert lines[6] == "crop        none"
    assert lines[7] == "ssim window uniform 7x7 window, sample covariance"
    assert lines[9].startswith("PSNR        ") and lines[9].endswith(" dB")
    mse = ((np.clip(rgb.astype(int) + 3, 0, 255) - rgb) ** 2).mean()
    assert lines[10] == f"MSE         {mse:.6g}"


def test_identical_pair_says_inf(write_png, rgb):
    gt = write_png("gt.png", rgb)
    result = run("compare", str(gt), str(gt), "--metrics", "psnr")
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "PSNR        inf dB  (identical images)"


def test_sr_convention_output(write_png, rgb):
    gt = write_png("gt.png", rgb)
    pred = write_png("pred.png", noisy(rgb, 5))
    result = run("compare", str(pred), str(gt), "--color", "y", "--ssim-kernel", "gaussian", "--crop-border", "4")
    assert result.exit_code == 0
    assert "crop        4 px (scored 104x88)" in result.output
    assert "ssim window gaussian sigma=1.5, 11x11 window, population covariance" in result.output


def test_json_to_stdout_is_strict(write_png, rgb):
    gt = write_png("gt.png", rgb)
    result = run("compare", str(gt), str(gt), "--json", "-")
    assert result.exit_code == 0
    doc = json.loads(result.output, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert doc["scores"] == {"ssim": 1.0, "psnr": "inf", "mse": 0.0}
    assert doc["info"]["data_range"] == 255.0
    assert doc["schema_version"] == 1


def test_missing_file_is_one_line_exit_1(tmp_path, write_png, rgb):
    gt = write_png("gt.png", rgb)
    result = run("compare", str(tmp_path / "missing.png"), str(gt))
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'missing.png'}: no such file\n"


def test_empty_file_exit_1(tmp_path, write_png, rgb):
    gt = write_png("gt.png", rgb)
    (tmp_path / "empty.png").write_bytes(b"")
    result = run("compare", str(tmp_path / "empty.png"), str(gt))
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'empty.png'}: file is empty\n"


def test_truncated_file_exit_1(write_png, rgb):
    gt = write_png("gt.png", rgb)
    bad = write_png("bad.png", rgb)
    bad.write_bytes(bad.read_bytes()[:300])
    result = run("compare", str(bad), str(gt))
    assert result.exit_code == 1
    assert result.output == f"Error: {bad}: cannot read image: corrupt or truncated data\n"


def test_non_image_exit_1(tmp_path, write_png, rgb):
    gt = write_png("gt.png", rgb)
    (tmp_path / "a.png").write_text("hello")
    result = run("compare", str(tmp_path / "a.png"), str(gt))
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'a.png'}: cannot read image: not a recognised image format\n"


def test_size_mismatch_exit_1(write_png, rgb):
    a = write_png("a.png", rgb)
    b = write_png("b.png", rgb[:90])
    result = run("compare", str(a), str(b))
    assert result.exit_code == 1
    assert result.output == f"Error: size mismatch: {a} is 112x96 but {b} is 112x90\n"


def test_gray_vs_rgb_exit_1(write_png, rgb):
    a = write_png("a.png", rgb[..., 0])
    b = write_png("b.png", rgb)
    result = run("compare", str(a), str(b))
    assert result.exit_code == 1
    assert result.output == f"Error: {a} is gray but {b} is RGB; use --color gray or --color y to compare them\n"
    assert run("compare", str(a), str(b), "--color", "gray").exit_code == 0


def test_too_small_for_window_exit_1(write_png):
    a = write_png("a.png", np.zeros((5, 5), np.uint8))
    result = run("compare", str(a), str(a))
    assert result.exit_code == 1
    assert (
        result.output == f"Error: {a}: 5x5 is smaller than the 7x7 SSIM window; pass an odd --win-size of at most 5\n"
    )


def test_float_out_of_range_exit_1(tmp_path):
    path = tmp_path / "f.tif"
    np.random.default_rng(0)
    import imageio.v3 as iio

    iio.imwrite(path, np.full((16, 16), 2.0, dtype=np.float32))
    result = run("compare", str(path), str(path))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: float values lie in [2, 2], outside [0, 1]; pass --data-range to state their range\n"
    )
    assert run("compare", str(path), str(path), "--data-range", "4").exit_code == 0


def test_unsupported_dtype_exit_1(tmp_path):
    import imageio.v3 as iio

    path = tmp_path / "i.tif"
    iio.imwrite(path, np.zeros((16, 16), dtype=np.int16))
    result = run("compare", str(path), str(path))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: unsupported dtype int16; ")


def test_bad_option_is_usage_error_exit_2(write_png, rgb):
    a = write_png("a.png", rgb)
    result = run("compare", str(a), str(a), "--win-size", "4")
    assert result.exit_code == 2
    assert "Error: SSIM window size must be an odd integer of at least 3, got 4" in result.output
    assert run("compare", str(a), str(a), "--metrics", "ssim,foo").exit_code == 2
