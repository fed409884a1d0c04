"""Turning two decoded images into the arrays the metrics see.

Everything that shapes the numbers happens here, in one place and in a fixed
order: dtype check, alpha policy, layout check, data range, border crop, colour
conversion. :class:`PairInfo` records each decision so reports can state it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .conventions import CONVENTIONS
from .conventions import resolve as resolve_convention
from .errors import (
    ColorModeError,
    ConfigError,
    DataRangeError,
    DtypeError,
    ShapeMismatchError,
    WindowSizeError,
)
from .fast import compiled_luma, strided_span
from .metrics import METRICS, parse_metrics, ssim_window

Color = Literal["rgb", "y", "gray", "yiq", "yuv"]
Kernel = Literal["uniform", "gaussian", "ffmpeg"]
Alpha = Literal["drop", "include", "error"]
OutOfRange = Literal["error", "clip"]
COLORS: tuple[Color, ...] = ("rgb", "y", "gray", "yiq", "yuv")
YRounding = Literal["none", "half_away", "half_even"]
GrayAsY = Literal["map", "as_is"]
Border = Literal["valid", "keep"]
Downsample = Literal["none", "auto"]
MsssimVariant = Literal["pytorch_msssim", "tf", "torchmetrics", "piq", "pyiqa"]
ModCrop = Literal["none", "gt"]
CHOICES: dict[str, tuple[str, ...]] = {
    "y_rounding": ("none", "half_away", "half_even"),
    "gray_as_y": ("map", "as_is"),
    "ssim_border": ("valid", "keep"),
    "downsample": ("none", "auto"),
    "msssim": ("pytorch_msssim", "tf", "torchmetrics", "piq", "pyiqa"),
    "mod_crop": ("none", "gt"),
}
KERNELS: tuple[Kernel, ...] = ("uniform", "gaussian", "ffmpeg")
ALPHAS: tuple[Alpha, ...] = ("drop", "include", "error")
OUT_OF_RANGE: tuple[OutOfRange, ...] = ("error", "clip")

# ITU-R BT.601 luma as MATLAB's rgb2ycbcr computes it (16-235 for 8-bit), the
# super-resolution literature's "Y channel"; applied to unrounded floats.
Y_WEIGHTS = np.array([65.481, 128.553, 24.966]) / 255.0
# Y of YIQ (BT.601 luma, full range, no offset): pyiqa's and piq's "Y channel".
YIQ_WEIGHTS = np.array([0.299, 0.587, 0.114])
# skimage.color.rgb2gray's weights (ITU-R BT.709 luma, no offset).
GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])

_NATIVE_RANGE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
_LUMA_DTYPES = frozenset(np.dtype(t) for t in (np.uint8, np.uint16, np.float32, np.float64))


@dataclass(frozen=True)
class Options:
    """Everything that changes the numbers. Validated on construction."""

    metrics: tuple[str, ...] = ("ssim", "psnr", "mse")
    color: Color = "rgb"
    crop_border: int = 0
    ssim_kernel: Kernel = "uniform"
    win_size: int | None = None
    sigma: float = 1.5
    data_range: float | None = None
    alpha: Alpha = "drop"
    out_of_range: OutOfRange = "error"
    convention: str = "skimage"
    y_rounding: YRounding = "none"
    gray_as_y: GrayAsY = "map"
    ssim_border: Border = "valid"
    downsample: Downsample = "none"
    cs_relu: bool = False
    msssim: MsssimVariant = "pytorch_msssim"
    scale: int | None = None
    mod_crop: ModCrop = "none"
    psnr_color: Color | None = None  # PSNR and MSE on another colour mode than SSIM (pyiqa)
    overrides: tuple[str, ...] = ()  # explicit options that replaced the convention's

    @classmethod
    def resolve(cls, convention: str = "skimage", **explicit: Any) -> Options:
        """Options of a named convention (:mod:`iqeval.conventions`), with explicit options on top.

        ``Options.resolve("matlab", scale=4)`` is the MATLAB SR convention at x4;
        ``overrides`` records every explicit option that replaced the convention's.
        """
        known = frozenset(f for f in cls.__dataclass_fields__ if f not in ("convention", "overrides"))
        kwargs, overrides = resolve_convention(convention, explicit, known)
        return cls(**kwargs, overrides=overrides)

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", parse_metrics(self.metrics))
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {', '.join(allowed)}")
        if self.convention not in CONVENTIONS:
            raise ConfigError(f"convention={self.convention!r} is not one of {', '.join(CONVENTIONS)}")
        if self.psnr_color is not None and self.psnr_color not in COLORS:
            raise ConfigError(f"psnr_color={self.psnr_color!r} is not one of {', '.join(COLORS)}")
        if self.mod_crop == "gt" and not self.scale:
            raise ConfigError("mod_crop='gt' needs scale=")
        if self.scale is not None and (int(self.scale) != self.scale or self.scale < 1):
            raise ConfigError(f"scale={self.scale!r} must be a positive integer")
        if self.color not in COLORS:
            raise ConfigError(f"unknown colour mode {self.color!r}; choose from {', '.join(COLORS)}")
        if self.ssim_kernel not in KERNELS:
            raise ConfigError(f"unknown SSIM kernel {self.ssim_kernel!r}; choose from {', '.join(KERNELS)}")
        if self.out_of_range not in OUT_OF_RANGE:
            raise ConfigError(f"out_of_range={self.out_of_range!r} is not one of {', '.join(OUT_OF_RANGE)}")
        if self.alpha not in ALPHAS:
            raise ConfigError(f"unknown alpha policy {self.alpha!r}; choose from {', '.join(ALPHAS)}")
        if int(self.crop_border) != self.crop_border or self.crop_border < 0:
            raise ConfigError(f"crop border must be a non-negative integer, got {self.crop_border}")
        if self.win_size is not None and (self.win_size < 3 or self.win_size % 2 == 0):
            raise ConfigError(f"SSIM window size must be an odd integer of at least 3, got {self.win_size}")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ConfigError(f"SSIM sigma must be positive and finite, got {self.sigma}")
        if self.data_range is not None and not (np.isfinite(self.data_range) and self.data_range > 0):
            raise ConfigError(f"data range must be a positive number, got {self.data_range}")
        if self.alpha == "include" and self.color != "rgb":
            raise ConfigError("alpha='include' keeps alpha as a channel, which only color='rgb' can score")

    @property
    def window(self) -> int:
        """Side of the SSIM window in pixels."""
        return ssim_window(self.ssim_kernel, self.win_size, self.sigma)

    @property
    def skimage_ssim(self) -> bool:
        """True when SSIM is skimage's own definition (no border, downsampling or clipping variant)."""
        return (
            self.ssim_border == "valid"
            and self.downsample == "none"
            and not self.cs_relu
            and self.ssim_kernel != "ffmpeg"
        )

    def describe_ssim(self) -> str:
        """One phrase that says how SSIM was computed."""
        w = self.window
        if self.ssim_kernel == "ffmpeg":
            return "FFmpeg's 8x8 blocks at stride 4, integer sums (its ssim filter)"
        if self.ssim_kernel == "gaussian":
            text = f"gaussian sigma={self.sigma:g}, {w}x{w} window, population covariance"
        else:
            text = f"uniform {w}x{w} window, sample covariance"
        if self.ssim_border == "keep":
            text += ", mirrored borders kept"
        if self.downsample == "auto":
            text += ", downsampled by max(1, round(min(H, W) / 256))"
        if self.cs_relu:
            text += ", negative contrast-structure clipped to 0"
        return text

    def as_dict(self) -> dict[str, object]:
        """The options as plain JSON-ready values."""
        return {
            "metrics": list(self.metrics),
            "color": self.color,
            "crop_border": self.crop_border,
            "ssim_kernel": self.ssim_kernel,
            "win_size": self.window,
            "sigma": self.sigma,
            "data_range": self.data_range,
            "alpha": self.alpha,
            "out_of_range": self.out_of_range,
            "convention": self.convention,
            "y_rounding": self.y_rounding,
            "gray_as_y": self.gray_as_y,
            "ssim_border": self.ssim_border,
            "downsample": self.downsample,
            "cs_relu": self.cs_relu,
            "msssim": self.msssim,
            "scale": self.scale,
            "mod_crop": self.mod_crop,
            "psnr_color": self.psnr_color,
            "overrides": list(self.overrides),
        }


@dataclass(frozen=True)
class PairInfo:
    """The facts that shaped the numbers of one pair."""

    width: int
    height: int
    channels: int
    pred_dtype: str
    gt_dtype: str
    data_range: float
    data_range_source: str
    color: str
    crop_border: int
    scored_width: int
    scored_height: int
    ssim: str = field(default="")
    conversions: tuple[str, ...] = ()
    frame_offset: int | None = None  # sequences: the offset scored (given, or found by align)

    def as_dict(self) -> dict[str, object]:
        """The facts as plain JSON-ready values."""
        return {
            "width": self.width,
            "height": self.height,
            "channels": self.channels,
            "pred_dtype": self.pred_dtype,
            "gt_dtype": self.gt_dtype,
            "data_range": self.data_range,
            "data_range_source": self.data_range_source,
            "color": self.color,
            "crop_border": self.crop_border,
            "scored_width": self.scored_width,
            "scored_height": self.scored_height,
            "ssim": self.ssim,
            "conversions": list(self.conversions),
            **({} if self.frame_offset is None else {"frame_offset": self.frame_offset}),
        }


@dataclass(frozen=True)
class Prepared:
    """Two arrays ready for the metrics, in native units, with their facts.

    ``pred`` and ``gt`` keep their stored dtype where no arithmetic was needed
    (so the fast engine can convert just once); ``scale`` is the factor that
    maps stored values to metric units.
    """

    pred: np.ndarray
    gt: np.ndarray
    pred_scale: float
    gt_scale: float
    info: PairInfo


def native_range(dtype: np.dtype, name: str) -> float:
    """The data range implied by a dtype; raise for dtypes iqeval does not score."""
    dtype = np.dtype(dtype)
    if dtype in _NATIVE_RANGE:
        return _NATIVE_RANGE[dtype]
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return 1.0
    raise DtypeError(
        f"{name}: unsupported dtype {dtype}; iqeval scores uint8, uint16 and float images "
        "(pass float data in [0, 1] or set data_range=)"
    )


def _layout(channels: int) -> str:
    return {1: "gray", 2: "gray+alpha", 3: "RGB", 4: "RGBA"}.get(channels, f"{channels}-channel")


def _channels(a: np.ndarray) -> int:
    return 1 if a.ndim == 2 else int(a.shape[2])


def _apply_alpha(a: np.ndarray, policy: str, name: str, opaque: float, other_has_alpha: bool) -> np.ndarray:
    c = _channels(a)
    has_alpha = c in (2, 4)
    if has_alpha and policy == "error":
        raise ColorModeError(f"{name}: has an alpha channel; choose alpha='drop' or alpha='include'")
    if has_alpha and policy == "drop":
        return a[..., 0] if c == 2 else a[..., :3]
    if not has_alpha and policy == "include" and other_has_alpha:
        # a missing alpha channel means fully opaque
        base = a[..., None] if a.ndim == 2 else a
        alpha = np.full((*base.shape[:2], 1), opaque, dtype=a.dtype)
        return np.concatenate([base, alpha], axis=2)
    return a


def _check_values(
    a: np.ndarray, name: str, data_range: float, explicit: bool, policy: OutOfRange
) -> tuple[np.ndarray, str | None]:
    """Refuse values outside the range in use, or clip them when ``policy`` is "clip" (and say so)."""
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise DataRangeError(f"{name}: contains NaN or infinite values")
        if explicit:
            return a, None
        lo, hi = float(a.min()), float(a.max())
        if lo < 0.0 or hi > 1.0:
            if policy == "clip":
                n = int(np.count_nonzero((a < 0.0) | (a > 1.0)))
                note = f"{name}: {n} values in [{lo:g}, {hi:g}] clipped to [0, 1] (out_of_range='clip')"
                return np.clip(a, 0.0, 1.0), note
            raise DataRangeError(
                f"{name}: float values lie in [{lo:g}, {hi:g}], outside [0, 1]; pass data_range= to state their range"
            )
    elif explicit:
        hi = float(a.max())
        if hi > data_range:
            if policy == "clip":
                n = int(np.count_nonzero(a > data_range))
                note = f"{name}: {n} values above {data_range:g} clipped (out_of_range='clip')"
                return np.minimum(a, np.asarray(data_range).astype(a.dtype)), note
            raise DataRangeError(f"{name}: values reach {hi:g}, above data_range={data_range:g}")
    return a, None


def to_luma(a: np.ndarray, weights: np.ndarray, offset: float) -> np.ndarray:
    """Weighted sum of the RGB channels plus ``offset`` (float64); gray input counts as R=G=B."""
    if a.ndim == 3 and a.shape[2] >= 3 and a.dtype in _LUMA_DTYPES:
        kernel = compiled_luma()
        # one pass, in place, no float64 copy of the image; a flipped one is copied first
        found = None if kernel is None else strided_span(a) or strided_span(np.ascontiguousarray(a))
        if found is not None:  # None without numba, or for an empty image
            span, (rows, pixels, channels) = found
            out = np.empty(a.shape[:2])
            w0, w1, w2 = (float(w) for w in weights[:3])
            kernel(span, rows, pixels, channels, w0, w1, w2, float(offset), out)
            return out
    x = np.asarray(a, dtype=np.float64)
    if x.ndim == 2:
        x = x[..., None] * np.ones(3)
    out = x[..., 0] * weights[0]
    out += x[..., 1] * weights[1]
    out += x[..., 2] * weights[2]
    if offset:
        out += offset
    return out


def _luma(
    a: np.ndarray,
    weights: np.ndarray,
    scale: float,
    offset: float,
    rounding: str,
    data_range: float,
    gray_as_is: bool,
) -> np.ndarray:
    """Luma of an image in metric units, rounded to the 8-bit grid or integer codes when asked."""
    if a.ndim == 2 and gray_as_is:
        return np.asarray(a, dtype=np.float64) * scale  # MATLAB's scripts take a gray image as its own Y
    y = to_luma(a, weights * scale, offset)
    if rounding == "none":
        return y
    # integer images round to their codes (MATLAB's uint8 result); float ones to the 8-bit grid, as
    # pyiqa does: Y * 255, rounded (the same operations in the same order, so ties fall the same way)
    steps = 1.0 if a.dtype.kind in "ui" and scale == 1.0 else 255.0 / data_range
    if steps != 1.0:
        y *= steps
    if rounding == "half_even":
        np.rint(y, out=y)
    else:  # half away from zero; Y is never negative
        np.floor(y + 0.5, out=y)
    if steps != 1.0:
        y /= steps
    return y


def prepare(
    pred: np.ndarray, gt: np.ndarray, options: Options, pred_name: str = "pred", gt_name: str = "gt"
) -> Prepared:
    """Validate a pair and bring it into the units the metrics use.

    Raises a subclass of :class:`~iqeval.errors.IqevalError` that names the
    file(s) and the reason when the pair cannot be scored.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if options.color == "yuv":
        raise ColorModeError(
            f"color='yuv' scores the planes of planar YUV videos; {pred_name} is an image: "
            "pass color='rgb' or color='y'"
        )
    for a, name in ((pred, pred_name), (gt, gt_name)):
        if a.ndim == 3 and a.shape[2] == 1:
            continue
        if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 2, 3, 4)):
            raise ShapeMismatchError(f"{name}: expected an H x W or H x W x C image, got shape {a.shape}")
    if pred.ndim == 3 and pred.shape[2] == 1:
        pred = pred[..., 0]
    if gt.ndim == 3 and gt.shape[2] == 1:
        gt = gt[..., 0]
    pred_dtype, gt_dtype = str(pred.dtype), str(gt.dtype)
    pred_native = native_range(pred.dtype, pred_name)
    gt_native = native_range(gt.dtype, gt_name)

    mod_note = None
    if pred.shape[:2] != gt.shape[:2] and options.mod_crop == "gt" and options.scale:
        # MATLAB's modcrop: the ground truth's size cut down to a multiple of the scale
        gh, gw = gt.shape[:2]
        mh, mw = gh - gh % options.scale, gw - gw % options.scale
        if pred.shape[:2] == (mh, mw):
            gt = gt[:mh, :mw]
            mod_note = f"{gt_name}: {gw}x{gh} cut to {mw}x{mh}, a multiple of scale {options.scale} (mod_crop='gt')"
    if pred.shape[:2] != gt.shape[:2]:
        ph, pw = pred.shape[:2]
        gh, gw = gt.shape[:2]
        hint = ""
        if options.scale and (gh % options.scale or gw % options.scale) and options.mod_crop == "none":
            hint = f"; the ground truth is not a multiple of scale {options.scale}: pass mod_crop='gt' to cut it"
        raise ShapeMismatchError(f"size mismatch: {pred_name} is {pw}x{ph} but {gt_name} is {gw}x{gh}{hint}")

    explicit = options.data_range is not None
    p_alpha, g_alpha = _channels(pred) in (2, 4), _channels(gt) in (2, 4)
    pred = _apply_alpha(pred, options.alpha, pred_name, pred_native, g_alpha)
    gt = _apply_alpha(gt, options.alpha, gt_name, gt_native, p_alpha)

    pc, gc = _channels(pred), _channels(gt)
    if options.color == "rgb" and pc != gc:
        raise ColorModeError(
            f"{pred_name} is {_layout(pc)} but {gt_name} is {_layout(gc)}; "
            "use color='gray' or color='y' to compare them"
        )

    pred_range, gt_range = pred_native, gt_native
    pred_explicit = gt_explicit = explicit
    if pred.dtype == gt.dtype or (pred.dtype.kind == "f" and gt.dtype.kind == "f"):
        pred_scale = gt_scale = 1.0
        if explicit:
            assert options.data_range is not None  # narrowed for the type checker
            data_range = float(options.data_range)
            source = "data_range"
        else:
            data_range = pred_native
            source = f"dtype {pred.dtype}"
    else:
        # mixed dtypes: bring both to [0, 1] rather than compare raw codes; an
        # explicit range states the range of every side that is not uint8 (uint8
        # is always 0-255), e.g. 12-bit data in a 16-bit file against 8-bit truth
        if explicit:
            assert options.data_range is not None  # narrowed for the type checker
            if pred.dtype != np.uint8:
                pred_range = float(options.data_range)
            else:
                pred_explicit = False
            if gt.dtype != np.uint8:
                gt_range = float(options.data_range)
            else:
                gt_explicit = False
        data_range = 1.0
        how = "data_range" if explicit else "dtype ranges"
        source = (
            f"mixed dtypes {pred.dtype}/{gt.dtype}, rescaled to [0, 1] "
            f"(divided by {pred_range:g} and {gt_range:g}, from the {how})"
        )
        pred_scale, gt_scale = 1.0 / pred_range, 1.0 / gt_range
    policy = options.out_of_range
    pred, pred_note = _check_values(
        pred, pred_name, pred_range if pred_scale != 1.0 else data_range, pred_explicit, policy
    )
    gt, gt_note = _check_values(gt, gt_name, gt_range if gt_scale != 1.0 else data_range, gt_explicit, policy)

    height, width = pred.shape[:2]
    c = options.crop_border
    if 2 * c >= min(height, width):
        raise WindowSizeError(f"{pred_name}: crop border {c} leaves nothing of a {width}x{height} image")
    if c:
        pred = pred[c:-c, c:-c]
        gt = gt[c:-c, c:-c]
    sh, sw = pred.shape[:2]
    for name in options.metrics:
        check = METRICS[name].too_small
        why = check(sw, sh, options) if check is not None else None
        if why:
            after = f" after a {c}-pixel crop" if c else ""
            raise WindowSizeError(f"{pred_name}: {sw}x{sh}{after} is {why}")

    if options.color in ("y", "yiq"):
        weights, offset = (Y_WEIGHTS, 16.0 * data_range / 255.0) if options.color == "y" else (YIQ_WEIGHTS, 0.0)
        as_is = options.gray_as_y == "as_is"
        pred = _luma(pred, weights, pred_scale, offset, options.y_rounding, data_range, as_is)
        gt = _luma(gt, weights, gt_scale, offset, options.y_rounding, data_range, as_is)
        pred_scale = gt_scale = 1.0
    elif options.color == "gray":
        if pred.ndim == 3:
            pred, pred_scale = to_luma(pred, GRAY_WEIGHTS * pred_scale, 0.0), 1.0
        if gt.ndim == 3:
            gt, gt_scale = to_luma(gt, GRAY_WEIGHTS * gt_scale, 0.0), 1.0
    info = PairInfo(
        conversions=tuple(n for n in (mod_note, pred_note, gt_note) if n),
        width=width,
        height=height,
        channels=_channels(pred),
        pred_dtype=pred_dtype,
        gt_dtype=gt_dtype,
        data_range=data_range,
        data_range_source=source,
        color=options.color,
        crop_border=c,
        scored_width=sw,
        scored_height=sh,
        ssim=options.describe_ssim(),
    )
    return Prepared(pred=pred, gt=gt, pred_scale=pred_scale, gt_scale=gt_scale, info=info)
