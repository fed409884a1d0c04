"""Scoring one pair: from arrays or paths to a :class:`PairResult`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from . import metrics
from .io import DEFAULT_MAX_PIXELS, load_image
from .prepare import Options, PairInfo, Prepared, prepare

ENGINES = ("fast", "skimage")

ImageLike = "str | os.PathLike[str] | np.ndarray"


@dataclass(frozen=True)
class PairResult:
    """Scores of one image pair and the facts that shaped them."""

    pred: str
    gt: str
    scores: Mapping[str, float]
    info: PairInfo

    def __getitem__(self, metric: str) -> float:
        return self.scores[metric]


def as_float(a: np.ndarray, scale: float) -> np.ndarray:
    """float64 copy (or view) of ``a`` multiplied by ``scale``."""
    x = np.asarray(a, dtype=np.float64)
    if scale != 1.0:
        x = x * scale
    return x


def score_prepared(prep: Prepared, options: Options, engine: str = "fast") -> dict[str, float]:
    """Compute the selected metrics on a prepared pair."""
    if engine == "fast":
        from .fast import score_fast

        return score_fast(prep, options)
    x = as_float(prep.pred, prep.pred_scale)
    y = as_float(prep.gt, prep.gt_scale)
    data_range = prep.info.data_range
    scores: dict[str, float] = {}
    for name in options.metrics:
        if name == "ssim":
            scores[name] = metrics.ssim(
                x, y, data_range=data_range, kernel=options.ssim_kernel, win_size=options.win_size, sigma=options.sigma
            )
        elif name == "psnr":
            scores[name] = metrics.psnr(x, y, data_range=data_range)
        else:
            scores[name] = metrics.mse(x, y)
    return scores


def score_arrays(
    pred: np.ndarray,
    gt: np.ndarray,
    options: Options,
    pred_name: str = "pred",
    gt_name: str = "gt",
    engine: str = "fast",
) -> tuple[dict[str, float], PairInfo]:
    """Prepare and score one pair of decoded arrays."""
    prep = prepare(pred, gt, options, pred_name, gt_name)
    return score_prepared(prep, options, engine), prep.info


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
    engine: str = "fast",
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
        options = Options(**kwargs)
    elif kwargs:
        raise TypeError("pass either options or keyword options, not both")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    p, pred_name, p_note = _load(pred, "pred", max_pixels)
    g, gt_name, g_note = _load(gt, "gt", max_pixels)
    scores, info = score_arrays(p, g, options, pred_name, gt_name, engine)
    notes = tuple(n for n in (p_note, g_note) if n)
    if notes:
        info = replace(info, conversions=notes)
    return PairResult(pred=pred_name, gt=gt_name, scores=scores, info=info)
