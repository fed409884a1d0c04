"""Pictures: SSIM maps and absolute-error heatmaps with a colour scale.

Maps are computed on the same prepared arrays as the scores (after crop,
colour conversion and data-range handling), so what you see is what was
scored. The SSIM map is skimage's ``full=True`` map, averaged over channels;
the error map is ``|pred - gt|`` averaged over channels, in data-range units.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SequenceError
from .io import DEFAULT_MAX_PIXELS, encode_image
from .metrics import METRICS, as_float, ssim_kwargs
from .outputs import write_file_atomic
from .prepare import Options, Prepared, prepare
from .report import worst_items
from .results import ItemResult

# perceptually uniform colour maps, as anchor colours (viridis and inferno)
_VIRIDIS = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
]
_INFERNO = [
    (0, 0, 4),
    (31, 12, 72),
    (85, 15, 109),
    (136, 34, 106),
    (186, 54, 85),
    (227, 89, 51),
    (249, 140, 10),
    (249, 201, 50),
    (252, 255, 164),
]


def _lut(anchors: Sequence[tuple[int, int, int]]) -> np.ndarray:
    a = np.asarray(anchors, dtype=np.float64)
    x = np.linspace(0, 1, len(a))
    t = np.linspace(0, 1, 256)
    return np.stack([np.interp(t, x, a[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


LUTS = {"viridis": _lut(_VIRIDIS), "inferno": _lut(_INFERNO)}


def colorize(values: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> np.ndarray:
    """Map a 2-D array to RGB uint8 through a colour map, clipping to [vmin, vmax]."""
    span = vmax - vmin if vmax > vmin else 1.0
    idx = np.clip((values - vmin) / span, 0.0, 1.0)
    return LUTS[cmap][np.rint(idx * 255).astype(np.intp)]


def ssim_map(prep: Prepared, options: Options) -> np.ndarray:
    """skimage's full SSIM map for a prepared pair, averaged over channels (2-D)."""
    from skimage.metrics import structural_similarity

    x, y = as_float(prep.pred, prep.pred_scale), as_float(prep.gt, prep.gt_scale)
    kw = ssim_kwargs(options.ssim_kernel, options.win_size, options.sigma)
    channel_axis = -1 if x.ndim == 3 else None
    _, full = structural_similarity(y, x, data_range=prep.info.data_range, channel_axis=channel_axis, full=True, **kw)
    return full.mean(axis=2) if full.ndim == 3 else full


def error_map(prep: Prepared) -> np.ndarray:
    """``|pred - gt|`` averaged over channels (2-D), in data-range units."""
    d = np.abs(as_float(prep.pred, prep.pred_scale) - as_float(prep.gt, prep.gt_scale))
    return d.mean(axis=2) if d.ndim == 3 else d


def render(values: np.ndarray, title: str, vmin: float, vmax: float, cmap: str) -> np.ndarray:
    """The map with a title above and a labelled colour bar on the right (RGB uint8)."""
    from PIL import Image, ImageDraw, ImageFont

    body = colorize(values, vmin, vmax, cmap)
    h, w = body.shape[:2]
    font = ImageFont.load_default()
    bar_w, label_w, title_h = 16, 64, 18
    title_w = int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=font)) + 4
    canvas = Image.new("RGB", (max(w + 8 + bar_w + label_w, title_w), h + title_h + 4), "white")
    canvas.paste(Image.fromarray(body), (0, title_h))
    bar = LUTS[cmap][np.linspace(255, 0, h).astype(np.intp)][:, None, :].repeat(bar_w, axis=1)
    canvas.paste(Image.fromarray(np.ascontiguousarray(bar)), (w + 8, title_h))
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 2), title, fill="black", font=font)
    for frac in (0.0, 0.5, 1.0):
        value = vmax - frac * (vmax - vmin)
        yy = title_h + int(frac * (h - 1))
        draw.line([(w + 8 + bar_w, yy), (w + 8 + bar_w + 3, yy)], fill="black")
        draw.text(
            (w + 8 + bar_w + 5, max(title_h, min(yy - 5, title_h + h - 11))), f"{value:.4g}", fill="black", font=font
        )
    return np.asarray(canvas)


@dataclass(frozen=True)
class Visual:
    """What a person looks at for one item: the two images and both maps."""

    pred: np.ndarray
    gt: np.ndarray
    ssim: np.ndarray
    error: np.ndarray
    data_range: float
    frame: int | None


def worst_frame(result: ItemResult) -> int | None:
    """Index of a sequence's worst frame by its first metric (None for still images)."""
    if result.n_frames == 0:
        return None
    m = result.metrics[0]
    column = result.frame_scores[:, 0]
    return int(np.argmin(column) if METRICS[m].higher_is_better else np.argmax(column))


def visual(result: ItemResult, options: Options, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Visual:
    """Load an item again (its worst frame for a sequence) and compute its maps."""
    if result.pred_source is None or result.gt_source is None:
        raise SequenceError(f"{result.id}: has no sources to draw")
    index = worst_frame(result)
    p = result.pred_source.frame(index or 0, max_pixels)
    g = result.gt_source.frame(index or 0, max_pixels)
    return visual_of(p, g, options, result.pred, result.gt, index)


def visual_of(
    pred: np.ndarray, gt: np.ndarray, options: Options, pred_name: str, gt_name: str, frame: int | None = None
) -> Visual:
    """Maps of one pair of decoded images."""
    prep = prepare(pred, gt, options, pred_name, gt_name)
    return Visual(
        pred=_display(prep.pred, prep.pred_scale, prep.info.data_range),
        gt=_display(prep.gt, prep.gt_scale, prep.info.data_range),
        ssim=ssim_map(prep, options),
        error=error_map(prep),
        data_range=prep.info.data_range,
        frame=frame,
    )


def _display(a: np.ndarray, scale: float, data_range: float) -> np.ndarray:
    """An 8-bit view of a prepared image for people (gray for luma, RGB otherwise)."""
    x = as_float(a, scale) / data_range
    if x.ndim == 3:
        x = x[..., :3] if x.shape[2] >= 3 else x[..., 0]
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


def worst(results: Sequence[ItemResult], n: int) -> list[ItemResult]:
    """The ``n`` worst scored items by their first metric, worst first (see :func:`iqeval.report.worst_items`)."""
    return worst_items(results, n)


def safe_name(item_id: str) -> str:
    """A file name for an item id: path separators become '__'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", item_id.replace("/", "__")).lstrip(".") or "item"


def map_names(item_ids: Sequence[str]) -> list[str]:
    """Collision-free file names for item ids, readable where possible.

    ``safe_name`` alone is not one-to-one (``a/b`` and ``a__b`` both give
    ``a__b``), so any id it could confuse gets a short hash of the exact id.
    """
    out = []
    for item_id in item_ids:
        name = safe_name(item_id)
        reversible = "_" not in item_id and re.fullmatch(r"[A-Za-z0-9./-]+", item_id) and not item_id.startswith(".")
        if not reversible:
            name = f"{name}-{hashlib.sha1(item_id.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"
        out.append(name)
    return out


def map_files(v: Visual, name: str) -> list[tuple[str, bytes]]:
    """``NAME.ssim.png`` and ``NAME.error.png`` (with colour scales) as (file name, PNG bytes)."""
    stem = name if v.frame is None else f"{name}.frame{v.frame:05d}"
    top = float(v.error.max()) or 1.0
    title = f"|pred - gt| (data range {v.data_range:g})"
    return [
        (f"{stem}.ssim.png", encode_image(render(v.ssim, "SSIM map", 0.0, 1.0, "viridis"))),
        (f"{stem}.error.png", encode_image(render(v.error, title, 0.0, top, "inferno"))),
    ]


def write_maps(v: Visual, out_dir: Path, name: str) -> Iterator[Path]:
    """Write the maps of :func:`map_files` into ``out_dir``.

    Each file is written beside its target and renamed over it, so a link
    planted at that name is replaced, never followed.
    """
    for file_name, data in map_files(v, name):
        path = out_dir / file_name
        write_file_atomic(path, data)
        yield path
