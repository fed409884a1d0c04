"""From item results to statistics: per sequence, per key value and overall.

Values stay at full precision. Infinite values (a perfect PSNR) are kept and
counted: order statistics include them, ``mean`` becomes inf, ``std`` is nan,
and ``mean_finite`` / ``std_finite`` describe the finite values alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .evaluate import ItemResult


@dataclass(frozen=True)
class Summary:
    """Statistics of one metric over a set of values."""

    metric: str
    n: int
    n_inf: int
    mean: float
    std: float
    min: float
    max: float
    median: float
    p05: float
    p95: float
    mean_finite: float
    std_finite: float

    def as_dict(self) -> dict[str, float | int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "metric"}


def percentile(sorted_values: np.ndarray, q: float) -> float:
    """Linear-interpolation percentile (numpy's default) that stays inf, not nan, next to inf."""
    n = sorted_values.size
    pos = q / 100.0 * (n - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = float(sorted_values[lo]), float(sorted_values[hi])
    if lo == hi or a == b:
        return a
    return a + (b - a) * (pos - lo)


def summarize(metric: str, values: Iterable[float]) -> Summary:
    """Statistics of ``values``; an empty input gives n=0 and nan everywhere."""
    v = np.sort(np.asarray(list(values), dtype=np.float64))
    nan = math.nan
    if v.size == 0:
        return Summary(metric, 0, 0, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    finite = v[np.isfinite(v)]
    n_inf = int(v.size - finite.size)
    mean_finite = float(np.mean(finite)) if finite.size else nan
    std_finite = float(np.std(finite)) if finite.size else nan
    return Summary(
        metric=metric,
        n=int(v.size),
        n_inf=n_inf,
        mean=float(np.mean(v)),  # inf when any value is inf
        std=std_finite if n_inf == 0 else nan,
        min=float(v[0]),
        max=float(v[-1]),
        median=percentile(v, 50),
        p05=percentile(v, 5),
        p95=percentile(v, 95),
        mean_finite=mean_finite,
        std_finite=std_finite,
    )


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
                raise ConfigError(f"--weights gives no weight for {key}={missing[0]!r}")
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
            raise ConfigError(f"--weights names key {key!r}, but the keys are: {', '.join(key_names)}")
        for value, weight in table.items():
            if isinstance(weight, bool) or not (
                isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0
            ):
                raise ConfigError(f"--weights: weight for {key}={value!r} must be a non-negative number")


def check_weight_coverage(weights: Mapping[str, Mapping[str, float]], keys: Sequence[Mapping[str, str]]) -> None:
    """Refuse, before scoring, weights that miss a key value some item has."""
    for key, table in weights.items():
        missing = sorted({k[key] for k in keys if key in k and k[key] not in table})
        if missing:
            raise ConfigError(f"--weights gives no weight for {key}={missing[0]!r}")
