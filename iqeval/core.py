"""Scoring one pair: from arrays or paths to a :class:`PairResult`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import metrics
from .errors import ConfigError
from .io import DEFAULT_MAX_PIXELS, load_image
from .metrics import METRICS, Engine
from .prepare import Color, Options, PairInfo, Prepared, prepare

ENGINES: tuple[Engine, ...] = ("fast", "skimage")


@dataclass(frozen=True)
class PairResult:
    """Scores of one image pair and the facts that shaped them."""

    pred: str
    gt: str
    scores: Mapping[str, float]
    info: PairInfo

    def __getitem__(self, metric: str) -> float:
        return self.scores[metric]


def score_prepared(prep: Prepared, options: Options, engine: Engine = "fast") -> dict[str, float]:
    """Compute the selected metrics on a prepared pair (one loop over the registry)."""
    return metrics.compute(options.metrics, prep, options, engine)


def score_arrays(
    pred: np.ndarray,
    gt: np.ndarray,
    options: Options,
    pred_name: str = "pred",
    gt_name: str = "gt",
    engine: Engine = "fast",
) -> tuple[dict[str, float], PairInfo]:
    """Prepare and score one pair of decoded arrays.

    A metric whose colour mode differs (``psnr_color``, as pyiqa scores PSNR on
    RGB and SSIM on Y) gets its own preparation; the facts are the first one's.
    """
    groups: dict[Color, list[str]] = {}
    for name in options.metrics:
        colour: Color = getattr(options, METRICS[name].color_option) or options.color
        groups.setdefault(colour, []).append(name)
    scores: dict[str, float] = {}
    info: PairInfo | None = None
    for colour, names in groups.items():
        opts = options if colour == options.color else replace(options, color=colour)
        prep = prepare(pred, gt, opts, pred_name, gt_name)
        info = info or prep.info
        scores.update(metrics.compute(names, prep, opts, engine))
    assert info is not None  # Options always selects at least one metric
    return {m: scores[m] for m in options.metrics}, info


def _load(image: Any, default_name: str, max_pixels: int | None) -> tuple[np.ndarray, str, str | None]:
    if isinstance(image, (str, os.PathLike)):
        decoded = load_image(image, max_pixels=max_pixels)
        return decoded.array, os.fspath(image), decoded.note
    return np.asarray(image), default_name, None


def compare_images(
    pred: Any,
    gt: Any,
    *,
    options: Options | None = None,
    engine: Engine = "fast",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    **kwargs: Any,
) -> PairResult:
    """Score one prediction against its ground truth.

    Parameters
    ----------
    pred, gt : path or ndarray
        Image files or decoded arrays of shape (H, W) or (H, W, C).
    options : Options, optional
        A ready :class:`~iqeval.prepare.Options`; otherwise built from ``kwargs``
        (``metrics``, ``color``, ``crop_border``, ``ssim_kernel``, ``win_size``,
        ``sigma``, ``data_range``, ``alpha``).
    engine : {"fast", "skimage"}
        ``"skimage"`` calls :mod:`skimage.metrics` directly; ``"fast"`` gives the
        same numbers (to 1e-6) with less time and memory.
    max_pixels : int or None
        The largest image decoded from a file (see :data:`iqeval.io.DEFAULT_MAX_PIXELS`).

    Returns
    -------
    PairResult
        ``result["psnr"]``, ``result.scores`` and ``result.info``.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.full((16, 16), 100, dtype=np.uint8)
    >>> r = compare_images(gt + 3, gt)
    >>> r["mse"], round(r["psnr"], 4), r.info.data_range
    (9.0, 38.5884, 255.0)
    """
    if options is None:
        options = Options.resolve(**kwargs)
    elif kwargs:
        raise TypeError("pass either options or keyword options, not both")
    if engine not in ENGINES:
        raise ConfigError(f"engine={engine!r} is not one of {', '.join(ENGINES)}")
    p, pred_name, p_note = _load(pred, "pred", max_pixels)
    g, gt_name, g_note = _load(gt, "gt", max_pixels)
    scores, info = score_arrays(p, g, options, pred_name, gt_name, engine)
    notes = tuple(n for n in (p_note, g_note) if n)
    if notes:
        info = replace(info, conversions=notes + info.conversions)
    return PairResult(pred=pred_name, gt=gt_name, scores=scores, info=info)
