"""The one results model: typed, frozen, and its JSON schema (version 2).

A :class:`Run` is what :func:`iqeval.run` returns and what every writer
reads: its items, statistics, gate checks and the settings that shaped the
numbers. A single pair is a run with one item. ``Run.to_doc()`` is the JSON
report; ``Run.from_doc()`` reads it back (schema 1 and 2), which is how
baselines and ``iqeval diff`` work.

Values stay at full precision here; only :mod:`iqeval.report` formats them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .prepare import PairInfo
from .stats import Summary, nonfinite, summarize

if TYPE_CHECKING:
    from .sources import Source

Status = Literal["ok", "error"]
ItemKind = Literal["image", "sequence"]

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)


@dataclass(frozen=True)
class ItemResult:
    """One item's outcome.

    ``scores`` holds the item-level value per metric: the image's score, or
    for a sequence its frames pooled (the mean). ``frame_scores`` is an array
    of shape (n_frames, n_metrics) in ``metrics`` order (empty for still
    images). ``decision`` says how the item was read (``read_as`` in reports);
    ``pred_source`` and ``gt_source`` can decode it again (None when the
    result was read back from a report).
    """

    id: str
    pred: str
    gt: str
    kind: ItemKind
    keys: Mapping[str, str]
    metrics: tuple[str, ...]
    scores: Mapping[str, float]
    frame_scores: np.ndarray
    status: Status
    error: str | None = None
    info: PairInfo | None = None
    warnings: tuple[str, ...] = ()
    decision: str = ""
    pred_source: Source | None = None
    gt_source: Source | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def n_frames(self) -> int:
        return int(self.frame_scores.shape[0])

    def frame_stats(self) -> dict[str, Summary]:
        """Statistics of each metric over this sequence's frames."""
        return {m: summarize(m, self.frame_scores[:, i]) for i, m in enumerate(self.metrics)}

    def to_doc(self, frames: bool = True) -> dict[str, Any]:
        """This item as a JSON-ready dict (non-finite numbers still floats; see :func:`strict`)."""
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "error": self.error,
            "keys": dict(self.keys),
            "pred": self.pred,
            "gt": self.gt,
            "n_frames": self.n_frames,
            "scores": {m: self.scores[m] for m in self.metrics if m in self.scores},
            "info": self.info.as_dict() if self.info else None,
            "warnings": list(self.warnings),
            "read_as": self.decision,
        }
        if self.kind == "sequence" and self.ok:
            out["frame_stats"] = {m: s.as_dict() for m, s in self.frame_stats().items()}
            if frames:
                out["frames"] = {m: self.frame_scores[:, i].tolist() for i, m in enumerate(self.metrics)}
        return out

    @classmethod
    def from_doc(cls, d: Mapping[str, Any], metrics: Sequence[str]) -> ItemResult:
        """Read back :meth:`to_doc` (a schema 1 or 2 item)."""
        scores = {m: float(d["scores"][m]) for m in metrics if m in (d.get("scores") or {})}
        frames = d.get("frames") or {}
        if frames and all(m in frames for m in metrics):
            frame_scores = np.asarray([[float(v) for v in frames[m]] for m in metrics], dtype=np.float64).T
        else:
            frame_scores = np.empty((0, len(metrics)))
        info = d.get("info")
        return cls(
            id=str(d["id"]),
            pred=str(d.get("pred", "")),
            gt=str(d.get("gt", "")),
            kind="sequence" if d.get("kind") == "sequence" else "image",
            keys={str(k): str(v) for k, v in (d.get("keys") or {}).items()},
            metrics=tuple(metrics),
            scores=scores,
            frame_scores=frame_scores,
            status="ok" if d.get("status") == "ok" else "error",
            error=d.get("error"),
            info=_pair_info(info) if isinstance(info, Mapping) else None,
            warnings=tuple(d.get("warnings") or ()),
            decision=str(d.get("read_as") or ""),
        )


def _pair_info(d: Mapping[str, Any]) -> PairInfo | None:
    names = {f.name for f in fields(PairInfo)}
    values = {k: v for k, v in d.items() if k in names}
    values["conversions"] = tuple(values.get("conversions") or ())
    try:
        return PairInfo(**values)
    except TypeError:  # an older report without some fact
        return None


@dataclass(frozen=True)
class Check:
    """One gate condition and its outcome."""

    name: str
    passed: bool
    message: str
    offenders: tuple[str, ...] = ()


@dataclass(frozen=True)
class Change:
    """One metric at one scope, before and after, with the item counts behind each mean."""

    scope: str  # "overall", "group=faces", "item faces/a"
    metric: str
    old: float
    new: float
    n_old: int = 1
    n_new: int = 1


@dataclass(frozen=True)
class Presence:
    """Which items of the baseline are gone, failed now, or new."""

    missing: tuple[str, ...]  # in the baseline (scored), absent now
    failed: tuple[str, ...]  # scored in the baseline, failed now
    appeared: tuple[str, ...]  # not in the baseline
    shared: int  # scored in both

    @property
    def lost(self) -> tuple[str, ...]:
        return self.missing + self.failed


BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Paired:
    """Method ``b`` against method ``a`` on one metric, over the items both scored."""

    a: str
    b: str
    metric: str
    n: int
    mean_diff: float  # mean of (b - a), in the metric's units
    ci_low: float
    ci_high: float
    p_value: float  # Wilcoxon signed-rank, two-sided; 1.0 when every difference is 0
    wins: int  # items where b is better than a
    ties: int
    losses: int
    only_a: tuple[str, ...]  # items a scored and b did not
    only_b: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "a": self.a,
            "b": self.b,
            "metric": self.metric,
            "n": self.n,
            "mean_diff": self.mean_diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": CONFIDENCE,
            "resamples": BOOTSTRAP_RESAMPLES,
            "p_value": self.p_value,
            "wins": self.wins,
            "ties": self.ties,
            "losses": self.losses,
            "only_a": list(self.only_a),
            "only_b": list(self.only_b),
        }


@dataclass(frozen=True)
class GroupSummary:
    """One value of one key: its counts and per-metric statistics."""

    key: str
    value: str
    n_items: int
    n_failed: int
    metrics: Mapping[str, Summary]


@dataclass(frozen=True)
class RunSummary:
    """Everything a report needs beyond the items themselves."""

    metrics: tuple[str, ...]
    n_items: int
    n_ok: int
    n_failed: int
    n_frames: int
    micro: Mapping[str, Summary]
    macro: Mapping[str, Mapping[str, float]]
    weighted: Mapping[str, Mapping[str, float]]
    groups: Mapping[str, Sequence[GroupSummary]]
    group_by_unmatched: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Run:
    """A whole evaluation: what :func:`iqeval.run` returns and every writer reads."""

    settings: Mapping[str, Any]
    items: tuple[ItemResult, ...]
    summary: RunSummary
    pred_only: tuple[str, ...] = ()
    gt_only: tuple[str, ...] = ()
    ignored_files: int = 0
    discovery_notes: tuple[str, ...] = ()
    sequence_folders: int = 0
    separate_image_folders: int = 0
    checks: tuple[Check, ...] = ()
    version: str = ""
    paired: tuple[Paired, ...] = ()

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.summary.metrics

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(self.summary.groups)

    @property
    def passed(self) -> bool:
        """Every item scored and every gate condition passed."""
        return self.summary.n_failed == 0 and all(c.passed for c in self.checks)

    def item(self, item_id: str) -> ItemResult:
        """The item with this id."""
        for r in self.items:
            if r.id == item_id:
                return r
        raise KeyError(item_id)

    def to_doc(self, frames: bool = True) -> dict[str, Any]:
        """The JSON report (schema 2) as a strict-JSON-ready dict; see the README for the fields."""
        s = self.summary
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "iqeval", "version": self.version},
            "config": dict(self.settings),
            "counts": {
                "items": s.n_items,
                "ok": s.n_ok,
                "failed": s.n_failed,
                "frames": s.n_frames,
                "pred_only": len(self.pred_only),
                "gt_only": len(self.gt_only),
                "ignored_files": self.ignored_files,
            },
            "summary": {
                "micro": {m: v.as_dict() for m, v in s.micro.items()},
                "macro": s.macro,
                "weighted": s.weighted,
            },
            "keys": {
                key: [
                    {
                        "value": g.value,
                        "n_items": g.n_items,
                        "n_failed": g.n_failed,
                        "metrics": {m: v.as_dict() for m, v in g.metrics.items()},
                    }
                    for g in rows
                ]
                for key, rows in s.groups.items()
            },
            "items": [r.to_doc(frames) for r in self.items],
            "pred_only": list(self.pred_only),
            "gt_only": list(self.gt_only),
            "group_by_unmatched": list(s.group_by_unmatched),
            "discovery_notes": list(self.discovery_notes),
            "checks": [
                {"name": c.name, "passed": c.passed, "message": c.message, "offenders": list(c.offenders)}
                for c in self.checks
            ],
        }
        if self.paired:
            doc["paired"] = [p.as_dict() for p in self.paired]
        return strict(doc)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Run:
        """Read a JSON report back (schema 1 or 2); missing optional parts get their empty values."""
        config = dict(doc.get("config") or {})
        metrics = tuple(config.get("metrics") or ())
        items = tuple(ItemResult.from_doc(d, metrics) for d in doc.get("items") or ())
        summary_doc = doc.get("summary") or {}
        counts = doc.get("counts") or {}
        groups = {
            str(key): [
                GroupSummary(
                    key=str(key),
                    value=str(r["value"]),
                    n_items=int(r.get("n_items", 0)),
                    n_failed=int(r.get("n_failed", 0)),
                    metrics={m: Summary.from_dict(m, r["metrics"][m]) for m in metrics if m in r["metrics"]},
                )
                for r in rows
            ]
            for key, rows in (doc.get("keys") or {}).items()
        }
        micro = summary_doc.get("micro") or {}
        summary = RunSummary(
            metrics=metrics,
            n_items=int(counts.get("items", len(items))),
            n_ok=int(counts.get("ok", sum(r.ok for r in items))),
            n_failed=int(counts.get("failed", sum(not r.ok for r in items))),
            n_frames=int(counts.get("frames", sum(r.n_frames for r in items))),
            micro={m: Summary.from_dict(m, micro[m]) for m in metrics if m in micro},
            macro={k: {m: float(v) for m, v in d.items()} for k, d in (summary_doc.get("macro") or {}).items()},
            weighted={k: {m: float(v) for m, v in d.items()} for k, d in (summary_doc.get("weighted") or {}).items()},
            groups=groups,
            group_by_unmatched=tuple(doc.get("group_by_unmatched") or ()),
        )
        checks = tuple(
            Check(str(c["name"]), bool(c["passed"]), str(c["message"]), tuple(c.get("offenders") or ()))
            for c in doc.get("checks") or ()
        )
        paired = tuple(
            Paired(
                a=str(p["a"]),
                b=str(p["b"]),
                metric=str(p["metric"]),
                n=int(p["n"]),
                mean_diff=float(p["mean_diff"]),
                ci_low=float(p["ci_low"]),
                ci_high=float(p["ci_high"]),
                p_value=float(p["p_value"]),
                wins=int(p["wins"]),
                ties=int(p["ties"]),
                losses=int(p["losses"]),
                only_a=tuple(p.get("only_a") or ()),
                only_b=tuple(p.get("only_b") or ()),
            )
            for p in doc.get("paired") or ()
        )
        return cls(
            paired=paired,
            settings=config,
            items=items,
            summary=summary,
            pred_only=tuple(doc.get("pred_only") or ()),
            gt_only=tuple(doc.get("gt_only") or ()),
            ignored_files=int(counts.get("ignored_files", 0)),
            discovery_notes=tuple(doc.get("discovery_notes") or ()),
            checks=checks,
            version=str((doc.get("tool") or {}).get("version", "")),
        )


def json_value(value: float) -> float | str:
    """A float as strict JSON allows it: non-finite values become "inf", "-inf" or "nan"."""
    v = float(value)
    text = nonfinite(v)
    return v if text is None else text


def strict(value: Any) -> Any:
    """Recursively make a structure strict-JSON-ready (floats through :func:`json_value`)."""
    if isinstance(value, dict):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return json_value(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def dumps(data: Any) -> str:
    """Strict JSON (no NaN or Infinity tokens), stable key order."""
    return json.dumps(data, allow_nan=False, indent=2, sort_keys=False) + "\n"
