"""Quality gates for CI: thresholds on a run and regressions against a baseline.

Everything here reads the typed :class:`~iqeval.results.Run`, whether it was
just computed or read back from a ``--json`` report (:func:`load_report`), so
``iqeval diff`` checks two saved reports with the same code as a live run.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BaselineError, ConfigError
from .metrics import METRICS
from .prepare import Options
from .report import format_score
from .results import READABLE_SCHEMAS, Change, Check, Presence, Run
from .stats import plural

_OPTION_DEFAULTS = {k: v for k, v in Options().as_dict().items() if k != "metrics"} | {
    "frame_offset": 0,
    "align": None,
    "pool": {},
}

# options that change what the numbers mean; reports that differ in any are not comparable
COMPARABLE = (
    "convention",
    "color",
    "crop_border",
    "ssim_kernel",
    "win_size",
    "sigma",
    "data_range",
    "alpha",
    "sequences",
    "out_of_range",
    "y_rounding",
    "gray_as_y",
    "ssim_border",
    "downsample",
    "cs_relu",
    "msssim",
    "mod_crop",
    "psnr_color",
    "frame_offset",
    "align",
    "pool",
)

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


def worse(metric: str, value: float, limit: float) -> bool:
    """True when ``value`` is worse than ``limit`` in the metric's direction."""
    return METRICS[metric].worse(value, limit)


def drop(metric: str, old: float, new: float) -> float:
    """How much worse ``new`` is than ``old`` (negative for an improvement); inf-safe."""
    return METRICS[metric].drop(old, new)


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
        raise ConfigError(f"item_floor= takes METRIC=VALUE, not a key scope: {text!r}")
    return Threshold(metric, float(m["threshold"]), m["key"], m["value"], per_item)


@dataclass(frozen=True)
class GateConfig:
    """The conditions a run must meet: thresholds, and no regression against a baseline."""

    thresholds: tuple[Threshold, ...] = ()
    max_drop: Mapping[str, float] = field(default_factory=dict)
    baseline: Run | None = None
    baseline_name: str = "baseline"
    allow_missing: bool = False
    significance: float | None = None  # a regression must also be significant at this level


def parse_max_drop(texts: Sequence[str]) -> dict[str, float]:
    """Parse ``--max-drop ssim=0.005`` options."""
    out: dict[str, float] = {}
    for text in texts:
        t = parse_threshold(text, per_item=True)
        if t.value < 0:
            raise ConfigError(f"max_drop= must not be negative: {text!r}")
        out[t.metric] = t.value
    return out


def check_thresholds(run: Run, thresholds: Sequence[Threshold]) -> list[Check]:
    """Evaluate thresholds against a run."""
    checks: list[Check] = []
    for t in thresholds:
        op = ">=" if METRICS[t.metric].higher_is_better else "<="
        name = f"{t.metric} {op} {t.value:g} ({t.scope})"
        if t.metric not in run.metrics:
            checks.append(Check(name, False, f"{name}: {t.metric} was not computed in this run"))
            continue
        if t.per_item:
            bad = [
                (r.id, r.scores[t.metric]) for r in run.items if r.ok and worse(t.metric, r.scores[t.metric], t.value)
            ]
            reverse = not METRICS[t.metric].higher_is_better
            bad.sort(key=lambda x: (x[1], x[0]), reverse=reverse)
            if bad:
                listing = ", ".join(f"{i} ({format_score(t.metric, v)})" for i, v in bad[:10])
                more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
                msg = f"{name}: {plural(len(bad), 'item')} below the floor, worst first: {listing}{more}"
                checks.append(Check(name, False, msg, tuple(i for i, _ in bad)))
            else:
                checks.append(Check(name, True, f"{name}: all items pass"))
            continue
        if t.key is None:
            scopes = [("overall", run.summary.micro[t.metric])]
        else:
            rows = run.summary.groups.get(t.key)
            if rows is None:
                checks.append(Check(name, False, f"{name}: no key {t.key!r} in this run"))
                continue
            chosen = [g for g in rows if t.key_value in ("*", g.value)]
            if not chosen:
                checks.append(Check(name, False, f"{name}: no item has {t.key}={t.key_value}"))
                continue
            scopes = [(f"{t.key}={g.value}", g.metrics[t.metric]) for g in chosen]
        for scope, stats in scopes:
            label = f"{t.metric} {op} {t.value:g} ({scope})"
            if stats.n == 0:
                checks.append(Check(label, False, f"{label}: no scored item"))
            else:
                mean = format_score(t.metric, stats.mean)
                checks.append(Check(label, not worse(t.metric, stats.mean, t.value), f"{label}: mean is {mean}"))
    return checks


def check_gate_inputs(
    thresholds: Sequence[Threshold], drops: Mapping[str, float], metrics: Sequence[str], key_names: Sequence[str]
) -> None:
    """Refuse, before scoring, gate conditions on metrics not computed or keys that cannot exist."""
    for t in thresholds:
        if t.metric not in metrics:
            raise ConfigError(
                f"a gate checks {t.metric}, which this run does not compute (metrics={','.join(metrics)!r})"
            )
        if t.key is not None and t.key not in key_names:
            raise ConfigError(f"a gate scopes key {t.key!r}, but the keys are: {', '.join(key_names)}")
    for m in drops:
        if m not in metrics:
            raise ConfigError(f"max_drop= checks {m}, which this run does not compute (metrics={','.join(metrics)!r})")


def check_baseline_metrics(baseline: Run, drops: Mapping[str, float], name: str) -> None:
    """Refuse a max_drop on a metric the baseline lacks (nothing could be compared)."""
    for m in drops:
        if m not in baseline.metrics:
            raise BaselineError(
                f"{name} has no {m} (it computed {', '.join(baseline.metrics)}); a max_drop= on {m} cannot be checked"
            )


def _config_value(config: Mapping[str, Any], key: str) -> Any:
    if key == "sequences" and "sequences" not in config and "frame_folders" in config:
        # 0.1 reports: frame_folders=true was today's --sequences always (no size or gap checks)
        return "always" if config["frame_folders"] else "never"
    if key not in config and key in _OPTION_DEFAULTS:  # a report from before the setting existed
        return _OPTION_DEFAULTS[key]
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
    version = doc.get("schema_version")
    _need(
        version in READABLE_SCHEMAS,
        path,
        f"schema_version {version!r} is not supported (this iqeval reads {', '.join(map(str, READABLE_SCHEMAS))})",
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
        n = value.get("n")
        _need(isinstance(n, int) and not isinstance(n, bool), path, f"{where}.n is not a count")

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
        frames = item.get("frames")
        if frames is not None:
            _need(
                isinstance(frames, dict)
                and all(isinstance(v, list) and all(_is_number(x) for x in v) for v in frames.values()),
                path,
                f"items[{i}] ({item['id']}) frames are not lists of numbers",
            )
    return doc


def load_report(path: str | Path) -> Run:
    """Read a ``--json`` report (schema 1 or 2) as a :class:`Run`, refusing anything else with a clear message."""
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
    validate_report(doc, p)
    try:
        return Run.from_doc(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # a field validate_report does not check (counts, checks, paired, frames) is damaged
        raise BaselineError(f"{p}: not an iqeval batch report (written by --json on two folders): {exc!r}") from exc


def check_comparable(old: Mapping[str, Any], new: Mapping[str, Any], old_name: str = "baseline") -> None:
    """Refuse runs whose numbers mean different things (``old`` and ``new`` are their settings)."""
    diffs = [
        f"{k}={_config_value(old, k)!r} vs {_config_value(new, k)!r}"
        for k in COMPARABLE
        if _config_value(old, k) != _config_value(new, k)
    ]
    if diffs:
        raise BaselineError(
            f"{old_name} was computed with other settings ({'; '.join(diffs)}); comparing them would be meaningless"
        )


def presence(old: Run, new: Run) -> Presence:
    """Compare the item lists of two runs."""
    old_ok = {r.id for r in old.items if r.ok}
    old_all = {r.id for r in old.items}
    new_status = {r.id: r.status for r in new.items}
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
        return Check(name, True, f"{name}: {plural(p.shared, 'shared item')}")
    parts = []
    if p.missing:
        parts.append(f"{len(p.missing)} missing ({', '.join(p.missing[:5])}{' ...' if len(p.missing) > 5 else ''})")
    if p.failed:
        parts.append(f"{len(p.failed)} failed now ({', '.join(p.failed[:5])}{' ...' if len(p.failed) > 5 else ''})")
    return Check(name, False, f"{name}: {'; '.join(parts)}", p.lost)


def compare_runs(old: Run, new: Run) -> list[Change]:
    """Every comparable number of two runs: overall, per key value and per item."""
    metrics = [m for m in new.metrics if m in old.metrics]
    changes: list[Change] = []
    for m in metrics:
        o, n = old.summary.micro[m], new.summary.micro[m]
        changes.append(Change("overall", m, o.mean, n.mean, o.n, n.n))
    for key, rows in new.summary.groups.items():
        old_rows = {g.value: g for g in old.summary.groups.get(key, [])}
        for g in rows:
            o_group = old_rows.get(g.value)
            if o_group is None:
                continue
            for m in metrics:
                a, b = o_group.metrics[m], g.metrics[m]
                if a.n and b.n:
                    changes.append(Change(f"{key}={g.value}", m, a.mean, b.mean, a.n, b.n))
    old_items = {r.id: r for r in old.items if r.ok}
    for r in new.items:
        o_item = old_items.get(r.id)
        if o_item is None or not r.ok:
            continue
        for m in metrics:
            changes.append(Change(f"item {r.id}", m, o_item.scores[m], r.scores[m]))
    return changes


def regressions(changes: Sequence[Change], max_drop: Mapping[str, float]) -> list[Change]:
    """Changes that drop more than allowed, largest first."""
    bad = [c for c in changes if c.metric in max_drop and drop(c.metric, c.old, c.new) > max_drop[c.metric]]
    return sorted(bad, key=lambda c: (-drop(c.metric, c.old, c.new), c.scope, c.metric))


def _scope_drops(old: Run, new: Run, scope: str, metric: str) -> list[float]:
    """Per-item drops (positive: worse) of the items both runs scored in a scope ("overall" or "key=value")."""
    key, _, value = scope.partition("=")
    old_ok = {r.id: r for r in old.items if r.ok}
    drops = []
    for r in new.items:
        o = old_ok.get(r.id)
        if o is None or not r.ok or (scope != "overall" and r.keys.get(key) != value):
            continue
        d = METRICS[metric].drop(o.scores[metric], r.scores[metric])
        if math.isfinite(d):
            drops.append(d)
    return drops


def significant_drop(old: Run, new: Run, scope: str, metric: str) -> float:
    """One-sided Wilcoxon signed-rank p-value that the scope's items got worse (SciPy)."""
    from .methods import wilcoxon_p

    return wilcoxon_p(np.asarray(_scope_drops(old, new, scope, metric)), alternative="greater")


def baseline_checks(
    changes: Sequence[Change],
    max_drop: Mapping[str, float],
    significance: float | None = None,
    old: Run | None = None,
    new: Run | None = None,
) -> list[Check]:
    """One gate condition per ``max_drop`` metric.

    With ``significance`` (and both runs), a drop of the overall or of a key
    value fails only when it is also significant: the one-sided Wilcoxon
    signed-rank test on the items both runs scored gives p below the level.
    One item has no test, so item drops are listed but do not fail then.
    """
    checks = []
    for metric, limit in max_drop.items():
        name = f"{metric} drops at most {limit:g} against the baseline"
        bad = regressions([c for c in changes if c.metric == metric], max_drop)
        noise: list[str] = []
        if significance is not None and old is not None and new is not None:
            kept = []
            for c in bad:
                if c.scope.startswith("item "):
                    continue
                p = significant_drop(old, new, c.scope, metric)
                if p < significance:
                    kept.append((c, p))
                else:
                    noise.append(f"{c.scope} (p={p:.3g})")
            tested = [(c, f" (p={p:.3g})") for c, p in kept]
        else:
            tested = [(c, "") for c in bad]
        level = f"; significant at {significance:g}, one-sided Wilcoxon" if significance is not None else ""
        if tested:
            worst = ", ".join(
                f"{c.scope} {format_score(metric, c.old)} -> {format_score(metric, c.new)}{p}" for c, p in tested[:5]
            )
            more = f" and {len(tested) - 5} more" if len(tested) > 5 else ""
            message = f"{name}: {plural(len(tested), 'regression')}{level}, largest first: {worst}{more}"
            checks.append(Check(name, False, message, tuple(c.scope for c, _ in tested)))
        elif noise:
            message = f"{name}: drops beyond {limit:g} but not significant at {significance:g}: {', '.join(noise[:5])}"
            checks.append(Check(name, True, message))
        else:
            checks.append(Check(name, True, f"{name}: no regression"))
    return checks


def gate(
    run: Run,
    thresholds: Sequence[Threshold] = (),
    max_drop: Mapping[str, float] | None = None,
    baseline: Run | None = None,
    allow_missing: bool = False,
    significance: float | None = None,
) -> list[Check]:
    """Every gate condition of a run: thresholds, then regressions and lost items against a baseline."""
    checks = check_thresholds(run, thresholds)
    if baseline is not None:
        checks += baseline_checks(compare_runs(baseline, run), max_drop or {}, significance, baseline, run)
        if not allow_missing:
            checks.append(presence_check(presence(baseline, run)))
    return checks
