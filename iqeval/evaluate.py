"""Scoring items: the core generator behind ``iqeval compare PRED_DIR GT_DIR``.

:func:`evaluate` yields one :class:`ItemResult` per item, in item order. An item
that cannot be scored is recorded with its reason and never stops the others.
This module knows nothing of click or tqdm; the command line wraps it.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .core import Engine, score_arrays
from .discovery import Item, Sequences, find_pairs
from .errors import ConfigError, IqevalError
from .gate import GateConfig
from .io import DEFAULT_MAX_PIXELS, Decoded, RawFormat
from .metrics import BUILTIN_METRICS, METRICS, Metric, pool_function
from .parallel import choose_mapper, default_jobs
from .prepare import Options, PairInfo
from .results import ItemResult
from .sources import Source
from .video import score_sequence

__all__ = [
    "CompareConfig",
    "ItemResult",
    "SequenceSettings",
    "compile_group_by",
    "evaluate",
    "evaluate_item",
    "item_keys",
    "item_result",
    "score_sequence",
]


@dataclass(frozen=True)
class CompareConfig:
    """Everything a run depends on: the inputs, the options that shape the numbers, how to
    read sequences, how to group and weight, where to run, and the gate."""

    pred: Path
    gt: Path
    options: Options = field(default_factory=Options)
    engine: Engine = "fast"
    sequences: Sequences = "auto"
    pred_name: str | None = None
    truncate_frames: bool = False
    frame_offset: int = 0  # > 0: the prediction starts that many frames later than the ground truth
    group_by: str | None = None
    jobs: int = 0  # 0: all CPUs
    scheduler: str | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    weights: Mapping[str, Mapping[str, float]] | None = None
    gate: GateConfig = field(default_factory=GateConfig)
    # several predictions against one ground truth: (name, folder) pairs; pred is then unused
    methods: tuple[tuple[str, Path], ...] = ()
    raw: RawFormat | None = None  # the format of headerless .yuv files
    align: int | None = None  # search frame_offset ± align for the best offset of each sequence
    pool: tuple[tuple[str, str], ...] = ()  # (metric, pooling) where a sequence pools otherwise than the mean

    def pooling(self, metric: str) -> str:
        """How the frames of a sequence pool into its ``metric`` value."""
        return pooling(self.pool, metric)

    def key_names(self) -> tuple[str, ...]:
        """The keys every item gets."""
        base = ("group",) if self.group_by is None else tuple(compile_group_by(self.group_by).groupindex)
        return ("method", *base) if self.methods else base

    def as_dict(self) -> dict[str, object]:
        """The parts of the config that shape the numbers and keys, JSON-ready."""
        return {
            **self.options.as_dict(),
            "engine": self.engine,
            "sequences": self.sequences,
            "pred_name": self.pred_name,
            "methods": [name for name, _ in self.methods],
            "truncate_frames": self.truncate_frames,
            "frame_offset": self.frame_offset,
            "align": self.align,
            # the metrics whose frames pool otherwise than by their default (the mean)
            "pool": {m: p for m in self.options.metrics if (p := self.pooling(m)) != METRICS[m].pool},
            "raw": None if self.raw is None else f"{self.raw.width}x{self.raw.height} {self.raw.pix_fmt}",
            "group_by": self.group_by,
        }


def pooling(pool: Iterable[tuple[str, str]], metric: str) -> str:
    """The pooling ``pool`` (metric, pooling) pairs give ``metric``, else the metric's own (the mean)."""
    return dict(pool).get(metric, METRICS[metric].pool)


def compile_group_by(pattern: str) -> re.Pattern[str]:
    """Compile a ``--group-by`` regex, which must have at least one named group."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"group_by={pattern!r} is not a valid regular expression: {exc}") from exc
    if not rx.groupindex:
        raise ConfigError(f"group_by={pattern!r} has no named group; use (?P<name>...)")
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


def keys_of(item: Item, group_by: str | None) -> dict[str, str]:
    """An item's keys: from its ground truth's name, and ``method`` when several predictions are scored."""
    keys = item_keys(item.stem, group_by) or {}
    return {"method": item.method, **keys} if item.method else keys


def item_result(
    item: Item,
    options: Options,
    group_by: str | None,
    scores: Mapping[str, float],
    frames: np.ndarray | None = None,
    error: str | None = None,
    info: PairInfo | None = None,
    warnings: tuple[str, ...] = (),
) -> ItemResult:
    """An :class:`ItemResult` for ``item``: its scores, or the error that stopped it."""
    return ItemResult(
        id=item.id,
        pred=str(item.pred.path) if item.pred else "",
        gt=str(item.gt.path) if item.gt else "",
        kind=item.kind,
        keys=keys_of(item, group_by),
        metrics=options.metrics,
        scores=scores,
        frame_scores=np.empty((0, len(options.metrics))) if frames is None else frames,
        status="ok" if error is None else "error",
        error=error,
        info=info,
        warnings=warnings,
        decision=item.decision,
        pred_source=item.pred,
        gt_source=item.gt,
    )


_decoders: dict[int, ThreadPoolExecutor] = {}  # one per process (a forked worker makes its own)


def _decode_pair(
    pred: Source, gt: Source, max_pixels: int | None, gt_decoded: Decoded | None
) -> tuple[Decoded, Decoded]:
    """Decode both images of a pair, the ground truth in a second thread (the decoders release the GIL)."""
    if gt_decoded is not None:
        return next(pred.decode(max_pixels)), gt_decoded
    pool = _decoders.get(os.getpid())
    if pool is None:
        pool = _decoders[os.getpid()] = ThreadPoolExecutor(1, thread_name_prefix="iqeval-decode")
    future = pool.submit(lambda: next(gt.decode(max_pixels)))
    try:
        p = next(pred.decode(max_pixels))
    except BaseException:
        wait([future])  # no decoder left running; the prediction's error is the one reported, as in order
        raise
    return p, future.result()


@dataclass(frozen=True)
class SequenceSettings:
    """How sequences are read, aligned, pooled and spread over threads."""

    truncate: bool = False
    frame_offset: int = 0
    align: int | None = None
    pool: tuple[tuple[str, str], ...] = ()
    raw: RawFormat | None = None
    threads: int = 1


def evaluate_item(
    item: Item,
    options: Options,
    engine: Engine = "fast",
    truncate: bool = False,
    group_by: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    gt_decoded: Decoded | None = None,
    frame_offset: int = 0,
    sequence: SequenceSettings | None = None,
    decoding: Future[tuple[Decoded, Decoded]] | None = None,
) -> ItemResult:
    """Score one item; bad input becomes an error result, never an exception.

    ``gt_decoded`` is the ground truth already decoded (several methods share
    it). ``decoding`` is this image pair's decode, already started elsewhere
    (:meth:`_ItemScorer.decoding_ahead`); its errors are reported as the
    item's own. ``sequence`` sets how videos and frame folders are read; its
    ``truncate`` and ``frame_offset`` win over the plain arguments.
    """
    seq = sequence or SequenceSettings(truncate=truncate, frame_offset=frame_offset)
    pred = str(item.pred.path) if item.pred else ""
    gt = str(item.gt.path) if item.gt else ""
    result = functools.partial(item_result, item, options, group_by)

    if item.error is not None or item.pred is None or item.gt is None:
        return result({}, error=item.error or "unpaired")
    try:
        if item.kind == "image":
            if decoding is not None:
                p, g = decoding.result()
            else:
                p, g = _decode_pair(item.pred, item.gt, max_pixels, gt_decoded)
            scores, info = score_arrays(p.array, g.array, options, pred, gt, engine)
            notes = tuple(n for n in (p.note, g.note) if n)
            return result(scores, info=replace(info, conversions=notes + info.conversions) if notes else info)
        frames, info, warnings = score_sequence(
            item.pred,
            item.gt,
            options,
            engine,
            seq.truncate,
            max_pixels,
            seq.frame_offset,
            threads=seq.threads,
            raw=seq.raw,
            align=seq.align,
        )
    except IqevalError as exc:
        return result({}, error=str(exc))
    except MemoryError:
        return result({}, error=f"{pred}: out of memory")
    except Exception as exc:  # a bug or an unforeseen decoder failure must not lose the other items
        return result({}, error=f"unexpected error ({type(exc).__name__}: {exc})")
    # each metric pools its frames its own way (the mean: one infinite frame makes it infinite)
    pooled = {m: pool_function(pooling(seq.pool, m))(frames[:, i]) for i, m in enumerate(options.metrics)}
    return result(pooled, frames, info=info, warnings=warnings)


def frame_threads(jobs: int, scheduler: str | None, n_items: int) -> int:
    """Threads per sequence: the cores the item processes leave over (one long video gets them all)."""
    if scheduler:
        return 1  # Dask gives each task its own thread
    cores = jobs if jobs > 0 else default_jobs()
    return max(1, cores // max(1, min(cores, n_items)))


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
        items = find_pairs(config.pred, config.gt, sequences=config.sequences, pred_name=config.pred_name).items
    items = list(items)
    registered = tuple(METRICS[m] for m in config.options.metrics if m not in BUILTIN_METRICS)
    work = _ItemScorer(
        config.options,
        config.engine,
        config.group_by,
        config.max_pixels,
        registered,
        SequenceSettings(
            config.truncate_frames,
            config.frame_offset,
            config.align,
            config.pool,
            config.raw,
            frame_threads(config.jobs, config.scheduler, len(items)),
        ),
    )
    if not config.methods:
        if mapper is None:
            mapper = choose_mapper(config.jobs, config.scheduler, len(items), work.crashed)
        if mapper is map and len(items) > 1:  # in-process: the next pair decodes while this one is scored
            yield from work.decoding_ahead(items)
            return
        yield from mapper(work, items)
        return
    # several methods: the items of one ground-truth image are scored together, decoding it once
    bundles: dict[object, list[Item]] = {}
    for item in items:
        shared = item.kind == "image" and item.error is None and item.gt is not None
        bundles.setdefault(item.gt.path if shared and item.gt else id(item), []).append(item)
    by_id: dict[str, ItemResult] = {}
    groups = [tuple(b) for b in bundles.values()]
    bundle_map = (
        map if mapper is not None else choose_mapper(config.jobs, config.scheduler, len(groups), work.crashed_bundle)
    )
    ahead = 0  # results leave in item order, as soon as every earlier item is done
    for results in bundle_map(work.bundle, groups):
        by_id.update((r.id, r) for r in results)
        while ahead < len(items) and items[ahead].id in by_id:
            yield by_id.pop(items[ahead].id)
            ahead += 1


@dataclass(frozen=True)
class _ItemScorer:
    """A picklable per-item function, so process pools and Dask can ship it."""

    options: Options
    engine: Engine
    group_by: str | None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    # metrics registered at run time travel with the work: a worker started by
    # forkserver, spawn or Dask imports iqeval afresh and knows only the built-in ones
    registered: tuple[Metric, ...] = ()
    sequence: SequenceSettings = field(default_factory=SequenceSettings)

    def __call__(
        self, item: Item, gt: Decoded | None = None, decoding: Future[tuple[Decoded, Decoded]] | None = None
    ) -> ItemResult:
        for metric in self.registered:
            METRICS.setdefault(metric.name, metric)
        return evaluate_item(
            item,
            self.options,
            self.engine,
            group_by=self.group_by,
            max_pixels=self.max_pixels,
            gt_decoded=gt,
            sequence=self.sequence,
            decoding=decoding,
        )

    def decoding_ahead(self, items: list[Item]) -> Iterator[ItemResult]:
        """Score ``items`` in this process, in order, each image pair decoding in a thread while
        the pair before it is scored (the decoders and the kernels release the GIL).

        At most two pairs are decoded at a time: the one being scored and the next.
        """

        def start(item: Item) -> Future[tuple[Decoded, Decoded]] | None:
            if item.kind != "image" or item.error is not None or item.pred is None or item.gt is None:
                return None  # scored as usual: sequences stream their frames, errors need no decoding
            return ahead.submit(_decode_pair, item.pred, item.gt, self.max_pixels, None)

        ahead = ThreadPoolExecutor(1, thread_name_prefix="iqeval-next-pair")
        try:
            upcoming = start(items[0]) if items else None
            for i, item in enumerate(items):
                current = upcoming
                upcoming = start(items[i + 1]) if i + 1 < len(items) else None
                yield self(item, decoding=current)
        finally:  # a stop (Ctrl-C, an early exit) leaves no decoder running
            ahead.shutdown(wait=True, cancel_futures=True)

    def crashed(self, item: Item, reason: str) -> ItemResult:
        """The result of an item whose worker process died."""
        return item_result(item, self.options, self.group_by, {}, error=f"{item.id}: {reason}")

    def bundle(self, items: tuple[Item, ...]) -> list[ItemResult]:
        """Score the items of one ground truth, decoding it once (still images; others one by one)."""
        first = items[0]
        if len(items) == 1 or first.gt is None or first.kind != "image":
            return [self(item) for item in items]
        try:
            gt = next(first.gt.decode(self.max_pixels))
        except IqevalError as exc:
            return [item_result(item, self.options, self.group_by, {}, error=str(exc)) for item in items]
        return [self(item, gt) for item in items]

    def crashed_bundle(self, items: tuple[Item, ...], reason: str) -> list[ItemResult]:
        """The results of a bundle whose worker process died."""
        return [self.crashed(item, reason) for item in items]
