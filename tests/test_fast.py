"""The fast engine equals skimage called directly, for every option combination."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.metrics import mean_squared_error, structural_similarity

from iqeval import compare_images, fast, metrics

from .conftest import noisy


def reference(pred, gt, *, color, crop, kernel, win_size, sigma, data_range):
    """skimage.metrics on arrays prepared by hand (crop, then colour conversion)."""
    p = pred.astype(np.float64)
    g = gt.astype(np.float64)
    if crop:
        p, g = p[crop:-crop, crop:-crop], g[crop:-crop, crop:-crop]
    if color == "y":
        p, g = ((16.0 * data_range + a @ np.array([65.481, 128.553, 24.966])) / 255.0 for a in (p, g))
    elif color == "gray":
        p, g = (rgb2gray(a / data_range) * data_range for a in (p, g))
    kw = {"data_range": data_range, "win_size": win_size, "channel_axis": -1 if p.ndim == 3 else None}
    if kernel == "gaussian":
        kw.update(gaussian_weights=True, sigma=sigma, use_sample_covariance=False)
    s = structural_similarity(g, p, **kw)
    m = mean_squared_error(g, p)
    return s, (math.inf if m == 0 else 10 * math.log10(data_range**2 / m)), m


COMBOS = list(
    itertools.product(
        ["rgb", "y", "gray"],
        [0, 3],
        [
            ("uniform", None, 1.5),
            ("uniform", 3, 1.5),
            ("gaussian", None, 1.5),
            ("gaussian", 7, 1.5),
            ("gaussian", None, 0.8),
        ],
        [np.uint8, np.uint16, np.float32],
    )
)


@pytest.mark.parametrize(("color", "crop", "kernel", "dtype"), COMBOS)
def test_fast_equals_skimage(rgb, color, crop, kernel, dtype):
    kind, win_size, sigma = kernel
    if dtype is np.float32:
        gt = (rgb / 255.0).astype(np.float32)
        data_range = 1.0
    elif dtype is np.uint16:
        gt = rgb.astype(np.uint16) * 257
        data_range = 65535.0
    else:
        gt = rgb
        data_range = 255.0
    pred = noisy(gt, 0.04 * data_range, seed=3)
    opts = {"color": color, "crop_border": crop, "ssim_kernel": kind, "win_size": win_size, "sigma": sigma}
    fast = compare_images(pred, gt, engine="fast", **opts)
    slow = compare_images(pred, gt, engine="skimage", **opts)
    ref = reference(
        pred, gt, color=color, crop=crop, kernel=kind, win_size=win_size, sigma=sigma, data_range=data_range
    )
    for result in (fast, slow):
        assert abs(result["ssim"] - ref[0]) <= 1e-6
        assert abs(result["psnr"] - ref[1]) <= 1e-6
        assert result["mse"] == pytest.approx(ref[2], rel=1e-9)


@pytest.mark.parametrize("layout", ["packed", "cropped", "channels_first", "plane", "strided_plane"])
@pytest.mark.parametrize(
    ("dtype", "channels", "win"), [(np.uint8, 3, 7), (np.uint8, 4, 7), (np.uint16, 3, 5), (np.uint8, 2, 9)]
)
def test_integer_uniform_ssim_and_sse_in_every_memory_layout(layout, dtype, channels, win):
    # packed rows are scored in place, every channel in one pass (a window every `channels` columns);
    # other layouts channel by channel: both equal skimage and the exact integer sum
    rng = np.random.default_rng(11)
    top = np.iinfo(dtype).max
    base = rng.integers(0, top + 1, (channels, 61, 83) if layout == "channels_first" else (61, 83, channels))
    noise = rng.normal(0, top / 25, base.shape)
    x, y = base.astype(dtype), np.clip(base + noise, 0, top).astype(dtype)
    if layout == "channels_first":  # (H, W, C) axes over a (C, H, W) buffer: pixels not packed
        x, y = x.transpose(1, 2, 0), y.transpose(1, 2, 0)
        assert fast._interleaved_rows(x) is None
    elif layout == "cropped":  # a view: rows apart in memory, each row's pixels packed
        x, y = x[3:-4, 5:-2], y[3:-4, 5:-2]
        assert np.shares_memory(fast._interleaved_rows(x), x)
    elif layout == "plane":
        x, y = x[..., 0].copy(), y[..., 0].copy()
    elif layout == "strided_plane":  # one channel of an interleaved image, as a 2-D view: copied first
        x, y = x[..., 0], y[..., 0]
        assert fast._interleaved_rows(x) is None
    axis = None if x.ndim == 2 else -1
    got = fast.mean_ssim(x, y, 1.0, 1.0, data_range=float(top), kernel="uniform", win_size=win, sigma=1.5)
    assert got == pytest.approx(structural_similarity(y, x, data_range=top, win_size=win, channel_axis=axis), abs=1e-12)
    d = x.astype(np.int64) - y.astype(np.int64)
    assert fast.sum_squared_error(x, y, 1.0, 1.0) == float((d * d).sum())


@pytest.mark.parametrize(("win", "steps"), [(7, [3]), (3, [1, 1, 1]), (11, [1, 1, 1])])
def test_interleaved_channels_are_read_in_place_only_for_the_seven_tap_window(monkeypatch, win, steps):
    # the box kernel's sums along a row vectorise with channels interleaved only for 7 taps: another
    # window is sent a contiguous plane at a time (8-10x faster), with the same numbers
    box = fast._compiled("box_int")
    seen: list[int] = []

    def spy(x, y, w, step, *rest):
        seen.append(step)
        assert x.flags.c_contiguous or step > 1
        return box(x, y, w, step, *rest)

    monkeypatch.setitem(fast._KERNELS, "box_int", spy)
    rng = np.random.default_rng(win)
    x = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    y = np.clip(x + rng.normal(0, 12, x.shape), 0, 255).astype(np.uint8)
    got = fast.mean_ssim(x, y, 1.0, 1.0, data_range=255.0, kernel="uniform", win_size=win, sigma=1.5)
    assert seen == steps
    assert got == pytest.approx(structural_similarity(y, x, data_range=255, win_size=win, channel_axis=-1), abs=1e-12)


def test_fast_band_edges_on_tall_image():
    # taller than one band, and a height that leaves a short last band
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 256, (1037, 300), dtype=np.uint8)
    pred = noisy(gt, 9)
    for kernel in ("uniform", "gaussian"):
        fast = compare_images(pred, gt, ssim_kernel=kernel)
        slow = compare_images(pred, gt, ssim_kernel=kernel, engine="skimage")
        assert abs(fast["ssim"] - slow["ssim"]) <= 1e-9


def test_fast_mse_is_exact_for_integers():
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 65536, (64, 64, 3), dtype=np.uint16)
    pred = rng.integers(0, 65536, (64, 64, 3), dtype=np.uint16)
    diff = pred.astype(object) - gt.astype(object)
    exact = sum(int(v) * int(v) for v in diff.ravel()) / diff.size
    assert compare_images(pred, gt, metrics="mse")["mse"] == exact


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 1 / 257])
def test_compiled_halving_is_the_same_bits_as_pooling_the_scaled_image(dtype, scale):
    from iqeval.fast import compiled_halve

    halve = compiled_halve()
    if halve is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(3)
    rgb = (rng.random((37, 50, 3)) * 1000).astype(dtype)
    plane = rgb[..., 1]  # a strided channel, odd height: the last row is not read
    x = plane.astype(np.float64) * scale
    written_out = (((x[0:36:2, 0::2] + x[0:36:2, 1::2]) + x[1:36:2, 0::2]) + x[1:36:2, 1::2]) * 0.25
    out = np.empty((18, 25))
    halve(plane, scale, out)
    assert np.array_equal(out, written_out)


@pytest.mark.parametrize("variant", ["pytorch_msssim", "tf", "torchmetrics", "piq", "pyiqa"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float16])
def test_msssim_on_samples_as_they_are_equals_msssim_on_float64(variant, dtype):
    # the fast engine hands MS-SSIM the decoded samples and their scale; the reference the float64 image
    from iqeval.metrics import msssim

    rng = np.random.default_rng(4)
    top = 1.0 if np.dtype(dtype).kind == "f" else np.iinfo(dtype).max
    gt = (rng.random((181, 190, 3)) * top).astype(dtype)  # odd sides on the way down: every padding rule
    pred = np.clip(gt.astype(np.float64) + rng.normal(0, top / 20, gt.shape), 0, top).astype(dtype)
    scale = (1.0 / top, 2.0 / top)  # two scales: each image is read with its own
    x, y = pred.astype(np.float64) * scale[0], gt.astype(np.float64) * scale[1]
    expected = msssim(x, y, data_range=2.0, variant=variant)
    got = msssim(pred, gt, data_range=2.0, variant=variant, compiled=True, scale=scale)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0.3 < expected < 1.0  # a real comparison, not two perfect scores


@pytest.mark.parametrize("convention", ["torchmetrics", "piq", "pyiqa"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("side", [200, 520, 800])  # piq's downsampling: none, by 2 (compiled), by 3
def test_convention_ssim_on_samples_as_they_are_equals_scipys_filters_on_float64(convention, dtype, side):
    # a convention's SSIM (kept borders, downsampling, clipping) reads the samples and their scale,
    # one plane at a time; the reference filters the float64 image with SciPy
    from iqeval.metrics import ssim_variant
    from iqeval.prepare import Options

    options = Options(**_variant_options(convention))
    rng = np.random.default_rng(side)
    top = 1.0 if np.dtype(dtype).kind == "f" else np.iinfo(dtype).max
    gt = (rng.random((side + 1, side + 7, 3)) * top).astype(dtype)  # odd sides: pooling drops a row
    pred = np.clip(gt.astype(np.float64) + rng.normal(0, top / 20, gt.shape), 0, top).astype(dtype)
    scale = (1.0 / top, 2.0 / top)
    x, y = pred.astype(np.float64) * scale[0], gt.astype(np.float64) * scale[1]
    expected = ssim_variant(x, y, 2.0, options)
    got = ssim_variant(pred, gt, 2.0, options, compiled=True, scale=scale)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0.05 < expected < 0.99  # a real comparison


def _variant_options(convention: str) -> dict:
    """A convention's SSIM options, on the channels as stored (pyiqa's YIQ conversion left out)."""
    from iqeval.conventions import CONVENTIONS

    return {k: v for k, v in CONVENTIONS[convention].sets.items() if k not in ("color", "y_rounding", "psnr_color")}


def test_a_conventions_ssim_makes_no_float64_copy_of_the_image():
    # the fast engine used to convert both full images to float64 first (2 x 8 bytes a sample)
    import tracemalloc

    from iqeval.metrics import ssim_variant
    from iqeval.prepare import Options

    rng = np.random.default_rng(1)
    gt = rng.integers(0, 256, (1030, 1030, 3), dtype=np.uint8)
    pred = np.clip(gt + rng.normal(0, 9, gt.shape), 0, 255).astype(np.uint8)
    plane = gt.shape[0] * gt.shape[1] * 8  # one float64 plane
    for convention in ("torchmetrics", "piq", "pyiqa"):
        options = Options(**_variant_options(convention))
        args = (pred, gt, 1.0, options)
        ssim_variant(*args, compiled=True, scale=(1 / 255, 1 / 255))  # kernels loaded before measuring
        tracemalloc.start()
        got = ssim_variant(*args, compiled=True, scale=(1 / 255, 1 / 255))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        # nothing full-size: piq's pooling by 4 reads the samples as they are (both images in float64
        # were six planes, and pooling them by a reshaped copy two more)
        assert peak < 0.5 * plane, (convention, peak / plane)
        assert got == pytest.approx(ssim_variant(pred / 255, gt / 255, 1.0, options), abs=1e-12)


@pytest.mark.parametrize("f", [2, 3, 4, 5])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_average_pooling_of_scaled_samples_written_out(f, dtype):
    rng = np.random.default_rng(f)
    a = (rng.random((23, 31, 3)) * 200).astype(dtype)[:, :, 1]  # a strided channel; rows and columns left over
    scale = 1 / 255
    got = metrics._average_pool(a, f, scale)
    expected = np.empty((23 // f, 31 // f))
    for i in range(expected.shape[0]):
        for j in range(expected.shape[1]):
            total = 0.0
            for u in range(f):  # the block's samples in row-major order
                for v in range(f):
                    total += float(a[i * f + u, j * f + v]) * scale
            expected[i, j] = total / (f * f)
    assert np.array_equal(got, expected)
    assert got.dtype == np.float64


@pytest.mark.parametrize("shape", [(11, 11), (12, 30), (40, 13), (7, 7), (6, 9), (3, 4)])
@pytest.mark.parametrize("r", [1, 2, 5])
def test_mirror_is_numpys_reflect_padding(shape, r):
    a = np.random.default_rng(r).integers(0, 200, (*shape, 3)).astype(np.uint8)[:, :, 2]
    assert np.array_equal(metrics._mirror(a, r), np.pad(a, r, mode="reflect"))


def _exact_scratch(k: int, n: int) -> tuple[np.ndarray, ...]:
    """The Gaussian kernel's scratch sized exactly, for ``k`` taps and ``n`` output columns (its wrapper
    pads the rows)."""
    return np.empty((4, n + k - 1)), np.empty((k + 1, 4, n)), np.empty((8, n)), np.empty((2, n))


def test_gaussian_scratch_rows_span_an_odd_number_of_cache_lines_and_change_no_bit():
    for n in (1, 8, 9, 128, 512, 1910, 1920, 4096):
        length = fast._scratch_row(n)
        assert length >= n and length % 8 == 0 and (length // 8) % 2 == 1
        assert length - n < 16
    # the wrapper's longer rows against exactly sized ones, on outputs 512 and 1024 wide
    raw = fast._compiled("sums")
    w, _ = fast._kernel(True, 0, 1.5)
    rng = np.random.default_rng(2)
    for width in (522, 1034):
        x = rng.integers(0, 256, (40, width), dtype=np.uint8)
        y = rng.integers(0, 256, (40, width), dtype=np.uint8)
        args = (x, y, 1 / 255, 1 / 255, w, 5, 35, 5, width - 5, 1e-4, 9e-4, 1.0)
        exact = _exact_scratch(11, width - 10)
        for mode in (0, 2):
            got = fast.compiled_kernel(sums=True)(*args, alone=mode == 2)
            assert got == raw(*args, mode, *exact)


_QUICK_SCRIPT = """
import json, sys
import numpy as np
from iqeval import fast
fast.QUICK_START = True  # as the command line sets it
if sys.argv[1] == "flaky":  # the quick load fails once, as it would on a numba that needs more
    from numba.core import caching
    usual, calls = caching.Cache._load_overload, []
    def flaky(self, sig, ctx):
        calls.append(sig)
        if len(calls) == 1:
            raise KeyError("a registry this numba needs")
        return usual(self, sig, ctx)
    caching.Cache._load_overload = flaky
r = np.random.default_rng(5)
x = r.integers(0, 256, (64, 80, 3), dtype=np.uint8)
y = np.clip(x + r.normal(0, 12, x.shape), 0, 255).astype(np.uint8)
out = {"sse": fast.sum_squared_error(x, y, 1.0, 1.0)}
if sys.argv[1] == "all":
    import tempfile
    from iqeval import io, metrics
    for kernel in ("uniform", "gaussian"):
        kw = dict(data_range=255.0, kernel=kernel, win_size=None, sigma=1.5)
        out[kernel] = fast.mean_ssim(x, y, 1.0, 1.0, **kw)
    out["ffmpeg"] = metrics._ffmpeg_planes(x, y, 255.0, compiled=True)
    w, _ = fast._kernel(True, 0, 1.5)
    out["sums"] = metrics._ssim_plane(x[..., 0], y[..., 0], 255.0, w, 1.0, False, True, compiled=True)
    with tempfile.TemporaryDirectory() as d:
        io.write_image(d + "/x.png", x)
        out["png"] = bool((io.read_image(d + "/x.png") == x).all())
out["registries"] = "numba.np.linalg" in sys.modules  # what numba's full refresh imports
out["arrayobj"] = "numba.np.arrayobj" in sys.modules  # what a kernel that allocates imports as it loads
print(json.dumps(out))
"""


def _quick_run(which: str, env: dict[str, str]) -> dict:
    import json
    import subprocess
    import sys

    # numba's dispatcher, as where a kernel's machine code cannot load without it (see test_native)
    env = {**env, "IQEVAL_NATIVE": "0"}
    proc = subprocess.run([sys.executable, "-c", _QUICK_SCRIPT, which], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _quick_reference() -> dict:
    r = np.random.default_rng(5)
    x = r.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    y = np.clip(x + r.normal(0, 12, x.shape), 0, 255).astype(np.uint8)
    d = x.astype(np.int64) - y.astype(np.int64)
    w, _ = fast._kernel(True, 0, 1.5)
    return {
        "ffmpeg": metrics._ffmpeg_planes(x, y, 255.0),  # the numpy path, checked against FFmpeg's filter
        "sums": list(metrics._ssim_plane(x[..., 0], y[..., 0], 255.0, w, 1.0, False, True)),  # scipy's filters
        "sse": float((d * d).sum()),
        "uniform": structural_similarity(y, x, channel_axis=-1, data_range=255),
        "gaussian": structural_similarity(
            y, x, channel_axis=-1, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        ),
    }


def test_the_command_loads_cached_kernels_without_numbas_registries():
    # the command line's processes load finished kernels without the registries (0.3 s) only compiling needs
    import os

    pytest.importorskip("numba")
    _quick_run("all", dict(os.environ))  # compiles whatever this checkout has not cached yet
    got = _quick_run("all", dict(os.environ))
    assert got["registries"] is False
    # the kernels allocate nothing (their scratch is handed in), so none imports numba.np.arrayobj
    # as it loads: about 60 ms of every command's start-up
    assert got["arrayobj"] is False
    ref = _quick_reference()
    assert got["sse"] == ref["sse"]
    assert got["uniform"] == pytest.approx(ref["uniform"], abs=1e-12)
    assert got["gaussian"] == pytest.approx(ref["gaussian"], abs=1e-12)
    assert 0.3 < ref["gaussian"] < 0.99
    assert got["ffmpeg"] == pytest.approx(ref["ffmpeg"], abs=1e-12)
    assert got["sums"] == pytest.approx(ref["sums"], abs=1e-12)
    assert got["png"] is True


def test_the_command_still_compiles_a_kernel_missing_from_the_cache(tmp_path):
    import os

    pytest.importorskip("numba")
    got = _quick_run("sse", {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)})  # an empty cache: a miss
    assert got["sse"] == _quick_reference()["sse"]
    assert list(tmp_path.rglob("*sse_int*.nbc"))  # compiled, then cached for the next run


def test_the_command_falls_back_to_numbas_own_loading_when_the_quick_one_fails():
    import os

    pytest.importorskip("numba")
    _quick_run("sse", dict(os.environ))  # cached first
    got = _quick_run("flaky", dict(os.environ))
    assert got["sse"] == _quick_reference()["sse"]
    assert got["registries"] is True  # loaded numba's way, after its full refresh


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
@pytest.mark.parametrize("height", [15, 16, 40])  # output rows met alone and in pairs
def test_seven_tap_passes_are_the_general_passes_bits(dtype, height):
    # the unrolled seven-tap passes against the general pass a tap, on the same taps with a zero tap
    # added at each end (nine taps: the zeros add exact zeros, so each value is the same sum in the
    # same order)
    raw = fast._compiled("sums")
    rng = np.random.default_rng(height)
    x = (rng.random((height, 45, 3)) * 255).astype(dtype)[..., 0]
    y = np.clip(x + rng.normal(0, 20, x.shape), 0, 255).astype(dtype)
    y[:, :15] = 255 - y[:, :15]  # anti-correlated there: pyiqa's clipping changes the sums
    w7, _ = fast._kernel(False, 7, 1.5)  # skimage's default uniform window
    w9 = np.concatenate([[0.0], w7, [0.0]])
    results = []
    for w in (w7, w9):
        scratch = _exact_scratch(len(w), 45 - 8)
        results.append(
            [
                raw(x, y, 1 / 255, 1 / 255, w, 4, height - 4, 4, 41, 1e-4, 9e-4, 49 / 48, mode, *scratch)
                for mode in (0, 1, 2)
            ]
        )
    assert results[0] == results[1]
    plain, clipped, alone = results[0]
    assert clipped[0] > plain[0] and clipped[1] > plain[1] and alone[1] == 0.0  # real sums, three modes


@pytest.mark.parametrize("sigma", [1.5, 0.8])  # eleven taps (two output rows a pass) and seven
@pytest.mark.parametrize("height", [11, 12, 13, 14, 15, 16, 37])  # one to six output rows, and 27
def test_compiled_gaussian_sums_equal_separable_filtering_written_out(sigma, height):
    """The kernel's SSIM and contrast-structure sums against scipy's 1-D correlations and the
    formula written out, for every count of output rows (odd and even, so the last row of a pair
    pass is met alone), with and without pyiqa's clipping of negative contrast-structure."""
    from scipy.ndimage import correlate1d

    kernel = fast.compiled_kernel(sums=True)
    if kernel is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(height)
    x = rng.integers(0, 256, (height, 29, 3), dtype=np.uint8)[..., 1]  # a strided channel
    y = np.clip(x + rng.normal(0, 20, x.shape), 0, 255).astype(np.uint8)
    y[:, :12] = 255 - y[:, :12]  # anti-correlated there: negative contrast-structure values
    w, r = fast._kernel(True, 0, sigma)
    assert len(w) == (11 if sigma == 1.5 else 7)
    c1, c2, cov = (0.01 * 255) ** 2, (0.03 * 255) ** 2, 1.0

    def filtered(a: np.ndarray) -> np.ndarray:
        out = correlate1d(correlate1d(a, w, axis=0), w, axis=1)
        return out[r:-r, r:-r]

    xf, yf = x.astype(np.float64), y.astype(np.float64)
    ux, uy, uxx, uyy, uxy = (filtered(a) for a in (xf, yf, xf * xf, yf * yf, xf * yf))
    cs = (2 * (uxy - ux * uy) + c2) / ((uxx - ux * ux) + (uyy - uy * uy) + c2)
    for relu in (False, True):
        cs_used = np.maximum(cs, 0.0) if relu else cs
        ssim = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1) * cs_used
        got = kernel(x, y, 1.0, 1.0, w, r, height - r, r, x.shape[1] - r, c1, c2, cov, relu)
        assert got[0] == pytest.approx(ssim.sum(), rel=1e-12, abs=1e-12)
        assert got[1] == pytest.approx(cs_used.sum(), rel=1e-12, abs=1e-12)
    assert (cs < 0).any() and (cs > 0).any()  # the clipping changes something
    # the SSIM sum alone (single-scale SSIM): skimage's expression, (A1 * A2) / (B1 * B2)
    a1, a2 = 2 * ux * uy + c1, 2 * (uxy - ux * uy) + c2
    b1, b2 = ux * ux + uy * uy + c1, (uxx - ux * ux) + (uyy - uy * uy) + c2
    got = kernel(x, y, 1.0, 1.0, w, r, height - r, r, x.shape[1] - r, c1, c2, cov, alone=True)
    assert got == (pytest.approx(((a1 * a2) / (b1 * b2)).sum(), rel=1e-12, abs=1e-12), 0.0)
    single = fast.compiled_kernel()  # what single-scale SSIM calls: that mode, unless it clips
    assert single(x, y, 1.0, 1.0, w, r, height - r, r, x.shape[1] - r, c1, c2, cov) == got[0]
    clipped = single(x, y, 1.0, 1.0, w, r, height - r, r, x.shape[1] - r, c1, c2, cov, True)
    assert clipped == pytest.approx((a1 / b1 * np.maximum(cs, 0.0)).sum(), rel=1e-12, abs=1e-12)


def test_strided_span_is_the_memory_an_image_lies_in():
    # every sample of each layout found at its strides in the span, which is a view of the image
    a = np.arange(5 * 7 * 4, dtype=np.uint16).reshape(5, 7, 4)
    planar = np.ascontiguousarray(a.transpose(2, 0, 1)).transpose(1, 2, 0)
    for image in (a, a[1:-1, 2:-1, :3], planar, planar[1:, :-2]):
        span, steps = fast.strided_span(image)
        assert np.shares_memory(span, image) and span.flags.c_contiguous
        assert span.size == 1 + sum((n - 1) * s for n, s in zip(image.shape, steps, strict=True))
        i, j, c = np.indices(image.shape)
        assert np.array_equal(span[i * steps[0] + j * steps[1] + c * steps[2]], image)
    assert fast.strided_span(a[::-1]) is None
    assert fast.strided_span(a[:0]) is None
    odd = np.lib.stride_tricks.as_strided(np.zeros(32, dtype=np.uint16), shape=(3, 2, 1), strides=(3, 2, 2))
    assert fast.strided_span(odd) is None  # rows 1.5 samples apart


def test_window_sums_are_float32_only_where_every_sum_is_an_exact_float32():
    # the largest window sum is that of x*x + y*y: 2 N v^2 for N = win^2 samples of value v
    assert 2 * 121 * 255**2 < 2**24 < 2 * 169 * 255**2
    assert fast.window_sum_type(255, 11) is np.float32
    # otherwise the integer path's type (its own bound, 2 N^2 v^2)
    assert fast.window_sum_type(255, 13) is np.int64  # 2 * 169 * 255^2 = 2.2e7 > 2^24
    assert fast.window_sum_type(1023, 3) is np.int32  # 10-bit: 1.9e7 > 2^24
    assert fast.window_sum_type(65535, 7) is np.int64


@pytest.mark.parametrize("layout", ["plane", "padded rows", "interleaved"])
@pytest.mark.parametrize("win", [3, 7, 11, 13])
@pytest.mark.parametrize("content", ["noise", "near white"])
def test_box_kernel_sums_are_exact_in_the_chosen_type(layout, win, content):
    # float32 window sums give the bits of int64's, which hold every sum exactly; where the bound
    # says no (win 13 of near-white 8-bit data), float32 really does round
    rng = np.random.default_rng(win)
    shape = (3 * win + 5, 4 * win + 9, 3)
    if content == "noise":
        x = rng.integers(0, 256, shape, dtype=np.uint8)
    else:
        x = rng.integers(240, 256, shape, dtype=np.uint8)
    y = np.clip(x + rng.normal(0, 6, shape), 0, 255).astype(np.uint8)
    if layout == "plane":
        x, y, step = np.ascontiguousarray(x[..., 0]), np.ascontiguousarray(y[..., 0]), 1
    elif layout == "padded rows":  # a decoded video plane
        x, y, step = x[..., 0].copy()[:, :-5], y[..., 0].copy()[:, :-5], 1
    else:
        x, y, step = x.reshape(shape[0], -1), y.reshape(shape[0], -1), 3
    n = win * win
    c1n, c2n = (0.01 * 255) ** 2 * n * n, (0.03 * 255) ** 2 * n * n
    out = x.shape[1] - (win - 1) * step
    kernel = fast._compiled("box_int")

    def total(dtype: type) -> float:
        return kernel(x, y, win, step, c1n, c2n, n / (n - 1), *_scratch(x, out, dtype))

    chosen = fast.window_sum_type(255, win)
    exact = total(np.int64)
    if chosen is np.float32:
        assert total(np.float32) == exact
        assert kernel.dispatcher()(x, y, win, step, c1n, c2n, n / (n - 1), *_scratch(x, out, np.float32)) == exact
    elif content == "near white":
        assert total(np.float32) != exact
    assert total(chosen) == exact
    planes = 1 if step == 1 else 3
    mean = exact / ((x.shape[0] - 2 * (win // 2)) * (x.shape[1] // planes - 2 * (win // 2)) * planes)
    ref = structural_similarity(
        y.reshape(x.shape[0], -1, planes),
        x.reshape(x.shape[0], -1, planes),
        data_range=255,
        win_size=win,
        channel_axis=-1,
    )
    assert mean == pytest.approx(ref, abs=1e-12)


def _scratch(x: np.ndarray, out: int, dtype: type) -> tuple[np.ndarray, ...]:
    return np.zeros((4, x.shape[1]), dtype), np.empty((4, out), dtype), np.empty(out)
