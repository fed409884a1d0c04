"""The library entry point: ``iqeval.run(config) -> Run``.

One call does what ``iqeval compare`` does, without click or tqdm: it checks
everything that can be refused before any file is decoded, pairs the inputs
(two folders, or two files), scores every item (in parallel, or on Dask),
aggregates, and checks the gate. The command line only parses options, calls
this, and hands the :class:`~iqeval.results.Run` to the writers.

Examples
--------
>>> import iqeval, numpy as np, imageio.v3 as iio, tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for side, offset in (("pred", 3), ("gt", 0)):
...     (d / side).mkdir()
...     iio.imwrite(d / side / "a.png", np.full((16, 16), 100 + offset, np.uint8))
>>> r = iqeval.run(iqeval.CompareConfig(pred=d / "pred", gt=d / "gt", jobs=1))
>>> r.item("a").scores["mse"], r.passed
(9.0, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Protocol, runtime_checkable

from ._version import __version__
from .aggregate import check_weight_coverage, check_weights, summarize_run
from .discovery import Item, Pairing, find_pairs, name_template
from .errors import ConfigError, LoadError, PairingError
from .evaluate import CompareConfig, Mapper, evaluate, keys_of
from .gate import check_baseline_metrics, check_comparable, check_gate_inputs, gate
from .methods import paired_all
from .metrics import METRICS
from .parallel import check_scheduler_address
from .report import ITEM_COLUMNS
from .results import ItemResult, Run
from .sources import source_of
from .video import frame_listener

Progress = Callable[[int, int, "ItemResult | None"], None]
"""Called as ``progress(done, total, result)``: once with ``(0, total, None)``, then after each item.

A progress object that also has ``begin_frames(total)`` and ``frames(n)`` (see
:class:`FrameProgress`) counts frames where a run has sequences: it is given
first a function that returns the frame total (None when a container does not
say; it reads every video's header, so a display that is not shown need not
call it), then told of each frame as it is scored in this process; frames
scored in worker processes arrive with their item."""


@runtime_checkable
class FrameProgress(Protocol):
    def begin_frames(self, total: Callable[[], int | None]) -> None: ...

    def frames(self, n: int) -> None: ...


# columns of the items and frames CSVs; a group_by key must not repeat one
FIXED_COLUMNS = (*ITEM_COLUMNS, "frame")


def check(config: CompareConfig) -> tuple[str, ...]:
    """Refuse, before any file is decoded, a configuration that cannot give a meaningful run.

    Returns the key names. Raises :class:`~iqeval.errors.ConfigError` or
    :class:`~iqeval.errors.BaselineError` naming the parameter.
    """
    key_names = config.key_names()
    clash = [k for k in key_names if k in FIXED_COLUMNS or k in METRICS]
    if clash:
        raise ConfigError(f"group_by= names a key {clash[0]!r}, which is also a report column; rename the group")
    g = config.gate
    check_gate_inputs(g.thresholds, g.max_drop, config.options.metrics, key_names)
    if g.max_drop and g.baseline is None:
        raise ConfigError("max_drop= needs a baseline=")
    if g.significance is not None and not 0 < g.significance < 1:
        raise ConfigError(f"significance={g.significance!r} must lie strictly between 0 and 1, e.g. 0.05")
    if config.weights is not None:
        check_weights(config.weights, key_names)
    if g.baseline is not None:
        check_comparable(g.baseline.settings, config.as_dict(), g.baseline_name)
        check_baseline_metrics(g.baseline, g.max_drop, g.baseline_name)
    if config.scheduler is not None:
        check_scheduler_address(config.scheduler)
    if config.pred_name is not None:
        name_template(config.pred_name)
    return key_names


def pair(config: CompareConfig) -> Pairing:
    """The items of a run: two folders paired by name, or two files as one item.

    With several methods, each method's folder is paired with the ground truth,
    and its items are named ``METHOD/ITEM``.
    """
    if config.methods:
        return _pair_methods(config)
    pred, gt = Path(config.pred), Path(config.gt)
    for path in (pred, gt):
        if not path.exists():
            raise LoadError(f"{path}: no such file or directory")
    if pred.is_dir() != gt.is_dir():
        file_, dir_ = (gt, pred) if pred.is_dir() else (pred, gt)
        raise ConfigError(f"{dir_} is a folder but {file_} is a file; give two files or two folders")
    if pred.is_dir():
        pairing = find_pairs(pred, gt, sequences=config.sequences, pred_name=config.pred_name)
    else:
        p, g = source_of(pred), source_of(gt)
        if p.is_sequence != g.is_sequence:
            raise PairingError(f"cannot pair {pred} ({p.kind}) with {gt} ({g.kind})")
        pairing = Pairing(items=(Item(pred.stem, p, g, decision=p.label),), pred_only=(), gt_only=())
    if not pairing.items:
        raise PairingError(f"no pairs found between {pred} and {gt}")
    return pairing


def _pair_methods(config: CompareConfig) -> Pairing:
    names = [name for name, _ in config.methods]
    if len(set(names)) != len(names):
        raise ConfigError(f"methods= names a method twice: {', '.join(names)}")
    for name in names:
        if not name or "/" in name:
            raise ConfigError(f"methods= name {name!r} must be non-empty and without '/'")
    items: list[Item] = []
    pred_only: list[str] = []
    gt_only: list[str] = []
    notes: list[str] = []
    ignored = taken = refused = 0
    for name, folder in config.methods:
        p = pair(replace(config, pred=Path(folder), methods=()))
        items += [replace(i, id=f"{name}/{i.id}", method=name) for i in p.items]
        pred_only += [f"{name}: {x}" for x in p.pred_only]
        gt_only += [f"{name}: {x}" for x in p.gt_only]
        notes += [f"{name}: {n}" for n in p.notes]
        ignored += p.ignored
        taken += p.sequence_folders
        refused += p.rejected_folders
    return Pairing(tuple(items), tuple(pred_only), tuple(gt_only), ignored, (), taken, refused, tuple(notes))


def run(
    config: CompareConfig,
    progress: Progress | None = None,
    mapper: Mapper | None = None,
    score: Callable[..., Iterator[ItemResult]] = evaluate,
) -> Run:
    """Check, pair, score, aggregate and gate: the whole of ``iqeval compare`` as one call.

    ``progress`` is told of each finished item (see :data:`Progress`);
    ``mapper`` replaces the parallel map (custom executors); ``score`` replaces
    the scoring generator (:func:`iqeval.evaluate.evaluate`).
    """
    key_names = check(config)
    pairing = pair(config)
    if config.weights is not None:
        check_weight_coverage(config.weights, [keys_of(i, config.group_by) for i in pairing.items])
    if isinstance(progress, FrameProgress) and any(i.kind == "sequence" for i in pairing.items):
        items = pairing.items
        progress.begin_frames(lambda: _frame_total(items))
        with frame_listener(progress.frames):
            results = tuple(_reporting(score(config, pairing.items, mapper), len(pairing.items), progress))
    else:
        results = tuple(_reporting(score(config, pairing.items, mapper), len(pairing.items), progress))
    summary = summarize_run(results, config.options.metrics, key_names, config.weights)
    result = Run(
        settings=config.as_dict(),
        items=results,
        summary=summary,
        pred_only=pairing.pred_only,
        gt_only=pairing.gt_only,
        ignored_files=pairing.ignored,
        discovery_notes=pairing.notes,
        sequence_folders=pairing.sequence_folders,
        separate_image_folders=pairing.rejected_folders,
        version=__version__,
    )
    if len(config.methods) > 1:
        result = replace(result, paired=tuple(paired_all(result)))
    g = config.gate
    checks = gate(result, g.thresholds, g.max_drop, g.baseline, g.allow_missing, g.significance)
    return replace(result, checks=tuple(checks))


def _frame_total(items: Iterable[Item]) -> int | None:
    """The frames a run will score, from the containers' headers (None when one does not say)."""
    total = 0
    for item in items:
        if item.error is not None or item.pred is None or item.gt is None:
            total += 1
            continue
        n = item.gt.facts().get("n_frames") if item.kind == "sequence" else 1
        if not n:  # Matroska and raw files do not say
            return None
        total += int(n)
    return total


def _reporting(results: Iterable[ItemResult], total: int, progress: Progress | None) -> Iterator[ItemResult]:
    if progress is not None:
        progress(0, total, None)
    for done, r in enumerate(results, 1):
        if progress is not None:
            progress(done, total, r)
        yield r
