"""The metric registry and the reference implementations.

A metric is one :class:`Metric` value in :data:`METRICS`: its name, label,
unit and direction, the options it reads, the smallest image it can score,
its reference implementation (scikit-image), an optional fast kernel
(:mod:`iqeval.fast`), how its frames pool into a sequence's score, and how
people read it. Everything else (the engines, the gate, every writer, the
HTML report) loops over the registry; adding a metric is one function, one
registry entry and its tests.

Each reference function follows :mod:`skimage.metrics`: one public function
with keyword-only options.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from . import fast
from .errors import ColorModeError, ConfigError

if TYPE_CHECKING:  # types only: prepare imports this module
    from .prepare import Options, Prepared

# skimage.metrics is imported inside the functions: it pulls in scipy.stats,
# a second of start-up that the fast engine and the command line never need.

Pooling = str  # a key of POOLS, or pN for the N-th percentile
Engine = Literal["fast", "skimage"]


def _harmonic(v: np.ndarray) -> float:
    # libvmaf's harmonic mean, defined for every value above -1 (SSIM, PSNR, MSE alike)
    with np.errstate(divide="ignore"):
        inverse = float(np.mean(1.0 / (1.0 + np.asarray(v, dtype=np.float64))))
    return math.inf if inverse == 0.0 else 1.0 / inverse - 1.0


POOLS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda v: float(np.mean(v)),
    "harmonic": _harmonic,
    "min": lambda v: float(np.min(v)),
    "max": lambda v: float(np.max(v)),
    "median": lambda v: float(np.median(v)),
}
"""How per-frame values become a sequence's value: ``mean`` (one infinite frame makes it
infinite), ``harmonic`` (libvmaf's: 1 / mean(1 / (1 + x)) - 1, which weighs bad frames
more), ``min``, ``max``, ``median``, and ``pN`` (the N-th percentile, linear
interpolation, e.g. ``p5``). For a metric where lower is better (MSE) the bad tail
is ``max`` and ``p95``."""


def parse_pool(spec: str | None, metrics: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``"harmonic"`` (every metric) or ``"psnr=min,ssim=p5"`` as (metric, pooling) pairs."""
    if not spec:
        return ()
    if "=" not in spec:
        pool_function(spec.strip())
        return tuple((m, spec.strip()) for m in metrics)
    out = []
    for part in spec.split(","):
        name, _, pool = (x.strip() for x in part.partition("="))
        if name not in metrics:
            raise ConfigError(f"pool={spec!r}: {name!r} is not a metric being computed ({', '.join(metrics)})")
        pool_function(pool)
        out.append((name, pool))
    return tuple(out)


def pool_function(name: str) -> Callable[[np.ndarray], float]:
    """The pooling called ``name`` (a key of :data:`POOLS`, or ``pN`` with 0 <= N <= 100)."""
    if name in POOLS:
        return POOLS[name]
    if name.startswith("p"):
        try:
            q = float(name[1:])
        except ValueError:
            q = math.nan
        if 0.0 <= q <= 100.0:
            return lambda v: float(np.percentile(v, q))
    raise ConfigError(f"unknown pooling {name!r}; choose from {', '.join(POOLS)} or pN (a percentile, e.g. p5)")


class Scratch:
    """Work shared by the metrics of one pair (the squared error serves PSNR and MSE)."""

    def __init__(self, prep: Prepared) -> None:
        self.prep = prep
        self._memo: dict[str, Any] = {}

    def get(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def mse(self) -> float:
        p = self.prep
        return float(
            self.get("mse", lambda: fast.sum_squared_error(p.pred, p.gt, p.pred_scale, p.gt_scale) / p.pred.size)
        )


Reference = Callable[[np.ndarray, np.ndarray, "Options", float], float]
"""(pred, gt, options, data_range) on float64 arrays in metric units -> value."""
Kernel = Callable[["Prepared", "Options", Scratch], float]
"""(prepared pair, options, scratch) -> the same value as the reference, faster."""
SizeCheck = Callable[[int, int, "Options"], "str | None"]
"""(width, height, options) -> why the image is too small, or None."""


@dataclass(frozen=True)
class Metric:
    """One metric and everything the rest of iqeval needs to know about it."""

    name: str
    label: str
    unit: str
    higher_is_better: bool
    reference: Reference
    fast: Kernel | None = None
    options: tuple[str, ...] = ()  # the Options fields it reads
    too_small: SizeCheck | None = None
    pool: Pooling = "mean"
    decimals: int | None = None  # shown with this many decimals; None: 6 significant digits
    color_option: str = "color"  # the Options field naming the colour mode it is computed in
    # how the Y, U and V planes of a video pool (color='yuv'): the area-weighted mean of the
    # per-plane values, or (PSNR) the value of the area-weighted MSE, as FFmpeg's filters do
    planes: Literal["area", "mse"] = "area"

    def worse(self, value: float, limit: float) -> bool:
        """True when ``value`` is worse than ``limit`` in this metric's direction (nan is always worse)."""
        if math.isnan(value):
            return True
        return value < limit if self.higher_is_better else value > limit

    def drop(self, old: float, new: float) -> float:
        """How much worse ``new`` is than ``old`` (negative for an improvement); inf-safe."""
        a, b = (old, new) if self.higher_is_better else (new, old)
        if a == b:  # includes inf == inf
            return 0.0
        return a - b

    def compute(self, prep: Prepared, options: Options, engine: Engine, scratch: Scratch) -> float:
        """This metric of a prepared pair, by the fast kernel or the reference."""
        if engine == "fast" and self.fast is not None:
            return float(self.fast(prep, options, scratch))
        x = scratch.get("x", lambda: as_float(prep.pred, prep.pred_scale))
        y = scratch.get("y", lambda: as_float(prep.gt, prep.gt_scale))
        return float(self.reference(x, y, options, prep.info.data_range))


def as_float(a: np.ndarray, scale: float) -> np.ndarray:
    """float64 copy (or view) of ``a`` multiplied by ``scale``."""
    x = np.asarray(a, dtype=np.float64)
    if scale != 1.0:
        x = x * scale
    return x


def parse_metrics(
    names: str | tuple[str, ...] | list[str], registry: Mapping[str, Metric] | None = None
) -> tuple[str, ...]:
    """Validate metric names and return them in registry order, without repeats."""
    registry = METRICS if registry is None else registry
    items = names.split(",") if isinstance(names, str) else list(names)
    wanted = [n.strip().lower() for n in items if n.strip()]
    unknown = [n for n in wanted if n not in registry]
    if unknown:
        raise ConfigError(f"unknown metric {unknown[0]!r}; choose from {', '.join(registry)}")
    if not wanted:
        raise ConfigError("no metric selected; choose from " + ", ".join(registry))
    return tuple(n for n in registry if n in wanted)


def compute(names: Iterable[str], prep: Prepared, options: Options, engine: Engine = "fast") -> dict[str, float]:
    """The one loop that computes the selected metrics of a prepared pair."""
    scratch = Scratch(prep)
    return {name: METRICS[name].compute(prep, options, engine, scratch) for name in names}


def ssim_window(kernel: str, win_size: int | None, sigma: float) -> int:
    """Side of the SSIM window as skimage derives it (FFmpeg's blocks: 8)."""
    if kernel == "ffmpeg":
        return 8
    return fast.window(kernel, win_size, sigma)[2]


def ffmpeg_constants(max_value: int) -> tuple[int, int]:
    """FFmpeg's SSIM constants for 8x8 windows of integer sums, rounded to integers as it rounds them."""
    return int(0.01 * 0.01 * max_value * max_value * 64 + 0.5), int(0.03 * 0.03 * max_value * max_value * 64 * 63 + 0.5)


def ffmpeg_ssim(x: np.ndarray, y: np.ndarray, max_value: int) -> float:
    """SSIM of one plane as FFmpeg's ``ssim`` filter computes it (libavfilter/vf_ssim.c).

    Sums over 4x4 blocks, each 8x8 window the 2x2 blocks around a corner (so
    windows step by 4 pixels), exact integer sums, FFmpeg's constants rounded
    to integers, ``(2 S1 S2 + c1)(2 (64 S12 - S1 S2) + c2) / ((S1^2 + S2^2 + c1)
    (64 SS - S1^2 - S2^2 + c2))`` with SS the sum of both squares, averaged
    over the windows. Pixels beyond the last whole block are not used, as in
    FFmpeg. FFmpeg accumulates in float32 for 8-bit video; this sums in
    float64, so the two agree to about 1e-6.
    """
    h4, w4 = x.shape[0] >> 2, x.shape[1] >> 2
    a = x[: 4 * h4, : 4 * w4].astype(np.int64)
    b = y[: 4 * h4, : 4 * w4].astype(np.int64)

    def blocks(v: np.ndarray) -> np.ndarray:  # 4x4 block sums, then the 2x2 neighbourhoods: 8x8 windows
        s = v.reshape(h4, 4, w4, 4).sum(axis=(1, 3))
        return s[:-1, :-1] + s[1:, :-1] + s[:-1, 1:] + s[1:, 1:]

    s1, s2, ss, s12 = blocks(a), blocks(b), blocks(a * a + b * b), blocks(a * b)
    c1, c2 = ffmpeg_constants(max_value)
    variance = ss * 64 - s1 * s1 - s2 * s2
    covariance = s12 * 64 - s1 * s2
    num = (2 * s1 * s2 + c1).astype(np.float64) * (2 * covariance + c2).astype(np.float64)
    den = (s1 * s1 + s2 * s2 + c1).astype(np.float64) * (variance + c2).astype(np.float64)
    return float(np.mean(num / den))


def ssim_kwargs(kernel: str, win_size: int | None, sigma: float) -> dict[str, Any]:
    """The keyword arguments of :func:`skimage.metrics.structural_similarity` for these options.

    The one place that turns iqeval's SSIM options into skimage's: the metric
    and the SSIM map both use it.
    """
    if kernel == "gaussian":
        return {"gaussian_weights": True, "sigma": sigma, "win_size": win_size, "use_sample_covariance": False}
    return {"win_size": win_size}


def mse(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean squared error, in the squared units of the inputs.

    Examples
    --------
    >>> import numpy as np
    >>> mse(np.full((4, 4), 10.0), np.full((4, 4), 13.0))
    9.0
    """
    from skimage.metrics import mean_squared_error

    return float(mean_squared_error(gt, pred))


def psnr(pred: np.ndarray, gt: np.ndarray, *, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical inputs.

    Examples
    --------
    >>> import numpy as np
    >>> round(psnr(np.full((4, 4), 10.0), np.full((4, 4), 11.0), data_range=255), 6)
    48.130804
    >>> psnr(np.zeros((4, 4)), np.zeros((4, 4)), data_range=255)
    inf
    """
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

    # skimage divides by zero (and warns) for identical images; the honest answer is inf
    if float(mean_squared_error(gt, pred)) == 0.0:
        return math.inf
    return float(peak_signal_noise_ratio(gt, pred, data_range=float(data_range)))


def ssim(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    data_range: float,
    kernel: str = "uniform",
    win_size: int | None = None,
    sigma: float = 1.5,
) -> float:
    """Mean structural similarity, averaged over channels as skimage does.

    ``kernel="uniform"`` is skimage's default (7x7 box, sample covariance);
    ``kernel="gaussian"`` is Wang et al. (2004): an 11x11 Gaussian window with
    sigma 1.5 and population covariance.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(100.0).reshape(10, 10)
    >>> ssim(x, x, data_range=255)
    1.0
    """
    from skimage.metrics import structural_similarity

    channel_axis = -1 if pred.ndim == 3 else None
    value = structural_similarity(
        gt, pred, data_range=float(data_range), channel_axis=channel_axis, **ssim_kwargs(kernel, win_size, sigma)
    )
    return float(value)


# ---------------------------------------------------------------- SSIM variants and MS-SSIM

MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang, Simoncelli and Bovik (2003)


def _mirror(a: np.ndarray, r: int) -> np.ndarray:
    """``np.pad(a, r, mode="reflect")`` of a 2-D array: mirrored about the edge samples, which are not
    repeated. Five slice copies, without np.pad's Python (about 30 us a call, the whole SSIM of a
    small image)."""
    h, w = a.shape
    if r <= 0 or min(h, w) <= r + 1:  # a mirror that needs more than one reflection: numpy's own
        return np.pad(a, r, mode="reflect")
    out = np.empty((h + 2 * r, w + 2 * r), dtype=a.dtype)
    out[r : h + r, r : w + r] = a
    out[r : h + r, :r] = a[:, r:0:-1]
    out[r : h + r, w + r :] = a[:, w - 2 : w - 2 - r : -1]
    out[:r] = out[2 * r : r : -1]
    out[h + r :] = out[h + r - 2 : h - 2 : -1]
    return out


def _ssim_plane_compiled(
    kernel: Any,
    x: np.ndarray,
    y: np.ndarray,
    data_range: float,
    weights: np.ndarray,
    cov: float,
    keep: bool,
    cs_relu: bool,
    xs: float = 1.0,
    ys: float = 1.0,
    want_cs: bool = True,
) -> tuple[float, float]:
    """:func:`_ssim_plane` by the compiled kernel: the same sums, without full-size temporaries.

    ``x`` and ``y`` may be any real dtype the kernel reads (see :func:`_compiled_reads`),
    multiplied by ``xs`` and ``ys`` as they are read.
    """
    r = weights.size // 2
    h, w = x.shape
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    inner = (h - 2 * r) * (w - 2 * r)
    cs = math.nan
    if not keep or want_cs:  # the valid interior; without want_cs, the SSIM map alone (one division a pixel)
        s, cs = kernel(x, y, float(xs), float(ys), weights, r, h - r, r, w - r, c1, c2, cov, cs_relu, alone=not want_cs)
        cs = cs / inner if want_cs else math.nan
        if not keep:
            return s / inner, cs
    # kept borders: mirror the samples by the radius (numpy's 'reflect' is scipy's 'mirror'), in their own
    # dtype (the kernel scales them as it reads), and sum it all
    xp, yp = _mirror(x, r), _mirror(y, r)
    s_all, _ = kernel(xp, yp, float(xs), float(ys), weights, r, h + r, r, w + r, c1, c2, cov, cs_relu, alone=True)
    return s_all / (h * w), cs


def _ssim_plane(
    x: np.ndarray,
    y: np.ndarray,
    data_range: float,
    weights: np.ndarray,
    cov: float,
    keep: bool,
    cs_relu: bool,
    compiled: bool = False,
    xs: float = 1.0,
    ys: float = 1.0,
    want_cs: bool = True,
) -> tuple[float, float]:
    """(mean SSIM, mean contrast-structure) of one plane: ``x * xs`` against ``y * ys``.

    Borders: the filters see mirrored pixels and then the margin a window
    would overhang is dropped (skimage, MATLAB, TF: 'valid'); with ``keep``
    the SSIM mean also covers that margin, filtered over a mirror that repeats
    no edge pixel (torchmetrics' reflect padding). The contrast-structure mean
    always covers the valid interior. Without ``want_cs`` (single-scale SSIM)
    the compiled kernel computes the SSIM map alone, and with ``keep`` skips
    the interior's pass, and its contrast-structure mean is NaN (SciPy's
    filters compute it either way).
    """
    kernel = fast.compiled_kernel(sums=True) if compiled else None
    if kernel is not None and _compiled_reads(x) and _compiled_reads(y):
        return _ssim_plane_compiled(kernel, x, y, data_range, weights, cov, keep, cs_relu, xs, ys, want_cs)
    x, y = as_float(x, xs), as_float(y, ys)
    from scipy import ndimage

    mode = "mirror" if keep else "reflect"

    def filt(a: np.ndarray) -> np.ndarray:
        return ndimage.correlate1d(ndimage.correlate1d(a, weights, 0, mode=mode), weights, 1, mode=mode)

    ux, uy = filt(x), filt(y)
    vx = cov * (filt(x * x) - ux * ux)
    vy = cov * (filt(y * y) - uy * uy)
    vxy = cov * (filt(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    cs = (2 * vxy + c2) / (vx + vy + c2)
    if cs_relu:
        np.maximum(cs, 0.0, out=cs)
    ssim_map = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1) * cs
    r = weights.size // 2
    inner = (slice(r, -r or None), slice(r, -r or None))
    return float((ssim_map if keep else ssim_map[inner]).mean()), float(cs[inner].mean())


def _average_pool(a: np.ndarray, f: int, scale: float = 1.0) -> np.ndarray:
    """f x f average pooling with stride f of ``a * scale`` in float64, dropping the rows and columns
    that do not fill a block.

    The f * f samples of each block are added in row-major order from strided
    views (each converted to float64 on its own: no full-size copy of ``a``),
    then divided by f * f (for f = 2 the same bits as :func:`iqeval._kernels.halve`'s
    times 0.25): five times faster than numpy's mean over two axes of a
    reshaped copy.
    """
    h, w = (a.shape[0] // f) * f, (a.shape[1] // f) * f
    out = np.array(as_float(a[0:h:f, 0:w:f], scale), dtype=np.float64)  # a copy: the sum is made in it
    for i in range(f):
        for j in range(f):
            if i or j:
                out += as_float(a[i:h:f, j:w:f], scale)
    out /= f * f
    return out


def _wang_downsample(a: np.ndarray, scale: float, kernel: Any) -> tuple[np.ndarray, float]:
    """Wang's ``ssim.m`` (and piq's) step, average pooling by f = max(1, round(min(H, W) / 256)),
    of ``a * scale``, as (plane, the scale still to apply).

    Nothing to pool: the samples as they are. By 2 (images of 384 to 639
    pixels a side): the compiled pooling (``kernel``, the fast engine) reads
    them as they are; by more, or without it, :func:`_average_pool` does.
    Either way the same bits as pooling the scaled float64 plane, which is
    never made.
    """
    f = max(1, round(min(a.shape[:2]) / 256))
    if f == 1:
        return a, scale
    if f == 2 and kernel is not None:
        return _halve(a, "torchmetrics", scale, kernel), 1.0  # torchmetrics' halving drops odd rows, as this does
    return _average_pool(a, f, scale), 1.0


def ssim_variant(
    x: np.ndarray,
    y: np.ndarray,
    data_range: float,
    options: Options,
    compiled: bool = False,
    scale: tuple[float, float] = (1.0, 1.0),
) -> float:
    """SSIM of ``x * scale[0]`` against ``y * scale[1]`` with a convention's border, downsampling and
    clipping choices, in float64.

    ``compiled`` uses the compiled kernels (the fast engine), which read the
    samples as they are, one plane at a time: no float64 copy of the
    full-size images. Otherwise SciPy's filters (the reference) on float64.
    """
    weights, _, _, cov = fast.window(options.ssim_kernel, options.win_size, options.sigma)
    keep = options.ssim_border == "keep"
    halve = fast.compiled_halve() if compiled else None
    values = []
    for px, py in zip(fast._planes(x), fast._planes(y), strict=True):
        xs, ys = scale
        if not (compiled and _compiled_reads(px) and _compiled_reads(py)):
            px, py, xs, ys = as_float(px, xs), as_float(py, ys), 1.0, 1.0
        if options.downsample == "auto":
            (px, xs), (py, ys) = _wang_downsample(px, xs, halve), _wang_downsample(py, ys, halve)
        plane = _ssim_plane(px, py, data_range, weights, cov, keep, options.cs_relu, compiled, xs, ys, want_cs=False)
        values.append(plane[0])
    return float(np.mean(values))


def _compiled_reads(a: np.ndarray) -> bool:
    """Whether the compiled kernels read ``a`` as it is (else it is converted to float64 first)."""
    return a.dtype.kind in "ui" or a.dtype in (np.float32, np.float64)


def _halve(a: np.ndarray, variant: str, scale: float = 1.0, kernel: Any = None) -> np.ndarray:
    """One MS-SSIM downsampling step of ``a * scale``: a 2x2 average, with the variant's treatment of odd sizes.

    ``kernel`` (:func:`iqeval._kernels.halve`) pools where no padding is needed, reading ``a`` as it is.
    """
    h, w = a.shape
    even = h % 2 == 0 and w % 2 == 0  # nothing to pad: every variant pools the same 2x2 blocks
    if kernel is not None and (even or variant == "torchmetrics") and _compiled_reads(a):
        out = np.empty((h // 2, w // 2))
        kernel(a, float(scale), out)
        return out
    a = as_float(a, scale)
    if even:
        return _average_pool(a, 2)
    if variant in ("pytorch_msssim", "pyiqa"):
        # avg_pool2d(kernel 2, padding=size % 2): zeros on both sides, counted in the average
        a = np.pad(a, ((h % 2, h % 2), (w % 2, w % 2)))
        return _average_pool(a, 2)
    if variant == "tf":
        # TF pads odd sizes at the end, repeating the last row or column, then pools
        return _average_pool(np.pad(a, ((0, h % 2), (0, w % 2)), mode="symmetric"), 2)
    if variant == "piq":
        # piq repeats the first row and column when either side is odd, then pools
        p = max(h % 2, w % 2)
        return _average_pool(np.pad(a, ((p, 0), (p, 0)), mode="edge"), 2)
    return _average_pool(a, 2)  # torchmetrics: odd rows and columns dropped


def msssim_min_side(variant: str, window: int = 11, scales: int = 5) -> int:
    """The smallest side that leaves a full window at the coarsest scale of this variant."""
    side = window
    while True:
        n = side
        for _ in range(scales - 1):
            n = n // 2 if variant == "torchmetrics" else (n + 1) // 2
        if n >= window:
            return side
        side += 1


def msssim(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    data_range: float,
    variant: str = "pytorch_msssim",
    compiled: bool = False,
    scale: tuple[float, float] = (1.0, 1.0),
) -> float:
    """Multi-scale SSIM (Wang et al. 2003): 5 scales, 11x11 Gaussian window (sigma 1.5), 2x2 averaging.

    The variants differ where the peers do: how odd sizes are pooled (see
    :func:`_halve`), whether negative values are clipped to 0 per scale mean
    (pytorch-msssim, TF, torchmetrics, piq) or per pixel of the
    contrast-structure map (pyiqa), whether channels are averaged before the
    product (torchmetrics) or after, and torchmetrics' kept borders at the
    coarsest scale.

    The images are ``pred * scale[0]`` and ``gt * scale[1]`` in float64.
    ``compiled`` runs the compiled kernels, which read integer and float
    samples as they are (no float64 copy of the full-size images) and give
    the same bits for the pooling and equal sums to rounding for SSIM.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((176, 176))
    >>> msssim(x, x, data_range=1.0)
    1.0
    """
    weights, _ = fast._kernel(True, 0, 1.5)
    keep_last = variant == "torchmetrics"
    pyiqa = variant == "pyiqa"
    halve = fast.compiled_halve() if compiled else None
    per_plane = []  # per channel: [(ssim, cs) for each scale]
    for px, py in zip(fast._planes(pred), fast._planes(gt), strict=True):
        xs, ys = scale
        if halve is None or not (_compiled_reads(px) and _compiled_reads(py)):
            px, py, xs, ys = as_float(px, xs), as_float(py, ys), 1.0, 1.0
        scales = []
        for level in range(len(MSSSIM_WEIGHTS)):
            keep = keep_last and level == len(MSSSIM_WEIGHTS) - 1
            scales.append(_ssim_plane(px, py, data_range, weights, 1.0, keep, pyiqa, compiled, xs, ys))
            if level < len(MSSSIM_WEIGHTS) - 1:
                px, py = _halve(px, variant, xs, halve), _halve(py, variant, ys, halve)
                xs = ys = 1.0
        per_plane.append(scales)
    w = np.asarray(MSSSIM_WEIGHTS)

    def combine(scales: list[tuple[float, float]]) -> float:
        values = np.array([cs for _, cs in scales[:-1]] + [scales[-1][0]])
        if not pyiqa:
            values = np.maximum(values, 0.0)
        return float(np.prod(values**w))

    if variant == "torchmetrics":  # channels averaged at each scale, then combined
        return combine([tuple(np.mean([p[i] for p in per_plane], axis=0)) for i in range(len(w))])
    return float(np.mean([combine(p) for p in per_plane]))


# ---------------------------------------------------------------- the registry


_FFMPEG_INTEGERS = (
    "ssim_kernel='ffmpeg' scores integer samples of one bit depth, as FFmpeg does; "
    "these were converted (a colour mode or mixed dtypes): pass color='rgb', or a YUV video with color='yuv'"
)


def _ffmpeg_planes(pred: np.ndarray, gt: np.ndarray, data_range: float, compiled: bool = False) -> float:
    kernel = fast.compiled_ffmpeg() if compiled else None
    top = round(data_range)
    values = []
    for x, y in zip(fast._planes(pred), fast._planes(gt), strict=True):
        if kernel is None:
            values.append(ffmpeg_ssim(x, y, top))
            continue
        total, count = kernel(x, y, *ffmpeg_constants(top))
        values.append(total / count)
    return float(np.mean(values))


def _ssim_reference(x: np.ndarray, y: np.ndarray, o: Options, data_range: float) -> float:
    if o.ssim_kernel == "ffmpeg":  # integer samples: float64 holds them exactly
        if not (np.array_equal(x, np.rint(x)) and np.array_equal(y, np.rint(y))):
            raise ColorModeError(_FFMPEG_INTEGERS)
        return _ffmpeg_planes(x.astype(np.int64), y.astype(np.int64), data_range)
    if not o.skimage_ssim:
        return ssim_variant(x, y, data_range, o)
    return ssim(x, y, data_range=data_range, kernel=o.ssim_kernel, win_size=o.win_size, sigma=o.sigma)


def _ssim_fast(p: Prepared, o: Options, scratch: Scratch) -> float:
    if o.ssim_kernel == "ffmpeg":
        if p.pred_scale != 1.0 or p.gt_scale != 1.0 or p.pred.dtype.kind not in "ui" or p.gt.dtype.kind not in "ui":
            raise ColorModeError(_FFMPEG_INTEGERS)
        return _ffmpeg_planes(p.pred, p.gt, p.info.data_range, compiled=True)
    if not o.skimage_ssim:  # a convention's variant: the compiled kernels read the samples as they are
        return ssim_variant(p.pred, p.gt, p.info.data_range, o, compiled=True, scale=(p.pred_scale, p.gt_scale))
    return fast.mean_ssim(
        p.pred,
        p.gt,
        p.pred_scale,
        p.gt_scale,
        data_range=p.info.data_range,
        kernel=o.ssim_kernel,
        win_size=o.win_size,
        sigma=o.sigma,
    )


def _ssim_too_small(width: int, height: int, o: Options) -> str | None:
    w = o.window
    if o.downsample == "auto":  # the window must fit the downsampled image
        f = max(1, round(min(width, height) / 256))
        width, height = width // f, height // f
    if min(width, height) >= w:
        return None
    return f"smaller than the {w}x{w} SSIM window; pass an odd win_size= of at most {min(width, height)}"


def _psnr_fast(p: Prepared, o: Options, scratch: Scratch) -> float:
    m = scratch.mse()
    r = p.info.data_range
    return math.inf if m == 0.0 else 10.0 * math.log10(r * r / m)


def _msssim_reference(x: np.ndarray, y: np.ndarray, o: Options, data_range: float) -> float:
    return msssim(x, y, data_range=data_range, variant=o.msssim)


def _msssim_fast(p: Prepared, o: Options, scratch: Scratch) -> float:
    # the compiled kernels read the samples as they are: no float64 copy of the full-size images
    scale = (p.pred_scale, p.gt_scale)
    return msssim(p.pred, p.gt, data_range=p.info.data_range, variant=o.msssim, compiled=True, scale=scale)


def _msssim_too_small(width: int, height: int, o: Options) -> str | None:
    side = msssim_min_side(o.msssim)
    if min(width, height) >= side:
        return None
    return f"too small for MS-SSIM: 5 scales with an 11x11 window need at least {side}x{side} (msssim={o.msssim!r})"


METRICS: dict[str, Metric] = {
    "ssim": Metric(
        "ssim",
        "SSIM",
        "",
        True,
        reference=_ssim_reference,
        fast=_ssim_fast,
        options=("ssim_kernel", "win_size", "sigma", "ssim_border", "downsample", "cs_relu"),
        too_small=_ssim_too_small,
        decimals=6,
    ),
    "psnr": Metric(
        "psnr",
        "PSNR",
        "dB",
        True,
        reference=lambda x, y, o, r: psnr(x, y, data_range=r),
        fast=_psnr_fast,
        decimals=4,
        options=("psnr_color",),
        color_option="psnr_color",
        planes="mse",
    ),
    "mse": Metric(
        "mse",
        "MSE",
        "",
        False,
        reference=lambda x, y, o, r: mse(x, y),
        fast=lambda p, o, s: s.mse(),
        color_option="psnr_color",
    ),
    "msssim": Metric(
        "msssim",
        "MS-SSIM",
        "",
        True,
        reference=_msssim_reference,
        fast=_msssim_fast,
        options=("msssim",),
        too_small=_msssim_too_small,
        decimals=6,
    ),
}
"""Every metric iqeval knows, in report order. ``register`` adds one."""

BUILTIN_METRICS = frozenset(METRICS)
"""The metrics every process knows on import; others are shipped to workers with the work."""


def register(metric: Metric) -> Metric:
    """Add a metric to the registry (after the built-in ones); returns it.

    Its functions must be importable module-level functions (not lambdas) when
    it is to run in worker processes or on Dask: the metric is pickled and
    sent with the work.
    """
    if metric.name in METRICS:
        raise ConfigError(f"a metric named {metric.name!r} is already registered")
    pool_function(metric.pool)  # a ConfigError when unknown
    METRICS[metric.name] = metric
    return metric
