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
COMPARABLE = ("color", "crop_border", "ssim_kernel", "win_size", "sigma", "data_range", "alpha", "sequences")

_CONDITION = re.compile(
    r"^(?P<metric>[A-Za-z][A-Za-z0-9_]*)(?:\[(?P<key>[^=\]]+)=(?P<value>[^\]]*)\])?=(?P<threshold>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$"
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


def check_gate_inputs(
    thresholds: Sequence[Threshold], drops: Mapping[str, float], metrics: Sequence[str], key_names: Sequence[str]
) -> None:
    """Refuse, before scoring, gate conditions on metrics not computed or keys that cannot exist."""
    for t in thresholds:
        if t.metric not in metrics:
            raise ConfigError(
                f"a gate checks {t.metric}, which this run does not compute (--metrics {','.join(metrics)})"
            )
        if t.key is not None and t.key not in key_names:
            raise ConfigError(f"a gate scopes key {t.key!r}, but the keys are: {', '.join(key_names)}")
    for m in drops:
        if m not in metrics:
            raise ConfigError(f"--max-drop checks {m}, which this run does not compute (--metrics {','.join(metrics)})")


def check_baseline_metrics(baseline: Mapping[str, Any], drops: Mapping[str, float], name: str) -> None:
    """Refuse a --max-drop on a metric the baseline lacks (nothing could be compared)."""
    have = baseline["config"]["metrics"]
    for m in drops:
        if m not in have:
            raise BaselineError(f"{name} has no {m} (it computed {', '.join(have)}); --max-drop {m} cannot be checked")


def _config_value(config: Mapping[str, Any], key: str) -> Any:
    if key == "sequences" and "sequences" not in config and "frame_folders" in config:
        # 0.1 reports: frame_folders=true was today's --sequences always (no size or gap checks)
        return "always" if config["frame_folders"] else "never"
    return config.get(key)


def _need(cond: bool, path: Path, what: str) -> None:
    if not cond:
        raise BaselineError(f"{path}: not an iqeval batch report (written by --json on two folders): {what}")


def _is_number(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (int, float)):
        return True
    return v in ("inf", "-inf", "nan")


def validate_report(doc: Any, path: Path) -> dict[str, Any]:
    """Check every field a comparison reads, so a damaged report is one line, never a traceback."""
    _need(isinstance(doc, dict), path, "the top level is not an object")
    _need(
        doc.get("schema_version") == 1,
        path,
        f"schema_version {doc.get('schema_version')!r} is not supported (expected 1)",
    )
    for key in ("config", "summary", "keys"):
        _need(isinstance(doc.get(key), dict), path, f"'{key}' is missing or not an object")
    _need(isinstance(doc.get("items"), list), path, "'items' is missing or not a list (a single-pair report?)")
    metrics = doc["config"].get("metrics")
    _need(
        isinstance(metrics, list) and all(isinstance(m, str) for m in metrics),
        path,
        "config.metrics is not a list of names",
    )
    micro = doc["summary"].get("micro")
    _need(isinstance(micro, dict), path, "summary.micro is missing")

    def stats(value: Any, where: str) -> None:
        _need(isinstance(value, dict), path, f"{where} is not an object")
        _need(_is_number(value.get("mean")), path, f"{where}.mean is not a number")
        _need(
            isinstance(value.get("n"), int) and not isinstance(value.get("n"), bool), path, f"{where}.n is not a count"
        )

    for m in metrics:
        stats(micro.get(m), f"summary.micro.{m}")
    for key, rows in doc["keys"].items():
        _need(isinstance(rows, list), path, f"keys.{key} is not a list")
        for r in rows:
            _need(
                isinstance(r, dict) and isinstance(r.get("value"), str),
                path,
                f"keys.{key} has an entry without a value",
            )
            _need(isinstance(r.get("metrics"), dict), path, f"keys.{key}={r.get('value')} has no metrics")
            for m in metrics:
                stats(r["metrics"].get(m), f"keys.{key}={r['value']}.{m}")
    for i, item in enumerate(doc["items"]):
        _need(isinstance(item, dict) and isinstance(item.get("id"), str), path, f"items[{i}] has no id")
        _need(item.get("status") in ("ok", "error"), path, f"items[{i}] ({item['id']}) has no valid status")
        _need(isinstance(item.get("keys", {}), dict), path, f"items[{i}] ({item['id']}) keys are not an object")
        if item["status"] == "ok":
            scores = item.get("scores")
            _need(isinstance(scores, dict), path, f"items[{i}] ({item['id']}) has no scores")
            for m in metrics:
                _need(_is_number(scores.get(m)), path, f"items[{i}] ({item['id']}) score {m} is not a number")
    return doc


def load_report(path: str | Path) -> dict[str, Any]:
    """Read a ``--json`` report, refusing anything else with a clear message."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BaselineError(f"{p}: not a UTF-8 text file (an iqeval --json report is)") from None
    except OSError as exc:
        raise BaselineError(f"{p}: cannot read: {exc.strerror or exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{p}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    except RecursionError:
        raise BaselineError(f"{p}: not an iqeval batch report: nested too deeply") from None
    return validate_report(doc, p)


def check_comparable(old: Mapping[str, Any], new: Mapping[str, Any], old_name: str = "baseline") -> None:
    """Refuse reports whose numbers mean different things."""
    diffs = [
        f"{k}={_config_value(old['config'], k)!r} vs {_config_value(new['config'], k)!r}"
        for k in COMPARABLE
        if _config_value(old["config"], k) != _config_value(new["config"], k)
    ]
    if diffs:
        raise BaselineError(
            f"{old_name} was computed with other settings ({'; '.join(diffs)}); comparing them would be meaningless"
        )


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


def presence(old: Mapping[str, Any], new: Mapping[str, Any]) -> Presence:
    """Compare the item lists of two reports."""
    old_ok = {i["id"] for i in old["items"] if i["status"] == "ok"}
    old_all = {i["id"] for i in old["items"]}
    new_status = {i["id"]: i["status"] for i in new["items"]}
    missing = sorted((i for i in old_ok if i not in new_status), key=_total)
    failed = sorted((i for i in old_ok if new_status.get(i) == "error"), key=_total)
    appeared = sorted((i for i in new_status if i not in old_all), key=_total)
    shared = sum(1 for i in old_ok if new_status.get(i) == "ok")
    return Presence(tuple(missing), tuple(failed), tuple(appeared), shared)


def _total(text: str) -> tuple[str, str]:
    return text.lower(), text


def presence_check(p: Presence) -> Check:
    """Items of the baseline that were not scored now fail the gate (a missing output is no improvement)."""
    name = "every baseline item is scored"
    if not p.lost:
        return Check(name, True, f"{name}: {p.shared} shared items")
    parts = []
    if p.missing:
        parts.append(f"{len(p.missing)} missing ({', '.join(p.missing[:5])}{' ...' if len(p.missing) > 5 else ''})")
    if p.failed:
        parts.append(f"{len(p.failed)} failed now ({', '.join(p.failed[:5])}{' ...' if len(p.failed) > 5 else ''})")
    return Check(name, False, f"{name}: {'; '.join(parts)}", p.lost)


@dataclass(frozen=True)
class Change:
    """One metric at one scope, before and after."""

    scope: str  # "overall", "group=faces", "item faces/a"
    metric: str
    old: float
    new: float
    n_old: int = 1
    n_new: int = 1

    @property
    def drop(self) -> float:
        return drop(self.metric, self.old, self.new)


def compare_reports(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every comparable number of two reports: overall, per key value and per item."""
    metrics = [m for m in new["config"]["metrics"] if m in old["config"]["metrics"]]
    changes: list[Change] = []
    for m in metrics:
        o, n = old["summary"]["micro"][m], new["summary"]["micro"][m]
        changes.append(Change("overall", m, _value(o["mean"]), _value(n["mean"]), o["n"], n["n"]))
    for key, rows in new["keys"].items():
        old_rows = {r["value"]: r for r in old["keys"].get(key, [])}
        for r in rows:
            o = old_rows.get(r["value"])
            if o is None:
                continue
            for m in metrics:
                a, b = o["metrics"][m], r["metrics"][m]
                if a["n"] and b["n"]:
                    changes.append(
                        Change(f"{key}={r['value']}", m, _value(a["mean"]), _value(b["mean"]), a["n"], b["n"])
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


def format_changes(
    changes: Sequence[Change], max_drop: Mapping[str, float], limit: int = 20, listing: Presence | None = None
) -> str:
    """A readable comparison: overall and per-key changes, then the largest item regressions.

    When a scope's item count changed, its means are over different items, and
    the row says so.
    """
    from .report import printable

    lines = [f"{'scope':<32}{'metric':<7}{'baseline':>12}{'new':>12}{'change':>12}"]
    summary = [c for c in changes if not c.scope.startswith("item ")]
    for c in summary:
        delta = 0.0 if c.old == c.new else c.new - c.old
        flag = "  REGRESSION" if c.metric in max_drop and c.drop > max_drop[c.metric] else ""
        n = "" if c.n_old == c.n_new else f"  (n {c.n_old} -> {c.n_new}: not the same items)"
        lines.append(
            f"{printable(c.scope):<32}{c.metric:<7}{_fmt(c.metric, c.old):>12}{_fmt(c.metric, c.new):>12}{delta:>+12.6g}{n}{flag}"
        )
    items = sorted((c for c in changes if c.scope.startswith("item ") and c.drop > 0), key=lambda c: -c.drop)
    if items:
        lines.append("")
        lines.append(f"largest item drops ({min(limit, len(items))} of {len(items)}):")
        for c in items[:limit]:
            flag = "  REGRESSION" if c.metric in max_drop and c.drop > max_drop[c.metric] else ""
            lines.append(
                f"  {printable(c.scope[5:]):<30}{c.metric:<7}{_fmt(c.metric, c.old):>12}{_fmt(c.metric, c.new):>12}{flag}"
            )
    if listing is not None:
        for label, ids in (
            ("in the baseline, missing now", listing.missing),
            ("scored in the baseline, failed now", listing.failed),
            ("new (not in the baseline)", listing.appeared),
        ):
            if ids:
                lines.append("")
                lines.append(f"{len(ids)} items {label}:")
                lines += [f"  {printable(i)}" for i in ids[:limit]]
                if len(ids) > limit:
                    lines.append(f"  ... and {len(ids) - limit} more")
    return "\n".join(lines) + "\n"
