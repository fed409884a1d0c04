"""From item results to statistics: per sequence, per key value and overall.

Values stay at full precision. Infinite values (a perfect PSNR) are kept and
counted: order statistics include them, ``mean`` becomes inf, ``std`` is nan,
and ``mean_finite`` / ``std_finite`` describe the finite values alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import ConfigError
from .results import GroupSummary, ItemResult, RunSummary
from .stats import Summary, percentile, summarize

__all__ = [
    "GroupSummary",
    "RunSummary",
    "Summary",
    "check_weight_coverage",
    "check_weights",
    "percentile",
    "summarize",
    "summarize_run",
]


def _metric_summaries(metrics: Sequence[str], results: Sequence[ItemResult]) -> dict[str, Summary]:
    return {m: summarize(m, (r.scores[m] for r in results if r.ok)) for m in metrics}


def summarize_run(
    results: Sequence[ItemResult],
    metrics: Sequence[str],
    key_names: Sequence[str],
    weights: Mapping[str, Mapping[str, float]] | None = None,
) -> RunSummary:
    """Micro (over items), macro (mean of key-value means) and weighted overalls, and per-key summaries."""
    groups: dict[str, list[GroupSummary]] = {}
    macro: dict[str, dict[str, float]] = {}
    weighted: dict[str, dict[str, float]] = {}
    for key in key_names:
        values = sorted({r.keys[key] for r in results if key in r.keys})
        rows = []
        for value in values:
            members = [r for r in results if r.keys.get(key) == value]
            rows.append(
                GroupSummary(
                    key=key,
                    value=value,
                    n_items=len(members),
                    n_failed=sum(not r.ok for r in members),
                    metrics=_metric_summaries(metrics, members),
                )
            )
        groups[key] = rows
        scored = [g for g in rows if g.n_items > g.n_failed]
        macro[key] = {m: _plain_mean([g.metrics[m].mean for g in scored]) for m in metrics}
        if weights and key in weights:
            w = weights[key]
            missing = [g.value for g in scored if g.value not in w]
            if missing:
                raise ConfigError(f"weights= gives no weight for {key}={missing[0]!r}")
            total = sum(w[g.value] for g in scored)
            weighted[key] = {
                m: (sum(w[g.value] * g.metrics[m].mean for g in scored) / total) if total > 0 else math.nan
                for m in metrics
            }
    return RunSummary(
        metrics=tuple(metrics),
        n_items=len(results),
        n_ok=sum(r.ok for r in results),
        n_failed=sum(not r.ok for r in results),
        n_frames=sum(r.n_frames for r in results),
        micro=_metric_summaries(metrics, results),
        macro=macro,
        weighted=weighted,
        groups=groups,
        group_by_unmatched=tuple(r.id for r in results if len(key_names) and not r.keys),
    )


def _plain_mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def check_weights(weights: Mapping[str, Mapping[str, float]], key_names: Sequence[str]) -> None:
    """Refuse weights for unknown keys or negative weights."""
    for key, table in weights.items():
        if key not in key_names:
            raise ConfigError(f"weights= names key {key!r}, but the keys are: {', '.join(key_names)}")
        for value, weight in table.items():
            if isinstance(weight, bool) or not (
                isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0
            ):
                raise ConfigError(f"in weights=, the weight for {key}={value!r} must be a non-negative number")


def check_weight_coverage(weights: Mapping[str, Mapping[str, float]], keys: Sequence[Mapping[str, str]]) -> None:
    """Refuse, before scoring, weights that miss a key value some item has."""
    for key, table in weights.items():
        missing = sorted({k[key] for k in keys if key in k and k[key] not in table})
        if missing:
            raise ConfigError(f"weights= gives no weight for {key}={missing[0]!r}")
