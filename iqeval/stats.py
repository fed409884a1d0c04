"""Statistics of a set of values, and the one rule for non-finite numbers.

Pure functions over numbers: no other iqeval module is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


def plural(n: int, noun: str) -> str:
    """``1 item``, ``2 items``: a count and its noun, in English."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def nonfinite(value: float) -> str | None:
    """ "inf", "-inf" or "nan" for a non-finite number, else None.

    The one place that spells non-finite values: JSON (strict, so as strings),
    CSV, the text reports and the HTML report all use it.
    """
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return None


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

    @classmethod
    def from_dict(cls, metric: str, d: Mapping[str, Any]) -> Summary:
        """Read back :meth:`as_dict` (reports write inf and nan as strings; missing values are nan)."""
        values = {k: float(d.get(k, math.nan)) for k in cls.__dataclass_fields__ if k not in ("metric", "n", "n_inf")}
        return cls(metric=metric, n=int(d.get("n", 0)), n_inf=int(d.get("n_inf", 0)), **values)


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
