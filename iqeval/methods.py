"""Several methods against one ground truth: paired statistics and the paper table.

A method is a value of the key ``method``; its items are ``METHOD/ITEM``.
Two methods are compared on the items both scored: the mean paired
difference with a seeded percentile bootstrap interval, the Wilcoxon
signed-rank test (SciPy), and win/tie/loss counts in the metric's direction.
Items only one method scored are counted and named, never dropped in silence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .metrics import METRICS
from .results import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, CONFIDENCE, ItemResult, Paired, Run


def bootstrap_ci(
    diffs: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (numpy's default_rng(seed), resampling with replacement)."""
    if diffs.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, 2_000_000 // diffs.size)  # bounded memory for long item lists
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        idx = rng.integers(0, diffs.size, size=(stop - start, diffs.size))
        means[start:stop] = diffs[idx].mean(axis=1)
    alpha = (1 - CONFIDENCE) / 2
    low, high = np.percentile(means, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def wilcoxon_p(diffs: np.ndarray, alternative: str = "two-sided") -> float:
    """SciPy's Wilcoxon signed-rank p-value; 1.0 when there is no nonzero difference."""
    nonzero = diffs[diffs != 0]
    if nonzero.size == 0:
        return 1.0
    from scipy.stats import wilcoxon

    return float(wilcoxon(diffs, alternative=alternative).pvalue)


def by_method(run: Run) -> dict[str, dict[str, ItemResult]]:
    """Each method's items by the ground truth's name, in the run's method order."""
    out: dict[str, dict[str, ItemResult]] = {m: {} for m in run.settings.get("methods") or ()}
    for r in run.items:
        method = r.keys.get("method")
        if method is not None:
            out.setdefault(method, {})[r.id.split("/", 1)[1]] = r
    return out


def paired(run: Run, a: str, b: str, metric: str) -> Paired:
    """Method ``b`` against ``a`` on ``metric``."""
    items = by_method(run)
    ok_a = {k: r for k, r in items.get(a, {}).items() if r.ok}
    ok_b = {k: r for k, r in items.get(b, {}).items() if r.ok}
    shared = sorted(set(ok_a) & set(ok_b))
    values_a = np.array([ok_a[k].scores[metric] for k in shared], dtype=np.float64)
    values_b = np.array([ok_b[k].scores[metric] for k in shared], dtype=np.float64)
    # wins and losses compare the values themselves (a perfect PSNR is inf); the mean, the interval
    # and the test use the finite differences
    higher = METRICS[metric].higher_is_better
    wins = int(np.sum(values_b > values_a if higher else values_b < values_a))
    losses = int(np.sum(values_b < values_a if higher else values_b > values_a))
    finite = np.isfinite(values_a) & np.isfinite(values_b)
    diffs = values_b[finite] - values_a[finite]
    low, high = bootstrap_ci(diffs)
    return Paired(
        a=a,
        b=b,
        metric=metric,
        n=len(shared),
        mean_diff=float(diffs.mean()) if diffs.size else math.nan,
        ci_low=low,
        ci_high=high,
        p_value=wilcoxon_p(diffs),
        wins=wins,
        ties=len(shared) - wins - losses,
        losses=losses,
        only_a=tuple(sorted(set(ok_a) - set(ok_b))),
        only_b=tuple(sorted(set(ok_b) - set(ok_a))),
    )


def paired_all(run: Run) -> list[Paired]:
    """Every later method against every earlier one, for every metric (empty with fewer than 2 methods)."""
    methods = list(by_method(run))
    return [paired(run, a, b, m) for i, a in enumerate(methods) for b in methods[i + 1 :] for m in run.metrics]


def _dataset_key(run: Run) -> str | None:
    return next((k for k in run.key_names if k != "method"), None)


def table_cells(run: Run) -> tuple[list[str], list[str], dict[tuple[str, str, str], tuple[float, int]]]:
    """(methods, datasets, {(method, dataset, metric): (mean, n)}) over the scored items."""
    methods = list(by_method(run)) or ["(all)"]
    key = _dataset_key(run)
    datasets = sorted({r.keys.get(key, "") for r in run.items}) if key else ["(all)"]
    cells: dict[tuple[str, str, str], tuple[float, int]] = {}
    for method in methods:
        for dataset in datasets:
            members = [
                r
                for r in run.items
                if r.ok
                and (method == "(all)" or r.keys.get("method") == method)
                and (key is None or r.keys.get(key) == dataset)
            ]
            for m in run.metrics:
                values = [r.scores[m] for r in members]
                cells[(method, dataset, m)] = (float(np.mean(values)) if values else math.nan, len(values))
    return methods, datasets, cells


def best_in_columns(
    methods: Sequence[str],
    datasets: Sequence[str],
    metrics: Sequence[str],
    cells: dict[tuple[str, str, str], tuple[float, int]],
) -> set[tuple[str, str, str]]:
    """The best method of each (dataset, metric) column, in the metric's direction (ties: all of them)."""
    best = set()
    for d in datasets:
        for m in metrics:
            values = {meth: cells[(meth, d, m)][0] for meth in methods if not math.isnan(cells[(meth, d, m)][0])}
            if not values:
                continue
            top = max(values.values()) if METRICS[m].higher_is_better else min(values.values())
            best |= {(meth, d, m) for meth, v in values.items() if v == top}
    return best
