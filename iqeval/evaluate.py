"""Scoring items: the core generator behind ``iqeval compare PRED_DIR GT_DIR``.

:func:`evaluate` yields one :class:`ItemResult` per item, in item order. An item
that cannot be scored is recorded with its reason and never stops the others.
This module knows nothing of click or tqdm; the command line wraps it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core import score_arrays
from .discovery import Item, Source, find_pairs
from .errors import ConfigError, IqevalError, SequenceError
from .io import iter_frames, read_image
from .parallel import choose_mapper
from .prepare import Options, PairInfo


@dataclass(frozen=True)
class CompareConfig:
    """Everything a batch run depends on."""

    pred: Path
    gt: Path
    options: Options = field(default_factory=Options)
    engine: str = "fast"
    frame_folders: bool = True
    truncate_frames: bool = False
    group_by: str | None = None
    jobs: int = 0  # 0: all CPUs
    scheduler: str | None = None

    def key_names(self) -> tuple[str, ...]:
        """The keys every item gets."""
        if self.group_by is None:
            return ("group",)
        return tuple(compile_group_by(self.group_by).groupindex)

    def as_dict(self) -> dict[str, object]:
        """The parts of the config that shape the numbers and keys, JSON-ready."""
        return {
            **self.options.as_dict(),
            "engine": self.engine,
            "frame_folders": self.frame_folders,
            "truncate_frames": self.truncate_frames,
            "group_by": self.group_by,
        }


@dataclass(frozen=True)
class ItemResult:
    """One item's outcome.

    ``scores`` holds the item-level value per metric: the image's score, or
    for a sequence the mean over its frames. ``frame_scores`` is an array of
    shape (n_frames, n_metrics) in ``metrics`` order (empty for still images).
    """

    id: str
    pred: str
    gt: str
    kind: str
    keys: Mapping[str, str]
    metrics: tuple[str, ...]
    scores: Mapping[str, float]
    frame_scores: np.ndarray
    status: str  # "ok" or "error"
    error: str | None = None
    info: PairInfo | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def n_frames(self) -> int:
        return int(self.frame_scores.shape[0])


def compile_group_by(pattern: str) -> re.Pattern[str]:
    """Compile a ``--group-by`` regex, which must have at least one named group."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"--group-by {pattern!r} is not a valid regular expression: {exc}") from exc
    if not rx.groupindex:
        raise ConfigError(f"--group-by {pattern!r} has no named group; use (?P<name>...)")
    return rx


def item_keys(item_id: str, group_by: str | None) -> dict[str, str] | None:
    """Keys derived from an item id; None when ``group_by`` does not match it."""
    if group_by is None:
        parts = item_id.split("/")
        return {"group": parts[0] if len(parts) > 1 else "."}
    m = compile_group_by(group_by).match(item_id)
    if m is None:
        return None
    return {k: (v if v is not None else "") for k, v in m.groupdict().items()}


def _frames_of(source: Source) -> Iterator[np.ndarray]:
    if source.kind == "video":
        return iter_frames(source.path)
    if source.kind == "frames":
        return (read_image(p) for p in source.frames)
    return iter([read_image(source.path)])


def _frame_name(source: Source, index: int) -> str:
    if source.kind == "frames":
        return str(source.frames[index])
    return f"{source.path} frame {index}"


def score_sequence(
    pred: Source, gt: Source, options: Options, engine: str, truncate: bool
) -> tuple[np.ndarray, PairInfo, tuple[str, ...]]:
    """Score two sequences frame by frame, streaming both; returns (scores, info, warnings)."""
    rows: list[list[float]] = []
    info: PairInfo | None = None
    pred_frames, gt_frames = _frames_of(pred), _frames_of(gt)
    index = 0
    warnings: tuple[str, ...] = ()
    while True:
        p = next(pred_frames, None)
        g = next(gt_frames, None)
        if p is None or g is None:
            if p is None and g is None:
                break
            n_p = index + (0 if p is None else 1 + sum(1 for _ in pred_frames))
            n_g = index + (0 if g is None else 1 + sum(1 for _ in gt_frames))
            message = f"frame count mismatch: {pred.path} has {n_p} frames but {gt.path} has {n_g}"
            if not truncate:
                raise SequenceError(message)
            warnings = (f"{message}; scored the first {index}",)
            break
        scores, frame_info = score_arrays(p, g, options, _frame_name(pred, index), _frame_name(gt, index), engine)
        info = info or frame_info
        rows.append([scores[m] for m in options.metrics])
        index += 1
    if info is None:
        raise SequenceError(f"no frames to score in {pred.path} and {gt.path}")
    return np.asarray(rows, dtype=np.float64), info, warnings


def evaluate_item(
    item: Item, options: Options, engine: str = "fast", truncate: bool = False, group_by: str | None = None
) -> ItemResult:
    """Score one item; bad input becomes an error result, never an exception."""
    pred = str(item.pred.path) if item.pred else ""
    gt = str(item.gt.path) if item.gt else ""
    empty = np.empty((0, len(options.metrics)))

    def result(
        scores: Mapping[str, float],
        frames: np.ndarray = empty,
        error: str | None = None,
        info: PairInfo | None = None,
        warnings: tuple[str, ...] = (),
    ) -> ItemResult:
        return ItemResult(
            id=item.id,
            pred=pred,
            gt=gt,
            kind=item.kind,
            keys=item_keys(item.id, group_by) or {},
            metrics=options.metrics,
            scores=scores,
            frame_scores=frames,
            status="ok" if error is None else "error",
            error=error,
            info=info,
            warnings=warnings,
        )

    if item.error is not None or item.pred is None or item.gt is None:
        return result({}, error=item.error or "unpaired")
    try:
        if item.kind == "image":
            scores, info = score_arrays(read_image(item.pred.path), read_image(item.gt.path), options, pred, gt, engine)
            return result(scores, info=info)
        frames, info, warnings = score_sequence(item.pred, item.gt, options, engine, truncate)
    except IqevalError as exc:
        return result({}, error=str(exc))
    except MemoryError:
        return result({}, error=f"{pred}: out of memory")
    # the mean of the per-frame values; one infinite frame (a perfect PSNR) makes it infinite
    means = {m: float(np.mean(frames[:, i])) for i, m in enumerate(options.metrics)}
    return result(means, frames, info=info, warnings=warnings)


Mapper = Callable[[Callable[[Item], ItemResult], Iterable[Item]], Iterator[ItemResult]]


def evaluate(
    config: CompareConfig, items: Iterable[Item] | None = None, mapper: Mapper | None = None
) -> Iterator[ItemResult]:
    """Yield one :class:`ItemResult` per item, in item order.

    ``items`` defaults to pairing ``config.pred`` with ``config.gt``. ``mapper``
    runs the per-item function; by default it follows ``config.jobs`` and
    ``config.scheduler`` (see :mod:`iqeval.parallel`).
    """
    if items is None:
        items = find_pairs(config.pred, config.gt, frame_folders=config.frame_folders).items
    items = list(items)
    if mapper is None:
        mapper = choose_mapper(config.jobs, config.scheduler, len(items))
    work = _ItemScorer(config.options, config.engine, config.truncate_frames, config.group_by)
    yield from mapper(work, items)


@dataclass(frozen=True)
class _ItemScorer:
    """A picklable per-item function, so process pools and Dask can ship it."""

    options: Options
    engine: str
    truncate: bool
    group_by: str | None

    def __call__(self, item: Item) -> ItemResult:
        return evaluate_item(item, self.options, self.engine, self.truncate, self.group_by)
