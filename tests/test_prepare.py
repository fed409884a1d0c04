"""Colour modes, data ranges, alpha policy, crop and the errors for bad pairs."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from iqeval import Options, compare_images
from iqeval.errors import (
    ColorModeError,
    ConfigError,
    DataRangeError,
    DtypeError,
    ShapeMismatchError,
    WindowSizeError,
)
from iqeval.prepare import prepare

from .conftest import noisy


def test_y_channel_is_matlab_bt601_unrounded(rgb):
    prep = prepare(rgb, rgb, Options(color="y"))
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    expected = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    np.testing.assert_allclose(prep.pred, expected, rtol=0, atol=1e-12)
    assert prep.pred.min() >= 16.0 and prep.pred.max() <= 235.0
    assert prep.info.data_range == 255.0


def test_y_of_white_and_black_is_235_and_16():
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    img[:4] = 255
    prep = prepare(img, img, Options(color="y", win_size=3))
    assert prep.pred[0, 0] == pytest.approx(235.0, abs=1e-12)
    assert prep.pred[-1, 0] == 16.0


def test_gray_mode_matches_skimage_rgb2gray(rgb):
    pred = noisy(rgb, 10)
    r = compare_images(pred, rgb, color="gray", engine="skimage")
    g_ref, p_ref = rgb2gray(rgb) * 255, rgb2gray(pred) * 255
    assert r["ssim"] == pytest.approx(structural_similarity(g_ref, p_ref, data_range=255), abs=1e-9)
    assert r["mse"] == pytest.approx(mean_squared_error(g_ref, p_ref), rel=1e-9)


def test_gray_against_rgb_needs_gray_or_y(rgb):
    gray = rgb[..., 1]
    with pytest.raises(ColorModeError) as exc:
        compare_images(gray, rgb)
    assert str(exc.value) == "pred is gray but gt is RGB; use color='gray' or color='y' to compare them"
    r = compare_images(gray, rgb, color="gray")
    assert 0 < r["ssim"] < 1
    r = compare_images(gray, rgb, color="y")
    assert 0 < r["ssim"] < 1


def test_float_data_uses_range_one_and_rejects_outside():
    gt = np.linspace(0, 1, 256).reshape(16, 16)
    pred = np.clip(gt + 0.01, 0, 1)
    r = compare_images(pred, gt)
    assert r.info.data_range == 1.0
    assert r["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, pred, data_range=1.0), abs=1e-10)
    with pytest.raises(DataRangeError) as exc:
        compare_images(gt * 255, gt)
    assert str(exc.value) == "pred: float values lie in [0, 255], outside [0, 1]; pass data_range= to state their range"
    r = compare_images(gt * 255, gt * 255, data_range=255)
    assert r.info.data_range == 255


def test_float_nan_is_an_error():
    gt = np.zeros((8, 8))
    bad = gt.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataRangeError, match="pred: contains NaN or infinite values"):
        compare_images(bad, gt)


def test_data_range_override_for_12_bit_in_uint16():
    gt = np.full((16, 16), 2000, dtype=np.uint16)
    r = compare_images(gt + 5, gt, data_range=4095)
    assert r["psnr"] == pytest.approx(10 * np.log10(4095**2 / 25), abs=1e-12)
    assert r.info.data_range_source == "data_range"
    with pytest.raises(DataRangeError, match="pred: values reach 5000, above data_range=4095"):
        compare_images(gt + 3000, gt, data_range=4095)


def test_mixed_dtypes_are_rescaled_to_unit_range():
    gt16 = (np.arange(256, dtype=np.uint16).reshape(16, 16)) * 257  # exact 8-bit values in 16 bits
    pred8 = np.clip(np.arange(256).reshape(16, 16) + 1, 0, 255).astype(np.uint8)
    r = compare_images(pred8, gt16)
    assert r.info.data_range == 1.0
    ref = mean_squared_error(gt16 / 65535.0, pred8 / 255.0)
    assert r["mse"] == pytest.approx(ref, rel=1e-12)
    assert "rescaled" in r.info.data_range_source


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint32, np.bool_, np.complex64])
def test_unsupported_dtype(dtype):
    a = np.zeros((8, 8), dtype=dtype)
    with pytest.raises(DtypeError, match=f"pred: unsupported dtype {np.dtype(dtype)}"):
        compare_images(a, a)


def test_size_mismatch_names_both_sizes():
    with pytest.raises(ShapeMismatchError) as exc:
        compare_images(np.zeros((10, 12), np.uint8), np.zeros((10, 14), np.uint8))
    assert str(exc.value) == "size mismatch: pred is 12x10 but gt is 14x10"


def test_image_smaller_than_window():
    a = np.zeros((6, 20), np.uint8)
    with pytest.raises(WindowSizeError) as exc:
        compare_images(a, a)
    assert str(exc.value) == "pred: 20x6 is smaller than the 7x7 SSIM window; pass an odd win_size= of at most 6"
    assert compare_images(a, a, win_size=5)["ssim"] == 1.0
    b = np.zeros((16, 16), np.uint8)
    with pytest.raises(WindowSizeError, match=r"12x12 after a 2-pixel crop is smaller than the 13x13"):
        compare_images(b, b, crop_border=2, win_size=13)
    with pytest.raises(WindowSizeError, match="crop border 8 leaves nothing of a 16x16 image"):
        compare_images(b, b, crop_border=8)


def test_crop_border_equals_cropping_by_hand(rgb):
    pred = noisy(rgb, 8)
    r = compare_images(pred, rgb, crop_border=5, engine="skimage")
    p, g = pred[5:-5, 5:-5], rgb[5:-5, 5:-5]
    assert r["ssim"] == pytest.approx(structural_similarity(g, p, data_range=255, channel_axis=-1), abs=1e-12)
    assert r["mse"] == pytest.approx(mean_squared_error(g, p), rel=1e-14)
    assert (r.info.scored_width, r.info.scored_height) == (rgb.shape[1] - 10, rgb.shape[0] - 10)


def test_alpha_policies(rgb):
    alpha = np.full((*rgb.shape[:2], 1), 200, np.uint8)
    rgba = np.concatenate([rgb, alpha], axis=2)
    pred = noisy(rgb, 6)
    pred_rgba = np.concatenate([pred, np.full_like(alpha, 255)], axis=2)
    dropped = compare_images(pred_rgba, rgba)  # default: drop
    assert dropped["mse"] == pytest.approx(mean_squared_error(rgb, pred), rel=1e-14)
    included = compare_images(pred_rgba, rgba, alpha="include")
    assert included["mse"] == pytest.approx(mean_squared_error(rgba, pred_rgba), rel=1e-14)
    assert included.info.channels == 4
    # a missing alpha channel counts as fully opaque
    opaque = compare_images(pred, rgba, alpha="include")
    assert opaque["mse"] == pytest.approx(mean_squared_error(rgba, pred_rgba), rel=1e-14)
    with pytest.raises(ColorModeError, match="gt: has an alpha channel; choose alpha='drop' or alpha='include'"):
        compare_images(pred, rgba, alpha="error")
    with pytest.raises(ConfigError, match=r"only color='rgb'"):
        Options(alpha="include", color="y")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"color": "lab"}, "unknown colour mode 'lab'"),
        ({"ssim_kernel": "box"}, "unknown SSIM kernel 'box'"),
        ({"win_size": 4}, "odd integer of at least 3, got 4"),
        ({"crop_border": -1}, "non-negative integer"),
        ({"sigma": 0}, "sigma must be positive"),
        ({"data_range": 0}, "data range must be a positive number"),
        ({"alpha": "keep"}, "unknown alpha policy 'keep'"),
    ],
)
def test_options_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Options(**kwargs)


def _layout(a: np.ndarray, layout: str) -> np.ndarray:
    """``a`` (H, W, 3) as an image of the same RGB samples in another memory layout."""
    if layout == "cropped":  # the SR convention crops before taking luma: rows spaced wider than they are
        return np.pad(a, ((2, 3), (4, 1), (0, 0)))[2:-3, 4:-1]
    if layout == "rgba":
        return np.concatenate([a, a[..., :1]], axis=2)
    if layout == "planar":  # channel planes (the batch API's NCHW)
        return np.ascontiguousarray(a.transpose(2, 0, 1)).transpose(1, 2, 0)
    if layout == "flipped":  # negative strides
        return np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]
    return a


@pytest.mark.parametrize("layout", ["cropped", "planar"])
def test_compiled_luma_reads_cropped_and_planar_images_in_place(layout):
    # float64 samples: a packed copy of the image would be three times the luma plane it makes
    import tracemalloc

    from iqeval.prepare import Y_WEIGHTS, to_luma

    a = _layout(np.random.default_rng(3).random((300, 200, 3)), layout)
    to_luma(a, Y_WEIGHTS, 16.0)  # the kernel loaded (and built) before tracing
    tracemalloc.start()
    try:
        y = to_luma(a, Y_WEIGHTS, 16.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert y.nbytes <= peak < 1.5 * y.nbytes


@pytest.mark.parametrize("layout", ["packed", "cropped", "rgba", "planar", "flipped"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_compiled_luma_is_the_numpy_formula_bit_for_bit(dtype, layout):
    from iqeval.prepare import Y_WEIGHTS, YIQ_WEIGHTS, to_luma

    rng = np.random.default_rng(5)
    top = 1.0 if np.dtype(dtype).kind == "f" else np.iinfo(dtype).max
    rgb = (rng.random((31, 45, 3)) * top).astype(dtype)
    a = _layout(rgb, layout)
    assert np.array_equal(a[..., :3], rgb) and (layout in ("packed", "rgba")) == a.flags.c_contiguous
    for weights, offset in ((Y_WEIGHTS, 16.0), (YIQ_WEIGHTS, 0.0)):
        x = a.astype(np.float64)
        expected = x[..., 0] * weights[0]
        expected += x[..., 1] * weights[1]
        expected += x[..., 2] * weights[2]
        if offset:
            expected += offset
        assert np.array_equal(to_luma(a, weights, offset), expected)
