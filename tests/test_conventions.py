"""Conventions reproduce each peer's numbers: against the peer's own code where it installs here
(torchmetrics, pytorch-msssim on CPU PyTorch), else against its algorithm written out independently
in this file (the provenance of each is in its docstring)."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.signal import convolve2d
from skimage import data, transform

import iqeval
from iqeval.cli import cli
from iqeval.conventions import CONVENTIONS
from iqeval.errors import ColorModeError, ConfigError, WindowSizeError
from iqeval.metrics import msssim_min_side

from .conftest import noisy


def _pair(shape=(203, 257), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """An 8-bit RGB pair of a natural image and a noisy copy (odd sizes on purpose)."""
    gt = (transform.resize(data.astronaut(), shape, anti_aliasing=True) * 255).round().astype(np.uint8)
    return noisy(gt, 9, seed=seed), gt


def _gauss(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - size // 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return np.outer(g, g) / np.outer(g, g).sum()


def _ssim_valid(x: np.ndarray, y: np.ndarray, L: float, cs_relu: bool = False) -> tuple[float, float]:
    """Wang's ssim_index.m: filter2(window, ., 'valid'), K = (0.01, 0.03); returns (mean SSIM, mean cs)."""
    w = _gauss()
    f = lambda a: convolve2d(a, w[::-1, ::-1], mode="valid")  # noqa: E731 - filter2 is a correlation
    mx, my = f(x), f(y)
    vx, vy, vxy = f(x * x) - mx * mx, f(y * y) - my * my, f(x * y) - mx * my
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    if cs_relu:
        cs = np.maximum(cs, 0)
    return float(((2 * mx * my + c1) / (mx * mx + my * my + c1) * cs).mean()), float(cs.mean())


def _psnr(x: np.ndarray, y: np.ndarray, L: float) -> float:
    return float(10 * np.log10(L * L / np.mean((x.astype(float) - y.astype(float)) ** 2)))


# ------------------------------------------------------------ peers run live


def _t(a: np.ndarray):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a.astype(np.float64), -1, 0)[None]))


def test_torchmetrics_ssim_psnr_and_msssim_live():
    tm = pytest.importorskip("torchmetrics.functional.image")
    pytest.importorskip("torchmetrics", minversion="1.4.2")
    pred, gt = _pair()
    x, y = pred / 255.0, gt / 255.0
    ours = iqeval.compare_images(x, y, convention="torchmetrics", metrics="ssim,psnr,msssim")
    # torchmetrics guesses the data range from the pixels unless told: it is told the dtype's
    assert ours["ssim"] == pytest.approx(
        tm.structural_similarity_index_measure(_t(x), _t(y), data_range=1.0).item(), abs=1e-9
    )
    assert ours["msssim"] == pytest.approx(
        tm.multiscale_structural_similarity_index_measure(_t(x), _t(y), data_range=1.0).item(), abs=1e-9
    )
    from torchmetrics.functional.image import peak_signal_noise_ratio

    # torchmetrics converts ln to log10 with a float32 constant (10 / ln 10): about 1e-6 dB apart
    assert ours["psnr"] == pytest.approx(peak_signal_noise_ratio(_t(x), _t(y), data_range=1.0).item(), abs=1e-5)


def test_pytorch_msssim_live():
    torch = pytest.importorskip("torch")
    pm = pytest.importorskip("pytorch_msssim")
    pred, gt = _pair()
    ours = iqeval.compare_images(pred, gt, metrics="msssim")["msssim"]  # the skimage convention's MS-SSIM
    w = torch.from_numpy(_gauss()[5] / _gauss()[5].sum())[None, None, None].repeat(3, 1, 1, 1)
    exact = pm.ms_ssim(_t(pred), _t(gt), data_range=255.0, win=w).item()
    assert ours == pytest.approx(exact, abs=1e-12)
    # with its own float32 window pytorch-msssim is about 1e-7 away
    assert ours == pytest.approx(pm.ms_ssim(_t(pred), _t(gt), data_range=255.0).item(), abs=1e-6)


# ------------------------------------------------------------ algorithms written out


def _y601(a: np.ndarray) -> np.ndarray:
    """BT.601 Y as MATLAB's rgb2ycbcr and BasicSR's bgr2ycbcr compute it, unrounded (16-235)."""
    a = a.astype(np.float64)
    return 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255


def test_basicsr_is_its_formula():
    """BasicSR calculate_psnr/calculate_ssim(test_y_channel=True, crop_border=4): float Y, 11x11 Gaussian, valid."""
    pred, gt = _pair()
    ours = iqeval.compare_images(pred, gt, convention="basicsr", scale=4)
    yp, yg = _y601(pred)[4:-4, 4:-4], _y601(gt)[4:-4, 4:-4]
    assert ours["ssim"] == pytest.approx(_ssim_valid(yp, yg, 255)[0], abs=1e-9)
    assert ours["psnr"] == pytest.approx(_psnr(yp, yg, 255), abs=1e-9)
    assert ours.info.crop_border == 4


def test_matlab_rounds_y_and_takes_gray_as_it_is():
    """MATLAB: Y = uint8(rgb2ycbcr(uint8 RGB)) rounds half away from zero; a gray image is its own Y."""
    pred, gt = _pair()
    ours = iqeval.compare_images(pred, gt, convention="matlab", scale=3)
    yp, yg = (np.floor(_y601(a) + 0.5)[3:-3, 3:-3] for a in (pred, gt))
    assert ours["ssim"] == pytest.approx(_ssim_valid(yp, yg, 255)[0], abs=1e-9)
    assert ours["psnr"] == pytest.approx(_psnr(yp, yg, 255), abs=1e-9)
    unrounded = iqeval.compare_images(pred, gt, convention="matlab", scale=3, y_rounding="none")
    assert abs(unrounded["psnr"] - ours["psnr"]) > 1e-3  # rounding is a real difference, not noise
    g_pred, g_gt = pred[..., 1], gt[..., 1]
    gray = iqeval.compare_images(g_pred, g_gt, convention="matlab")
    assert gray["psnr"] == pytest.approx(_psnr(g_pred, g_gt, 255), abs=1e-9)  # not 16 + 219 g / 255
    mapped = iqeval.compare_images(g_pred, g_gt, convention="basicsr")
    assert mapped["psnr"] == pytest.approx(_psnr(g_pred, g_gt, 255) + 20 * np.log10(255 / 219), abs=1e-9)


def _pool2(a: np.ndarray) -> np.ndarray:
    h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
    return a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def _msssim(x: np.ndarray, y: np.ndarray, L: float, pad: str, relu_map: bool = False) -> float:
    """Wang et al. (2003) per channel, product of cs^w over scales 1-4 and ssim^w at scale 5."""
    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    values = []
    for c in range(x.shape[2]):
        a, b = x[..., c].astype(float), y[..., c].astype(float)
        terms = []
        for level in range(5):
            s, cs = _ssim_valid(a, b, L, cs_relu=relu_map)
            terms.append(s if level == 4 else cs)
            if pad == "symmetric_end":  # TF: odd sizes extended at the end by the last row/column
                a, b = (np.pad(v, ((0, v.shape[0] % 2), (0, v.shape[1] % 2)), mode="symmetric") for v in (a, b))
            elif pad == "zeros":  # avg_pool2d(padding=size % 2): zeros on both sides, counted
                a, b = (np.pad(v, ((v.shape[0] % 2,) * 2, (v.shape[1] % 2,) * 2)) for v in (a, b))
            elif pad == "edge_start":  # piq: replicate the first row and column when a side is odd
                p = max(a.shape[0] % 2, a.shape[1] % 2)
                a, b = (np.pad(v, ((p, 0), (p, 0)), mode="edge") for v in (a, b))
            a, b = _pool2(a), _pool2(b)
        t = np.array(terms)
        if not relu_map:
            t = np.maximum(t, 0)
        values.append(np.prod(t ** np.array(weights)))
    return float(np.mean(values))


def test_tf_is_its_algorithm():
    """tf.image.ssim / ssim_multiscale: RGB, 11x11 Gaussian, VALID, channel mean; odd sizes padded at the end."""
    pred, gt = _pair()
    ours = iqeval.compare_images(pred, gt, convention="tf", metrics="ssim,psnr,msssim")
    ssim = np.mean([_ssim_valid(pred[..., c].astype(float), gt[..., c].astype(float), 255)[0] for c in range(3)])
    assert ours["ssim"] == pytest.approx(ssim, abs=1e-9)
    assert ours["psnr"] == pytest.approx(_psnr(pred, gt, 255), abs=1e-9)
    assert ours["msssim"] == pytest.approx(_msssim(pred, gt, 255, "symmetric_end"), abs=1e-9)


def test_piq_downsamples_first():
    """piq.ssim(downsample=True): average pooling by f = max(1, round(min(H, W) / 256)), then VALID Gaussian."""
    pred, gt = _pair((600, 520))  # f = 2
    ours = iqeval.compare_images(pred / 255.0, gt / 255.0, convention="piq", metrics="ssim,msssim")

    def pool(a: np.ndarray) -> np.ndarray:
        return np.stack([_pool2(a[..., c] / 255.0) for c in range(3)], -1)

    px, gx = pool(pred), pool(gt)
    ssim = np.mean([_ssim_valid(px[..., c], gx[..., c], 1.0)[0] for c in range(3)])
    assert ours["ssim"] == pytest.approx(ssim, abs=1e-9)
    assert ours["msssim"] == pytest.approx(_msssim(pred / 255.0, gt / 255.0, 1.0, "edge_start"), abs=1e-9)
    off = iqeval.compare_images(pred / 255.0, gt / 255.0, convention="piq", downsample="none")
    assert abs(off["ssim"] - ours["ssim"]) > 1e-3


def test_pyiqa_is_its_algorithm():
    """pyiqa 'ssim': Y of YIQ on the 8-bit grid (torch.round: half to even), cs map clipped at 0; 'psnr' on RGB."""
    pred, gt = _pair()
    x, y = pred / 255.0, gt / 255.0
    ours = iqeval.compare_images(x, y, convention="pyiqa", metrics="ssim,psnr,msssim")

    def yiq(a: np.ndarray) -> np.ndarray:
        return np.rint(255 * (0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]))

    assert ours["ssim"] == pytest.approx(_ssim_valid(yiq(x), yiq(y), 255, cs_relu=True)[0], abs=1e-9)
    assert ours["psnr"] == pytest.approx(_psnr(x, y, 1.0), abs=1e-9)  # RGB, not Y
    assert ours["msssim"] == pytest.approx(_msssim(yiq(x)[..., None], yiq(y)[..., None], 255, "zeros", True), abs=1e-9)


# ------------------------------------------------------------ the machinery


def test_every_convention_is_listed_and_documented():
    result = CliRunner().invoke(cli, ["conventions"])
    assert result.exit_code == 0
    for name in ("skimage", "basicsr", "matlab", "tf", "torchmetrics", "piq", "pyiqa"):
        assert name in CONVENTIONS
        assert f"\n{name}\n" in "\n" + result.output
        assert CONVENTIONS[name].reference and CONVENTIONS[name].tested


def test_explicit_options_override_with_a_note_and_reports_record_everything(tmp_path):
    pred, gt = _pair((64, 80))
    for side, a in (("pred", pred), ("gt", gt)):
        (tmp_path / side).mkdir()
        iio.imwrite(tmp_path / side / "a.png", a)
    out = tmp_path / "r.json"
    args = ["compare", str(tmp_path / "pred"), str(tmp_path / "gt"), "--convention", "matlab", "--color", "rgb"]
    result = CliRunner().invoke(cli, [*args, "--json", str(out), "--scale", "2"])
    assert result.exit_code == 0, result.output
    assert "Note: --color rgb overrides convention 'matlab' (--color y)" in result.stderr
    config = json.loads(out.read_text())["config"]
    assert (config["convention"], config["color"], config["y_rounding"], config["crop_border"]) == (
        "matlab",
        "rgb",
        "half_away",
        2,
    )
    assert config["overrides"] == ["color='rgb' overrides convention 'matlab' (color='y')"]
    # a baseline under another convention is refused
    again = CliRunner().invoke(cli, ["compare", str(tmp_path / "pred"), str(tmp_path / "gt"), "--baseline", str(out)])
    assert again.exit_code == 2
    assert "convention='matlab' vs 'skimage'" in again.output


def test_scale_and_mod_crop(tmp_path):
    gt = _pair((66, 81))[1]  # not a multiple of 4
    pred = noisy(gt[:64, :80], 5)
    with pytest.raises(Exception, match=r"not a multiple of scale 4: pass mod_crop=.gt. to cut it"):
        iqeval.compare_images(pred, gt, scale=4)
    r = iqeval.compare_images(pred, gt, scale=4, mod_crop="gt")
    expected = iqeval.compare_images(pred, gt[:64, :80], crop_border=4)
    assert r.scores == expected.scores
    assert r.info.conversions == ("gt: 81x66 cut to 80x64, a multiple of scale 4 (mod_crop='gt')",)
    with pytest.raises(ConfigError, match="mod_crop='gt' needs scale="):
        iqeval.Options(mod_crop="gt")


def test_pred_name_template_pairs_sr_outputs(tmp_path):
    pred, gt = _pair((48, 48))
    for stem in ("0801", "0802"):
        (tmp_path / "gt").mkdir(exist_ok=True)
        (tmp_path / "pred").mkdir(exist_ok=True)
        iio.imwrite(tmp_path / "gt" / f"{stem}.png", gt)
        iio.imwrite(tmp_path / "pred" / f"{stem}_x4_SR.png", pred)
    run = iqeval.run(iqeval.CompareConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", pred_name="{stem}_x4_SR", jobs=1))
    assert [i.id for i in run.items] == ["0801", "0802"] and run.pred_only == ()
    with pytest.raises(ConfigError, match=r"must contain \{stem\} exactly once"):
        iqeval.run(iqeval.CompareConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", pred_name="x4"))


def test_msssim_names_its_minimum_size():
    pred, gt = _pair((150, 300))
    with pytest.raises(WindowSizeError) as exc:
        iqeval.compare_images(pred, gt, metrics="msssim")
    assert str(exc.value) == (
        "pred: 300x150 is too small for MS-SSIM: 5 scales with an 11x11 window need at least 161x161 "
        "(msssim='pytorch_msssim')"
    )
    assert msssim_min_side("torchmetrics") == 176  # floor pooling loses more


@pytest.mark.parametrize(
    ("convention", "flip"),
    [
        ("matlab", {"y_rounding": "none"}),
        ("matlab", {"gray_as_y": "map"}),
        ("piq", {"downsample": "none"}),
        ("torchmetrics", {"ssim_border": "valid"}),
        ("basicsr", {"crop_border": 0}),
    ],
)
def test_mutation_each_setting_changes_the_number(convention, flip):
    # flipping one setting of a convention must move its number: the written-out tests above would notice
    pred, gt = _pair((600, 520))  # large enough for piq to downsample
    if "gray_as_y" in flip:
        pred, gt = pred[..., 0], gt[..., 0]
    base = iqeval.compare_images(pred, gt, convention=convention, scale=4)
    flipped = iqeval.compare_images(pred, gt, convention=convention, scale=4, **flip)
    assert abs(base["ssim"] - flipped["ssim"]) > 1e-6 or abs(base["psnr"] - flipped["psnr"]) > 1e-6


@pytest.mark.parametrize("convention", list(CONVENTIONS))
def test_both_engines_agree_on_every_convention(convention):
    # the fast engine runs the compiled kernel for every variant; the skimage engine SciPy's filters
    pred, gt = _pair((600, 520))
    metrics = "ssim,psnr,mse,msssim"
    # ffmpeg's planes are a video's; on an image its 8x8-block SSIM scores the RGB channels
    extra = {"color": "rgb"} if convention == "ffmpeg" else {}
    fast = iqeval.compare_images(pred, gt, convention=convention, scale=2, metrics=metrics, **extra)
    ref = iqeval.compare_images(pred, gt, convention=convention, scale=2, metrics=metrics, engine="skimage", **extra)
    for m in ("ssim", "psnr", "msssim"):
        assert fast[m] == pytest.approx(ref[m], abs=1e-9), m
    assert fast["mse"] == pytest.approx(ref["mse"], rel=1e-12)


def test_the_ffmpeg_convention_on_images_says_what_to_do():
    pred, gt = _pair((64, 64))
    with pytest.raises(ColorModeError, match="color='yuv' scores the planes of planar YUV videos"):
        iqeval.compare_images(pred, gt, convention="ffmpeg")
    with pytest.raises(ColorModeError, match="ssim_kernel='ffmpeg' scores integer samples"):
        iqeval.compare_images(pred, gt, convention="ffmpeg", color="y")
