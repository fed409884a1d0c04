"""A fast, memory-bounded engine that equals :mod:`skimage.metrics` to 1e-6.

Where skimage converts whole images to float64 and keeps some thirty full-size
temporaries per channel, this engine walks the image in horizontal bands:

* each band is converted to float64 once, scaled once, and all channels are
  filtered in one call;
* the five SSIM moments (x, y, x*x, y*y, x*y) are stacked and filtered
  together, with the same SciPy 1-D filters and border mode skimage uses, so
  every output pixel sees exactly the inputs it sees in skimage;
* MSE of integer images is summed in exact integer arithmetic.

Peak memory is the two decoded images plus a few bands, instead of dozens of
float64 copies. :mod:`iqeval.metrics` stays the reference, and the test suite
holds this engine to it for every option.
"""

from __future__ import annotations

import gc
import importlib.util
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

from . import _native

TRUNCATE = 3.5  # skimage's Gaussian truncation for SSIM (radius = int(3.5 * sigma + 0.5))

BAND_ELEMENTS = 1 << 16  # per moment and band: 512 KiB of float64, so a band stays in cache


def _band_rows(width: int, channels: int, minimum: int) -> int:
    return max(minimum, BAND_ELEMENTS // max(1, width * channels))


def _to_float(a: np.ndarray, scale: float) -> np.ndarray:
    x = a.astype(np.float64)  # always a fresh array we may overwrite
    if scale != 1.0:
        x *= scale
    return x


def sum_squared_error(pred: np.ndarray, gt: np.ndarray, pred_scale: float, gt_scale: float) -> float:
    """Sum of squared differences, exact for integer inputs."""
    rows = _band_rows(pred.shape[1], 1 if pred.ndim == 2 else pred.shape[2], 8)
    integer = pred.dtype.kind == "u" and gt.dtype.kind == "u" and pred_scale == gt_scale == 1.0
    if integer and (kernel := _compiled("sse_int")) is not None:
        rows_x, rows_y = _interleaved_rows(pred), _interleaved_rows(gt)
        if rows_x is not None and rows_y is not None:  # every channel in one pass, read in place
            return float(kernel(rows_x, rows_y))
        return float(sum(int(kernel(x, y)) for x, y in zip(_planes(pred), _planes(gt), strict=True)))
    if integer:
        total = 0
        wide = np.int32 if max(pred.dtype.itemsize, gt.dtype.itemsize) <= 2 else np.int64
        for r0 in range(0, pred.shape[0], rows):
            diff = pred[r0 : r0 + rows].astype(wide) - gt[r0 : r0 + rows].astype(wide)
            flat = diff.astype(np.int64).ravel()
            total += int(np.dot(flat, flat))  # integer dot: exact, no BLAS
        return float(total)
    acc = 0.0
    for r0 in range(0, pred.shape[0], rows):
        d = _to_float(pred[r0 : r0 + rows], pred_scale)
        d -= _to_float(gt[r0 : r0 + rows], gt_scale)
        # not np.dot: BLAS's threaded ddot changes the last digits with the thread
        # count; numpy's pairwise sum gives the same bits on every machine
        np.square(d, out=d)
        acc += float(d.sum(dtype=np.float64))
    return acc


def _kernel(gaussian: bool, win: int, sigma: float) -> tuple[np.ndarray, int]:
    """The 1-D filter weights skimage uses, and their radius."""
    if gaussian:
        radius = int(TRUNCATE * sigma + 0.5)
        x = np.arange(-radius, radius + 1, dtype=np.float64)
        phi = np.exp(-0.5 / (sigma * sigma) * x * x)  # as scipy.ndimage.gaussian_filter1d
        return phi / phi.sum(), radius
    return np.full(win, 1.0 / win), win // 2


def _shifted(a: np.ndarray, k: int, axis: int) -> list[np.ndarray]:
    """The ``k`` views of ``a`` shifted by 0..k-1 along ``axis``, each as long as the 'valid' output."""
    n = a.shape[axis] - k + 1
    views = []
    for i in range(k):
        index = [slice(None)] * a.ndim
        index[axis] = slice(i, i + n)
        views.append(a[tuple(index)])
    return views


def _box_sum_valid(a: np.ndarray, k: int, axis: int) -> np.ndarray:
    """Sum of ``k`` consecutive elements along ``axis`` where the window fits."""
    first, *rest = _shifted(a, k, axis)
    out = first.copy()
    for view in rest:
        out += view
    return out


def _correlate_valid(a: np.ndarray, weights: np.ndarray, axis: int, uniform: bool) -> np.ndarray:
    """Correlate along ``axis`` where the window fits ('valid'), as a sum of shifted slices.

    Each step is one contiguous, vectorised array operation, instead of SciPy's
    line-by-line loop that is slow along strided axes.
    """
    k = weights.size
    if uniform:
        out = _box_sum_valid(a, k, axis)
        out /= k  # scipy's uniform filter divides the running sum by the size
        return out
    views = _shifted(a, k, axis)
    # symmetric weights: add the mirrored pair first, then multiply once
    r = k // 2
    out = views[r] * weights[r]
    tmp = np.empty_like(out)
    for i in range(r):
        np.add(views[i], views[k - 1 - i], out=tmp)
        tmp *= weights[i]
        out += tmp
    return out


def _planar_band(a: np.ndarray, rows: slice, cols: slice, scale: float) -> np.ndarray:
    """Rows of ``a`` as float64 planes (channels first), scaled, in one copy."""
    band = a[rows, cols]
    x = band.astype(np.float64) if band.ndim == 2 else band.transpose(2, 0, 1).astype(np.float64)
    if scale != 1.0:
        x *= scale
    return x


_INT32_MAX = np.iinfo(np.int32).max
_INT64_MAX = np.iinfo(np.int64).max


def integer_accumulator(max_value: int, win: int) -> type[np.signedinteger] | None:
    """The narrowest integer type that holds every intermediate of the integer SSIM path.

    The largest intermediate is ``N Sxx - Sx^2 + N Syy - Sy^2`` before the
    subtraction, at most ``2 N^2 v^2`` for window size ``N = win^2`` and
    largest sample value ``v``. ``None`` when not even int64 holds it (then the
    float path is used).
    """
    n = win * win
    bound = 2 * n * n * max_value * max_value
    if bound <= _INT32_MAX:
        return np.int32
    if bound <= _INT64_MAX:
        return np.int64
    return None


def window_sum_type(max_value: int, win: int) -> type[np.number] | None:
    """The type of the compiled uniform-window kernel's window sums (:func:`iqeval._kernels.ssim_box_int`).

    The kernel keeps only window sums (of x, y, x*x + y*y and x*y, and their
    partial sums along a window) in this type; its formula widens them to
    float64. The largest is the sum of ``x*x + y*y`` over the window, at most
    ``2 N v^2`` for ``N = win^2`` samples of largest value ``v``. Below 2**24
    every one is an integer float32 holds exactly (8-bit data with windows up
    to 11), and float32's loops run 8 wide where int32's products widen to
    int64: the same sums, so the same bits, 5-6% faster on a 1080p plane.
    Otherwise :func:`integer_accumulator`'s type.
    """
    if 2 * win * win * max_value * max_value < 2**24:
        return np.float32
    return integer_accumulator(max_value, win)


def _mean_ssim_uniform_int(
    pred: np.ndarray, gt: np.ndarray, win: int, data_range: float, wide: type[np.signedinteger]
) -> float:
    """Uniform-window SSIM of unsigned-integer images from exact integer window sums.

    With Sx, Sy, Sxx, Syy, Sxy the window sums (exact in int32 for 8-bit data,
    int64 for 16-bit) and N = win * win, skimage's formula multiplied through
    by N**4 is

        ((2 Sx Sy + C1 N^2) (2 c (N Sxy - Sx Sy) + C2 N^2))
        / ((Sx^2 + Sy^2 + C1 N^2) (c (N Sxx - Sx^2 + N Syy - Sy^2) + C2 N^2))

    with c = N / (N - 1). Every term before the last few float operations is an
    exact integer (``wide`` comes from :func:`integer_accumulator`), so the only
    rounding is in those, where skimage rounds too.
    """
    n = win * win
    height, width = pred.shape[:2]
    channels = 1 if pred.ndim == 2 else pred.shape[2]
    cn = n / (n - 1)
    c1n = (0.01 * data_range) ** 2 * n * n
    c2n = (0.03 * data_range) ** 2 * n * n
    pad = (win - 1) // 2
    step = _band_rows(width, channels, 1)
    total = 0.0
    count = 0
    for o0 in range(pad, height - pad, step):
        o1 = min(o0 + step, height - pad)
        rows = slice(o0 - pad, o1 + pad)
        xb, yb = pred[rows], gt[rows]
        if xb.ndim == 3:
            xb, yb = xb.transpose(2, 0, 1), yb.transpose(2, 0, 1)
        m = np.empty((5, *xb.shape), dtype=wide)
        m[0] = xb
        m[1] = yb
        np.multiply(m[0], m[0], out=m[2])
        np.multiply(m[1], m[1], out=m[3])
        np.multiply(m[0], m[1], out=m[4])
        m = _box_sum_valid(m, win, m.ndim - 2)
        m = _box_sum_valid(m, win, m.ndim - 1)
        sx, sy, sxx, syy, sxy = m
        p = sx * sy
        sxx *= n
        syy *= n
        sxy *= n
        sxy -= p  # N Sxy - Sx Sy
        sx *= sx
        sy *= sy
        sx += sy  # Sx^2 + Sy^2
        sxx += syy
        sxx -= sx  # N Sxx - Sx^2 + N Syy - Sy^2
        num = p.astype(np.float64)
        num *= 2
        num += c1n
        a2 = sxy.astype(np.float64)
        a2 *= 2 * cn
        a2 += c2n
        num *= a2
        den = sx.astype(np.float64)
        den += c1n
        b2 = sxx.astype(np.float64)
        b2 *= cn
        b2 += c2n
        den *= b2
        num /= den
        total += float(num.sum(dtype=np.float64))
        count += num.size
    return total / count


_KERNELS: dict[str, Any] = {}


def _scratch_row(n: int) -> int:
    """The length of a float64 scratch row for ``n`` values: an odd number of 64-byte cache lines.

    The Gaussian kernel streams through dozens of scratch rows at once (twelve
    filtered rows of four moments). Rows a multiple of 1024 bytes long (an
    output 128, 512, 1024 or 1920 columns wide, as torchmetrics' kept borders
    give) start in the same few sets of the L1 cache and evict each other:
    20-25% more time a plane. A row of an odd number of lines starts each row
    in another set. The extra samples are never read.
    """
    lines = -(-n // 8)
    return 8 * (lines | 1)


def compiled_kernel(sums: bool = False) -> Any:
    """The compiled SSIM kernel (:func:`iqeval._kernels.ssim_cs_sums`) with its scratch made here,
    or None where numba is missing.

    It is called as ``(x, y, xs, ys, w, row0, row1, col0, col1, c1, c2, cov,
    cs_relu=False)``; with ``sums`` it returns (SSIM sum, contrast-structure
    sum) (MS-SSIM, conventions), else the SSIM sum alone, which the kernel
    then computes without the contrast-structure map (one division a pixel,
    where the two maps take two), unless ``cs_relu`` clips it. With ``sums``,
    ``alone=True`` asks for that too: (SSIM sum, 0.0).
    """
    kernel = _compiled("sums")
    if kernel is None:
        return None

    def ssim_sums(
        x: np.ndarray,
        y: np.ndarray,
        xs: float,
        ys: float,
        w: np.ndarray,
        row0: int,
        row1: int,
        col0: int,
        col1: int,
        c1: float,
        c2: float,
        cov: float,
        cs_relu: bool = False,
        *,
        alone: bool = False,
    ) -> tuple[float, float]:
        k, ncols = w.shape[0], col1 - col0
        n = _scratch_row(ncols)  # the kernel reads and writes the first ncols of each row
        moments, ring = np.empty((4, _scratch_row(ncols + k - 1))), np.empty((k + 1, 4, n))
        u, rows = np.empty((8, n)), np.empty((2, ncols))  # each row of rows is summed whole
        mode = 1 if cs_relu else 2 if alone else 0  # the kernel's cs_relu: 2, the SSIM sum alone
        args = (x, y, xs, ys, w, row0, row1, col0, col1, c1, c2, cov, mode)
        return kernel(*args, moments, ring, u, rows)

    if sums:
        return ssim_sums
    return lambda *args: ssim_sums(*args, alone=True)[0]


def compiled_luma() -> Any:
    """The one-pass luma kernel (:func:`iqeval._kernels.luma`), or None without numba."""
    return _compiled("luma")


def compiled_halve() -> Any:
    """MS-SSIM's 2x2 average pooling compiled (:func:`iqeval._kernels.halve`), or None without numba."""
    return _compiled("halve")


def compiled_png_unfilter() -> Any:
    """PNG's row filters undone, compiled (:func:`iqeval._kernels.png_unfilter`), or None without numba."""
    return _compiled("png_unfilter")


def compiled_ffmpeg() -> Any:
    """FFmpeg's block SSIM compiled (:func:`iqeval._kernels.ffmpeg_ssim_sum`, called as
    ``(x, y, c1, c2)`` with its scratch made here), or None without numba."""
    kernel = _compiled("ffmpeg")
    if kernel is None:
        return None

    def ffmpeg_sum(x: np.ndarray, y: np.ndarray, c1: int, c2: int) -> tuple[float, int]:
        w4 = x.shape[1] >> 2
        prev, cur = np.zeros((4, w4), dtype=np.int64), np.zeros((4, w4), dtype=np.int64)
        return kernel(x, y, c1, c2, prev, cur, np.empty(max(w4 - 1, 0)))

    return ffmpeg_sum


# Set by the command line, which owns its process: kernels that go through numba's dispatcher
# load from numba's cache without the registries only compiling needs (see _load_from_cache_quickly)
QUICK_START = False


def _load_from_cache_quickly(kernels: tuple[Any, ...]) -> None:
    """Let these kernels load from numba's cache without first loading all of numba's registries.

    Before each cache load numba refreshes its target context: that imports and
    registers every implementation it has (numpy's functions, random
    generators, typed containers, and scipy.linalg to learn whether np.dot may
    use BLAS), about 0.3 s, of which loading finished machine code needs only
    the runtime (NRT) that allocates arrays. Each kernel's cache here
    initialises just that, and falls back to numba's own loading should that
    fail. A cache miss still compiles as usual: numba's compiler refreshes the
    contexts itself before it types anything.
    Only for a process that runs no numba code of its own (the command line).
    """
    try:
        from numba.core.runtime import rtsys
    except ImportError:  # a numba without this layout: its usual loading
        return
    for kernel in kernels:
        cache = getattr(kernel, "_cache", None)
        if (
            cache is None
            or not hasattr(cache, "_load_overload")
            or not hasattr(cache, "_guard_against_spurious_io_errors")
        ):
            continue

        def load_overload(sig: Any, target_context: Any, cache: Any = cache, usual: Any = cache.load_overload) -> Any:
            try:
                rtsys.initialize(target_context)
                with cache._guard_against_spurious_io_errors():  # as numba's own (Windows' sharing errors)
                    return cache._load_overload(sig, target_context)
            except Exception:  # a numba whose loading needs more: its own way, registries and all
                return usual(sig, target_context)

        cache.load_overload = load_overload


def _compiled(name: str) -> Any:
    """A compiled kernel by name (as :func:`_load_kernels` names them), or None where numba is missing."""
    if not _KERNELS:
        with _LOADING:  # the frame threads of a video all ask at once: one loads, the others wait
            if not _KERNELS:
                _load_kernels()
    return _KERNELS[name]


_LOADING = threading.RLock()


# each kernel by the name callers use, and its function in iqeval._kernels
_KERNEL_NAMES = {
    "sums": "ssim_cs_sums",
    "box_int": "ssim_box_int",
    "sse_int": "sse_int",
    "ffmpeg": "ffmpeg_ssim_sum",
    "luma": "luma",
    "halve": "halve",
    "png_unfilter": "png_unfilter",
}


class _Kernel:
    """One compiled kernel, called with its own arguments: its machine code loaded without numba
    (:mod:`iqeval._native`) where a wrapper fits the call's arrays, else numba's dispatcher."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._dispatcher: Any = None

    def __call__(self, *args: Any) -> Any:
        if _native.enabled() and (result := _native.run(self.name, args)) is not NotImplemented:
            return result
        return self.dispatcher()(*args)

    def dispatcher(self) -> Any:
        """numba's own compiled function (imports numba on first use)."""
        if self._dispatcher is None:
            with _LOADING:
                if self._dispatcher is None:
                    from . import _kernels

                    dispatcher = getattr(_kernels, _KERNEL_NAMES[self.name])
                    if QUICK_START:
                        _load_from_cache_quickly((dispatcher,))
                        # the command's process keeps numba's hundred thousand objects to the end: out of
                        # the garbage collector's sight, its full collections stop walking them (0.1 s a run)
                        gc.freeze()
                    self._dispatcher = dispatcher
        return self._dispatcher


def _load_kernels() -> None:
    if importlib.util.find_spec("numba") is None:  # not installed: the numpy paths give the same numbers
        _KERNELS.update(dict.fromkeys(_KERNEL_NAMES))
        return
    kernels = {name: _Kernel(name) for name in _KERNEL_NAMES}
    if not (_native.enabled() and _native.available()):  # numba's dispatcher only: load it now
        try:
            for kernel in kernels.values():
                kernel.dispatcher()
        except ImportError:  # a numba that cannot be imported: the numpy paths, as where it is missing
            _KERNELS.update(dict.fromkeys(_KERNEL_NAMES))
            return
    _KERNELS.update(kernels)


def warm_up() -> None:
    """Load the kernels' loader now, ahead of their first use (run in a thread of its own).

    One tiny call does the loading every kernel shares (llvmlite's loader
    and numba's helpers, or numba itself where the machine code is not
    cached); each kernel's own machine code still loads on its first call.
    A failure here is left for that call to meet.
    """
    try:
        kernel = _compiled("sse_int")
        if kernel is not None:
            z = np.zeros((2, 2), dtype=np.uint8)
            kernel(z, z)
    except Exception:  # the real call raises it, or takes the numpy path
        pass


def _interleaved_rows(a: np.ndarray) -> np.ndarray | None:
    """An (H, W, C) image as the (H, W * C) array of its rows, a view; None where its samples are not
    packed along each row (a 2-D image is its own rows where they are packed)."""
    if a.ndim == 2:
        return a if a.strides[1] == a.itemsize else None
    if a.ndim != 3 or a.strides[2] != a.itemsize or a.strides[1] != a.shape[2] * a.itemsize:
        return None
    return a.reshape(a.shape[0], a.shape[1] * a.shape[2])  # a view: the last two axes merge


def strided_span(a: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """An array as the 1-D contiguous span of memory its samples lie in (a view, from its first sample
    to its last) and its strides counted in samples; None where it is empty or a stride is negative
    or not a whole number of samples."""
    if a.size == 0:
        return None
    steps = []
    for stride in a.strides:
        step, odd = divmod(stride, a.itemsize)
        if odd or step < 0:
            return None
        steps.append(step)
    span = 1 + sum((n - 1) * step for n, step in zip(a.shape, steps, strict=True))
    return np.lib.stride_tricks.as_strided(a, shape=(span,), strides=(a.itemsize,), writeable=False), tuple(steps)


def _planes(a: np.ndarray) -> list[np.ndarray]:
    """The 2-D planes of an image (its channels), as views."""
    return [a] if a.ndim == 2 else [a[..., c] for c in range(a.shape[2])]


def window(kernel: str, win_size: int | None, sigma: float) -> tuple[np.ndarray, int, int, float]:
    """skimage's SSIM window: (1-D weights, filter radius, window side, covariance normalisation)."""
    if kernel == "gaussian":
        weights, radius = _kernel(True, 0, sigma)
        return weights, radius, win_size if win_size is not None else 2 * radius + 1, 1.0
    win = win_size if win_size is not None else 7
    weights, radius = _kernel(False, win, sigma)
    return weights, radius, win, win * win / (win * win - 1)


def mean_ssim(
    pred: np.ndarray,
    gt: np.ndarray,
    pred_scale: float,
    gt_scale: float,
    *,
    data_range: float,
    kernel: str,
    win_size: int | None,
    sigma: float,
) -> float:
    """Mean SSIM over channels and the cropped interior, as skimage defines it.

    skimage filters the whole image with 'reflect' borders and then averages
    the pixels at least ``pad = (win - 1) // 2`` from every edge. Those pixels
    only see real image pixels when the filter radius is at most ``pad`` (always
    true unless a Gaussian kernel is combined with a smaller ``win_size``); then
    the filters are computed in 'valid' mode band by band. Otherwise the image
    is mirrored by the missing margin first, exactly as 'reflect' does.
    """
    gaussian = kernel == "gaussian"
    weights, radius, win, cov_norm = window(kernel, win_size, sigma)
    pad = (win - 1) // 2
    integer = pred.dtype.kind == "u" and gt.dtype.kind == "u" and max(pred.dtype.itemsize, gt.dtype.itemsize) <= 2
    if not gaussian and integer and pred_scale == gt_scale == 1.0:
        top = max(np.iinfo(pred.dtype).max, np.iinfo(gt.dtype).max)
        wide = integer_accumulator(int(top), win)
        if wide is not None:
            # the compiled kernel does its formula in float64, exact while every term is under 2**53
            fits = min(pred.shape[:2]) >= win and 2 * (win * win) ** 2 * int(top) ** 2 < 2**53
            kernel_int = _compiled("box_int") if fits else None
            if kernel_int is None:
                return _mean_ssim_uniform_int(pred, gt, win, data_range, wide)
            n = win * win
            c1n, c2n = (0.01 * data_range) ** 2 * n * n, (0.03 * data_range) ** 2 * n * n
            total = 0.0
            rows_x, rows_y = _interleaved_rows(pred), _interleaved_rows(gt)
            pairs: Iterable[tuple[np.ndarray, np.ndarray]]
            # every channel in one pass, read in place; but only the 7-tap window's sums along a row
            # vectorise with the channels interleaved (another window took 8-10x as long as on a plane)
            if rows_x is not None and rows_y is not None and (pred.ndim == 2 or win == 7):
                pairs, step = [(rows_x, rows_y)], 1 if pred.ndim == 2 else pred.shape[2]
            else:  # a channel of another layout is a strided view: a contiguous copy halves the kernel's time
                pairs = (
                    (np.ascontiguousarray(x), np.ascontiguousarray(y))  # one channel at a time
                    for x, y in zip(_planes(pred), _planes(gt), strict=True)
                )
                step = 1
            sums = window_sum_type(int(top), win)
            for x, y in pairs:
                out = x.shape[1] - (win - 1) * step
                col, hs, row = np.zeros((4, x.shape[1]), dtype=sums), np.empty((4, out), dtype=sums), np.empty(out)
                total += kernel_int(x, y, win, step, c1n, c2n, n / (n - 1), col, hs, row)
            pad = win // 2
            planes = 1 if pred.ndim == 2 else pred.shape[2]
            return total / ((pred.shape[0] - 2 * pad) * (pred.shape[1] - 2 * pad) * planes)
    extra = max(0, radius - pad)
    if extra:
        spec = ((extra, extra), (extra, extra)) + (((0, 0),) if pred.ndim == 3 else ())
        # numpy's 'symmetric' is scipy.ndimage's 'reflect'
        pred, gt = np.pad(pred, spec, mode="symmetric"), np.pad(gt, spec, mode="symmetric")
    height, width = pred.shape[:2]
    channels = 1 if pred.ndim == 2 else pred.shape[2]
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    compiled = compiled_kernel()
    if compiled is not None:
        lo, hi = pad + extra, height - pad - extra
        left, right = pad + extra, width - pad - extra
        planes = [(pred, gt)] if pred.ndim == 2 else [(pred[..., c], gt[..., c]) for c in range(channels)]
        total = 0.0
        for x, y in planes:
            if x.dtype == np.float16:  # no half precision in compiled code
                x, y = x.astype(np.float32), y.astype(np.float32)
            total += compiled(x, y, float(pred_scale), float(gt_scale), weights, lo, hi, left, right, c1, c2, cov_norm)
        return total / ((hi - lo) * (right - left) * channels)
    margin = pad + extra - radius  # first input row/column a kept output needs
    out_rows = range(pad + extra, height - pad - extra)
    cols = slice(margin, width - margin)
    step = _band_rows(width, channels, 1)
    total = 0.0
    count = 0
    for o0 in range(out_rows.start, out_rows.stop, step):
        o1 = min(o0 + step, out_rows.stop)
        rows = slice(o0 - radius, o1 + radius)
        x = _planar_band(pred, rows, cols, pred_scale)
        y = _planar_band(gt, rows, cols, gt_scale)
        m = np.empty((5, *x.shape))
        m[0] = x
        m[1] = y
        np.multiply(x, x, out=m[2])
        np.multiply(y, y, out=m[3])
        np.multiply(x, y, out=m[4])
        m = _correlate_valid(m, weights, m.ndim - 2, not gaussian)
        m = _correlate_valid(m, weights, m.ndim - 1, not gaussian)
        ux, uy, uxx, uyy, uxy = m
        # uxx, uyy, uxy become the (co)variances in place
        uxx -= ux * ux
        uyy -= uy * uy
        uxy -= ux * uy
        if cov_norm != 1.0:
            uxx *= cov_norm
            uyy *= cov_norm
            uxy *= cov_norm
        num = 2 * ux * uy + c1
        uxy *= 2
        uxy += c2
        num *= uxy
        ux *= ux
        uy *= uy
        ux += uy
        ux += c1  # B1
        uxx += uyy
        uxx += c2  # B2
        ux *= uxx
        num /= ux
        total += float(num.sum(dtype=np.float64))
        count += num.size
    return total / count
