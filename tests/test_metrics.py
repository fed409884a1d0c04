"""Metric values against exact answers, skimage, published values and BasicSR."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.lib.stride_tricks import sliding_window_view
from skimage import data
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from iqeval import compare_images
from iqeval.errors import ConfigError
from iqeval.metrics import mse, parse_metrics, psnr, ssim

from .conftest import noisy

ENGINES = ["fast", "skimage"]

# skimage's own reference pair (skimage/metrics/tests/test_structural_similarity.py)
np.random.seed(5)
CAM = data.camera()
CAM_NOISY = np.clip(CAM + 20.0 * np.random.randn(*CAM.shape), 0, 255).astype(np.uint8)
MSSIM_IPOL = 0.357959091663361  # IPOL imdiff (g_lmii), Gaussian SSIM, quoted by skimage's tests
MSSIM_SKIMAGE_0_17 = 0.3674518327910367  # skimage 0.17 default SSIM, quoted by skimage's tests


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("d", [1, 3, 17, 100])
def test_constant_offset_gives_d_squared(engine, d):
    gt = np.full((32, 40, 3), 60, dtype=np.uint8)
    r = compare_images(gt + d, gt, engine=engine)
    assert r["mse"] == d * d
    assert r["psnr"] == pytest.approx(10 * math.log10(255**2 / d**2), abs=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
def test_uint16_constant_offset_uses_65535(engine):
    gt = np.full((16, 16), 30000, dtype=np.uint16)
    r = compare_images(gt + 300, gt, engine=engine)
    assert r["mse"] == 90000.0
    assert r["psnr"] == pytest.approx(10 * math.log10(65535**2 / 90000), abs=1e-12)
    assert r.info.data_range == 65535


@pytest.mark.parametrize("engine", ENGINES)
def test_identical_images_give_ssim_one_and_psnr_inf(engine, rgb):
    r = compare_images(rgb, rgb.copy(), engine=engine)
    assert r["ssim"] == 1.0
    assert r["psnr"] == math.inf
    assert r["mse"] == 0.0


@pytest.mark.parametrize("engine", ENGINES)
def test_published_reference_values(engine):
    gauss = compare_images(CAM_NOISY, CAM, ssim_kernel="gaussian", engine=engine, metrics="ssim")
    assert gauss["ssim"] == pytest.approx(MSSIM_IPOL, abs=1e-3)  # the published tolerance
    uniform = compare_images(CAM_NOISY, CAM, engine=engine, metrics="ssim")
    assert uniform["ssim"] == pytest.approx(MSSIM_SKIMAGE_0_17, abs=1e-7)


@pytest.mark.parametrize("engine", ENGINES)
def test_rgb_matches_skimage_called_directly(engine, rgb):
    pred = noisy(rgb, 12)
    r = compare_images(pred, rgb, engine=engine)
    assert r["ssim"] == pytest.approx(structural_similarity(rgb, pred, data_range=255, channel_axis=-1), abs=1e-12)
    assert r["psnr"] == pytest.approx(peak_signal_noise_ratio(rgb, pred, data_range=255), abs=1e-10)
    assert r["mse"] == pytest.approx(mean_squared_error(rgb, pred), rel=1e-14)


def _gaussian_window() -> np.ndarray:
    x = np.arange(-5, 6, dtype=np.float64)
    k = np.exp(-(x**2) / (2 * 1.5**2))
    k /= k.sum()
    return np.outer(k, k)


def basicsr_psnr_ssim(pred: np.ndarray, gt: np.ndarray, crop: int) -> tuple[float, float]:
    """BasicSR's calculate_psnr / calculate_ssim (test_y_channel=True), written out.

    Crop first, then Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255 in float,
    then PSNR with peak 255 and SSIM with an 11x11 Gaussian window (sigma 1.5)
    over the 'valid' region, population covariance, C1=(0.01*255)^2, C2=(0.03*255)^2.
    """
    p = pred[crop:-crop, crop:-crop].astype(np.float64)
    g = gt[crop:-crop, crop:-crop].astype(np.float64)

    def y(img: np.ndarray) -> np.ndarray:
        return 16.0 + (65.481 * img[..., 0] + 128.553 * img[..., 1] + 24.966 * img[..., 2]) / 255.0

    p, g = y(p), y(g)
    psnr_ref = 10.0 * math.log10(255.0**2 / np.mean((p - g) ** 2))
    w = _gaussian_window()

    def filt(a: np.ndarray) -> np.ndarray:
        return np.einsum("ijkl,kl->ij", sliding_window_view(a, (11, 11)), w)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = filt(p), filt(g)
    s1 = filt(p * p) - mu1**2
    s2 = filt(g * g) - mu2**2
    s12 = filt(p * g) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
    return psnr_ref, float(ssim_map.mean())


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sigma", [3.0, 10.0])
def test_super_resolution_convention_equals_basicsr(engine, sigma):
    gt = data.astronaut()[:120, :136]
    pred = noisy(gt, sigma, seed=7)
    ref_psnr, ref_ssim = basicsr_psnr_ssim(pred, gt, crop=4)
    r = compare_images(pred, gt, color="y", ssim_kernel="gaussian", crop_border=4, engine=engine)
    assert abs(r["psnr"] - ref_psnr) < 1e-4
    assert abs(r["ssim"] - ref_ssim) < 1e-6


def test_metric_functions_directly():
    a = np.full((8, 8), 10.0)
    assert mse(a, a + 2) == 4.0
    assert psnr(a, a, data_range=1.0) == math.inf
    assert ssim(a, a, data_range=255) == 1.0


def test_parse_metrics_orders_and_rejects_unknown():
    assert parse_metrics("mse, ssim,mse") == ("ssim", "mse")
    with pytest.raises(ConfigError, match="unknown metric 'lpips'"):
        parse_metrics("ssim,lpips")
    with pytest.raises(ConfigError, match="no metric selected"):
        parse_metrics(" , ")


images = arrays(np.uint8, st.tuples(st.integers(7, 24), st.integers(7, 24)))


@settings(max_examples=40, deadline=None)
@given(images)
def test_property_ssim_of_self_is_one(x):
    r = compare_images(x, x)
    assert r["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert r["psnr"] == math.inf


@settings(max_examples=40, deadline=None)
@given(images, st.integers(0, 2**32 - 1))
def test_property_symmetry(x, seed):
    y = np.random.default_rng(seed).integers(0, 256, x.shape, dtype=np.uint8)
    a, b = compare_images(x, y), compare_images(y, x)
    assert a["ssim"] == pytest.approx(b["ssim"], abs=1e-12)
    assert a["psnr"] == b["psnr"]
    assert a["mse"] == b["mse"]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_property_psnr_falls_as_noise_grows(seed):
    gt = np.full((24, 24), 128, dtype=np.uint8)
    noise = np.random.default_rng(seed).standard_normal(gt.shape)
    previous = math.inf
    for amplitude in (1, 4, 16, 64):
        pred = np.clip(np.rint(128 + amplitude * noise), 0, 255).astype(np.uint8)
        value = compare_images(pred, gt, metrics="psnr")["psnr"]
        assert value <= previous
        previous = value
    assert previous < math.inf
