"""Quality gates for CI: thresholds on the run and regressions against a baseline.

Both work on report documents (the dicts :func:`iqeval.report.batch_json`
builds and ``--json`` writes), so a gate can be checked on a fresh run or,
with ``iqeval diff``, on two saved reports without recomputing anything.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BaselineError, ConfigError
from .metrics import METRICS

# options that change what the numbers mean; reports that differ in any are not comparable
COMPARABLE = ("color", "crop_border", "ssim_kernel", "win_size", "sigma", "data_range", "alpha")

_CONDITION = re.compile(
    r"^(?P<metric>[A-Za-z]+)(?:\[(?P<key>[^=\]]+)=(?P<value>[^\]]*)\])?=(?P<threshold>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$"
)


@dataclass(frozen=True)
class Threshold:
    """``metric`` must be no worse than ``value`` (over the run, one key value, or every item)."""

    metric: str
    value: float
    key: str | None = None
    key_value: str | None = None  # "*" for every value of the key
    per_item: bool = False

    @property
    def scope(self) -> str:
        if self.per_item:
            return "every item"
        if self.key is None:
            return "overall"
        return f"{self.key}={self.key_value}"


@dataclass(frozen=True)
class Check:
    """One gate condition and its outcome."""

    name: str
    passed: bool
    message: str
    offenders: tuple[str, ...] = ()


def worse(metric: str, value: float, limit: float) -> bool:
    """True when ``value`` is worse than ``limit`` in the metric's direction."""
    if math.isnan(value):
        return True
    return value < limit if METRICS[metric].higher_is_better else value > limit


def drop(metric: str, old: float, new: float) -> float:
    """How much worse ``new`` is than ``old`` (negative for an improvement); inf-safe."""
    a, b = (old, new) if METRICS[metric].higher_is_better else (new, old)
    if a == b:  # includes inf == inf
        return 0.0
    return a - b


def parse_threshold(text: str, per_item: bool = False) -> Threshold:
    """Parse ``ssim=0.9`` or ``ssim[group=faces]=0.9`` (``[group=*]`` for every value)."""
    m = _CONDITION.match(text.strip())
    if m is None:
        form = "METRIC=VALUE" if per_item else "METRIC=VALUE or METRIC[KEY=VALUE]=VALUE"
        raise ConfigError(f"cannot parse {text!r}; expected {form}, e.g. psnr=30")
    metric = m["metric"].lower()
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r} in {text!r}; choose from {', '.join(METRICS)}")
    if per_item and m["key"]:
        raise ConfigError(f"--item-floor takes METRIC=VALUE, not a key scope: {text!r}")
    return Threshold(metric, float(m["threshold"]), m["key"], m["value"], per_item)


def parse_max_drop(texts: Sequence[str]) -> dict[str, float]:
    """Parse ``--max-drop ssim=0.005`` options."""
    out: dict[str, float] = {}
    for text in texts:
        t = parse_threshold(text, per_item=True)
        if t.value < 0:
            raise ConfigError(f"--max-drop must not be negative: {text!r}")
        out[t.metric] = t.value
    return out


def _fmt(metric: str, value: float) -> str:
    from .report import format_score

    return format_score(metric, value)


def _value(v: Any) -> float:
    return float(v)  # reports write inf/nan as strings, which float() reads


def check_thresholds(doc: Mapping[str, Any], thresholds: Sequence[Threshold]) -> list[Check]:
    """Evaluate thresholds against a report document."""
    checks: list[Check] = []
    metrics = doc["config"]["metrics"]
    for t in thresholds:
        op = ">=" if METRICS[t.metric].higher_is_better else "<="
        name = f"{t.metric} {op} {t.value:g} ({t.scope})"
        if t.metric not in metrics:
            checks.append(Check(name, False, f"{name}: {t.metric} was not computed in this run"))
            continue
        if t.per_item:
            bad = [
                (i["id"], _value(i["scores"][t.metric]))
                for i in doc["items"]
                if i["status"] == "ok" and worse(t.metric, _value(i["scores"][t.metric]), t.value)
            ]
            reverse = not METRICS[t.metric].higher_is_better
            bad.sort(key=lambda x: (x[1], x[0]), reverse=reverse)
            if bad:
                listing = ", ".join(f"{i} ({_fmt(t.metric, v)})" for i, v in bad[:10])
                more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
                msg = f"{name}: {len(bad)} items below the floor, worst first: {listing}{more}"
                checks.append(Check(name, False, msg, tuple(i for i, _ in bad)))
            else:
                checks.append(Check(name, True, f"{name}: all items pass"))
            continue
        if t.key is None:
            scopes = [("overall", doc["summary"]["micro"][t.metric])]
        else:
            rows = doc["keys"].get(t.key)
            if rows is None:
                checks.append(Check(name, False, f"{name}: no key {t.key!r} in this run"))
                continue
            chosen = [r for r in rows if t.key_value in ("*", r["value"])]
            if not chosen:
                checks.append(Check(name, False, f"{name}: no item has {t.key}={t.key_value}"))
                continue
            scopes = [(f"{t.key}={r['value']}", r["metrics"][t.metric]) for r in chosen]
        for scope, stats in scopes:
            label = f"{t.metric} >= {t.value:g} ({scope})" if op == ">=" else f"{t.metric} <= {t.value:g} ({scope})"
            mean = _value(stats["mean"])
            if stats["n"] == 0:
                checks.append(Check(label, False, f"{label}: no scored item"))
            elif worse(t.metric, mean, t.value):
                checks.append(Check(label, False, f"{label}: mean is {_fmt(t.metric, mean)}"))
            else:
                checks.append(Check(label, True, f"{label}: mean is {_fmt(t.metric, mean)}"))
    return checks


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a ``--json`` report, refusing anything else with a clear message."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{p}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(doc, dict) or "items" not in doc or "summary" not in doc or "config" not in doc:
        raise BaselineError(f"{p}: not an iqeval batch report (written by --json on two folders)")
    if doc.get("schema_version") != 1:
        raise BaselineError(f"{p}: schema_version {doc.get('schema_version')!r} is not supported (expected 1)")
    return doc


def check_comparable(old: Mapping[str, Any], new: Mapping[str, Any], old_name: str = "baseline") -> None:
    """Refuse reports whose numbers mean different things."""
    diffs = [
        f"{k}={old['config'].get(k)!r} vs {new['config'].get(k)!r}"
        for k in COMPARABLE
        if old["config"].get(k) != new["config"].get(k)
    ]
    if diffs:
        raise BaselineError(
            f"{old_name} was computed with other settings ({'; '.join(diffs)}); comparing them would be meaningless"
        )


@dataclass(frozen=True)
class Change:
    """One metric at one scope, before and after."""

    scope: str  # "overall", "group=faces", "item faces/a"
    metric: str
    old: float
    new: float

    @property
    def drop(self) -> float:
        return drop(self.metric, self.old, self.new)


def compare_reports(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every comparable number of two reports: overall, per key value and per item."""
    metrics = [m for m in new["config"]["metrics"] if m in old["config"]["metrics"]]
    changes: list[Change] = []
    for m in metrics:
        changes.append(
            Change("overall", m, _value(old["summary"]["micro"][m]["mean"]), _value(new["summary"]["micro"][m]["mean"]))
        )
    for key, rows in new["keys"].items():
        old_rows = {r["value"]: r for r in old["keys"].get(key, [])}
        for r in rows:
            o = old_rows.get(r["value"])
            if o is None:
                continue
            for m in metrics:
                if r["metrics"][m]["n"] and o["metrics"][m]["n"]:
                    changes.append(
                        Change(
                            f"{key}={r['value']}", m, _value(o["metrics"][m]["mean"]), _value(r["metrics"][m]["mean"])
                        )
                    )
    old_items = {i["id"]: i for i in old["items"] if i["status"] == "ok"}
    for i in new["items"]:
        o = old_items.get(i["id"])
        if o is None or i["status"] != "ok":
            continue
        for m in metrics:
            changes.append(Change(f"item {i['id']}", m, _value(o["scores"][m]), _value(i["scores"][m])))
    return changes


def regressions(changes: Sequence[Change], max_drop: Mapping[str, float]) -> list[Change]:
    """Changes that drop more than allowed, largest first."""
    bad = [c for c in changes if c.metric in max_drop and c.drop > max_drop[c.metric]]
    return sorted(bad, key=lambda c: (-c.drop, c.scope, c.metric))


def baseline_checks(changes: Sequence[Change], max_drop: Mapping[str, float]) -> list[Check]:
    """One gate condition per ``--max-drop`` metric."""
    checks = []
    for metric, limit in max_drop.items():
        name = f"{metric} drops at most {limit:g} against the baseline"
        bad = regressions([c for c in changes if c.metric == metric], max_drop)
        if bad:
            worst = ", ".join(f"{c.scope} {_fmt(metric, c.old)} -> {_fmt(metric, c.new)}" for c in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            checks.append(
                Check(
                    name,
                    False,
                    f"{name}: {len(bad)} regressions, largest first: {worst}{more}",
                    tuple(c.scope for c in bad),
                )
            )
        else:
            checks.append(Check(name, True, f"{name}: no regression"))
    return checks


def format_changes(changes: Sequence[Change], max_drop: Mapping[str, float], limit: int = 20) -> str:
    """A readable comparison: overall and per-key changes, then the largest item regressions."""
    lines = [f"{'scope':<32}{'metric':<7}{'baseline':>12}{'new':>12}{'change':>12}"]
    summary = [c for c in changes if not c.scope.startswith("item ")]
    for c in summary:
        delta = 0.0 if c.old == c.new else c.new - c.old
        flag = "  REGRESSION" if c.metric in max_drop and c.drop > max_drop[c.metric] else ""
        lines.append(
            f"{c.scope:<32}{c.metric:<7}{_fmt(c.metric, c.old):>12}{_fmt(c.metric, c.new):>12}{delta:>+12.6g}{flag}"
        )
    items = sorted((c for c in changes if c.scope.startswith("item ") and c.drop > 0), key=lambda c: -c.drop)
    if items:
        lines.append("")
        lines.append(f"largest item drops ({min(limit, len(items))} of {len(items)}):")
        for c in items[:limit]:
            flag = "  REGRESSION" if c.metric in max_drop and c.drop > max_drop[c.metric] else ""
            lines.append(
                f"  {c.scope[5:]:<30}{c.metric:<7}{_fmt(c.metric, c.old):>12}{_fmt(c.metric, c.new):>12}{flag}"
            )
    return "\n".join(lines) + "\n"
