"""Formatting of results: text, JSON, CSV, JUnit and Markdown. No other module formats numbers.

Every writer reads the typed :class:`~iqeval.results.Run` (a report dict is
read back with ``Run.from_doc`` first), and returns the text to write.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .metrics import METRICS
from .prepare import PairInfo
from .results import Change, Check, ItemResult, Presence, Run, dumps, json_value
from .stats import Summary, nonfinite, plural

__all__ = [
    "csv_float",
    "csv_text",
    "dumps",
    "format_changes",
    "format_pair",
    "format_score",
    "format_summary",
    "frames_csv",
    "items_csv",
    "json_report",
    "json_value",
    "junit_xml",
    "markdown_summary",
    "md_text",
    "metric_label",
    "printable",
    "worst_items",
]


_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def printable(text: str) -> str:
    """``text`` made safe for a terminal and every text report.

    Bytes of a file name that are not UTF-8 (Python keeps them as lone
    surrogates) become ``\\xNN``; control characters (ANSI escape sequences,
    newlines, bidirectional overrides) become backslash escapes, so a name can
    neither break a line of a report nor reach a terminal as a command.
    """
    if text.isascii() and text.isprintable():
        return text
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that was never a byte
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def csv_text(text: str) -> str:
    """A text cell for CSV: printable, and never read as a formula by a spreadsheet.

    A cell starting with ``= + - @``, a tab or a carriage return is a known
    injection (CSV/formula injection); such cells get a leading apostrophe.
    """
    text = printable(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#!])")


def md_text(text: str) -> str:
    """Text for Markdown (GitHub's step summary): no markup, no HTML, one line.

    ``<`` and ``&`` become entities (no tag can open), Markdown's punctuation is
    backslash-escaped, and line breaks are escapes (no heading can be forged).
    """
    text = printable(text).replace("&", "&amp;").replace("<", "&lt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def metric_label(metric: str) -> str:
    """A metric's display name with its unit, e.g. "PSNR (dB)"."""
    m = METRICS[metric]
    return m.label + (f" ({m.unit})" if m.unit else "")


def format_score(metric: str | None, value: float) -> str:
    """A score for people to read (the metric's decimals); full precision lives in JSON and CSV."""
    text = nonfinite(value)
    if text is not None:
        return text
    m = METRICS.get(metric) if metric is not None else None
    if m is not None and m.decimals is not None:
        return f"{value:.{m.decimals}f}"
    return f"{value:.6g}"


class _Pair(Protocol):
    @property
    def pred(self) -> str: ...
    @property
    def gt(self) -> str: ...
    @property
    def scores(self) -> Mapping[str, float]: ...
    @property
    def info(self) -> PairInfo | None: ...


def format_pair(result: _Pair) -> str:
    """The single-pair report: the facts that shaped the numbers, then the numbers."""
    info = result.info
    assert info is not None, "format_pair needs a scored pair"
    dtypes = info.pred_dtype if info.pred_dtype == info.gt_dtype else f"{info.pred_dtype} / {info.gt_dtype}"
    crop = f"{info.crop_border} px (scored {info.scored_width}x{info.scored_height})" if info.crop_border else "none"
    lines = [
        f"pred        {printable(result.pred)}",
        f"gt          {printable(result.gt)}",
        f"size        {info.width}x{info.height}, {info.channels} channel{'s' if info.channels != 1 else ''}",
        f"dtype       {dtypes}",
        f"data range  {info.data_range:g} ({info.data_range_source})",
        f"colour      {info.color}",
        f"crop        {crop}",
    ]
    if "ssim" in result.scores:
        lines.append(f"ssim window {info.ssim}")
    for name, value in result.scores.items():
        m = METRICS[name]
        text = format_score(name, value)
        unit = f" {m.unit}" if m.unit else ""
        note = "  (identical images)" if name == "psnr" and math.isinf(value) else ""
        lines.append(f"{m.label:<11} {text}{unit}{note}")
    return "\n".join(lines) + "\n"


def json_report(run: Run) -> str:
    """The JSON report (schema 2): ``Run.to_doc()`` as strict JSON."""
    return dumps(run.to_doc())


def _as_run(run: Run | Mapping[str, Any]) -> Run:
    return run if isinstance(run, Run) else Run.from_doc(run)


def worst_items(items: Sequence[ItemResult], n: int) -> list[ItemResult]:
    """The ``n`` worst scored items by their first metric, worst first (ties by id)."""
    ok = [r for r in items if r.ok]
    if not ok or n <= 0:
        return []
    m = ok[0].metrics[0]
    return sorted(ok, key=lambda r: (r.scores[m], r.id), reverse=not METRICS[m].higher_is_better)[:n]


def csv_float(value: float | None) -> str:
    """Full precision that round-trips through float(); inf as "inf"."""
    if value is None:
        return ""
    v = float(value)
    return nonfinite(v) or repr(v)


ITEM_COLUMNS = ("id", "kind", "status", "n_frames", "width", "height", "data_range", "pred", "gt", "error", "read_as")
"""The fixed columns of the items CSV (keys and metrics come between ``status`` and ``n_frames``)."""


def items_csv(run: Run) -> str:
    """One row per item."""
    results, metrics, key_names = run.items, run.metrics, run.key_names
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*ITEM_COLUMNS[:3], *key_names, *metrics, *ITEM_COLUMNS[3:]])
    for r in results:
        info = r.info
        w.writerow(
            [
                csv_text(r.id),
                r.kind,
                r.status,
                *(csv_text(r.keys.get(k, "")) for k in key_names),
                *(csv_float(r.scores.get(m)) for m in metrics),
                r.n_frames,
                info.width if info else "",
                info.height if info else "",
                csv_float(info.data_range) if info else "",
                csv_text(r.pred),
                csv_text(r.gt),
                csv_text(r.error or ""),
                csv_text(r.decision),
            ]
        )
    return buf.getvalue()


def frames_csv(run: Run) -> str:
    """One row per frame of every sequence item (a still image is not a frame)."""
    results, metrics = run.items, run.metrics
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "frame", *metrics])
    for r in results:
        for index, row in enumerate(r.frame_scores):
            w.writerow([csv_text(r.id), index, *(csv_float(v) for v in row)])
    return buf.getvalue()


def _cells(metrics: Sequence[str], summaries: Mapping[str, Summary]) -> list[str]:
    return [format_score(m, summaries[m].mean) if summaries[m].n else "-" for m in metrics]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        ).rstrip()

    return [line(header), *(line(r) for r in rows)]


def format_summary(run: Run, show_items: bool = False) -> str:
    """The human summary: items if asked, per-key means, overall means, failures, unmatched files."""
    results, summary = run.items, run.summary
    metrics = summary.metrics
    labels = [metric_label(m) for m in metrics]
    out: list[str] = []
    if show_items:
        rows = [
            [
                printable(r.id),
                r.kind if r.ok else "FAILED",
                str(r.n_frames or ""),
                *[format_score(m, r.scores[m]) if r.ok else "-" for m in metrics],
            ]
            for r in results
        ]
        out += _table(["item", "kind", "frames", *labels], rows)
        out.append("")
    rows = []
    for key, groups in summary.groups.items():
        for g in groups:
            rows.append([printable(f"{key}={g.value}"), str(g.n_items - g.n_failed), *_cells(metrics, g.metrics)])
    rows.append(["overall (micro)", str(summary.n_ok), *_cells(metrics, summary.micro)])
    for key, values in summary.macro.items():
        if len(summary.groups.get(key, ())) > 1:
            rows.append([f"overall (macro by {key})", "", *[format_score(m, values[m]) for m in metrics]])
    for key, values in summary.weighted.items():
        rows.append([f"overall (weighted by {key})", "", *[format_score(m, values[m]) for m in metrics]])
    out += _table(["mean", "n", *labels], rows)
    for m in metrics:
        s = summary.micro[m]
        if s.n_inf:
            out.append(
                f"{METRICS[m].label}: {s.n_inf} of {s.n} items are inf (identical); mean of the finite ones: {format_score(m, s.mean_finite)}"
            )
    out.append(
        f"{plural(summary.n_items, 'item')} ({summary.n_ok} ok, {summary.n_failed} failed), "
        f"{plural(summary.n_frames, 'sequence frame')}"
        + (f", {run.ignored_files} non-image files ignored" if run.ignored_files else "")
    )
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- CI reports


def junit_xml(run: Run | Mapping[str, Any], checks: Sequence[Check] | None = None) -> str:
    """JUnit XML: one testcase per item and one per gate condition (``run.checks`` unless given).

    The layout (testsuites > testsuite > testcase with failure/error children)
    is the one GitLab, Jenkins and the GitHub test reporters read.
    """
    from xml.etree import ElementTree as ET

    run = _as_run(run)
    checks = run.checks if checks is None else checks
    floors: dict[str, list[str]] = {}
    for c in checks:
        if not c.passed:
            for offender in c.offenders:
                floors.setdefault(offender, []).append(c.name)
    root = ET.Element("testsuites", name="iqeval")
    items = ET.SubElement(root, "testsuite", name="iqeval.items")
    failures = errors = 0
    for r in run.items:
        case = ET.SubElement(
            items,
            "testcase",
            classname=printable(f"iqeval.items.{r.keys.get('group', 'items')}"),
            name=printable(r.id),
        )
        case.set("time", "0")
        scores = ", ".join(f"{m}={csv_float(r.scores.get(m))}" for m in run.metrics)
        if not r.ok:
            errors += 1
            error = printable(str(r.error))
            ET.SubElement(case, "error", message=error, type="ItemError").text = error
        elif r.id in floors:
            failures += 1
            crossed = "; ".join(floors[r.id])
            message = printable(f"below {crossed}: {scores}")
            ET.SubElement(case, "failure", message=message, type="QualityFloor").text = message
        else:
            ET.SubElement(case, "system-out").text = scores
    items.set("tests", str(len(run.items)))
    items.set("failures", str(failures))
    items.set("errors", str(errors))
    gate = ET.SubElement(root, "testsuite", name="iqeval.gate", tests=str(len(checks)))
    gate_failures = 0
    for c in checks:
        case = ET.SubElement(gate, "testcase", classname="iqeval.gate", name=printable(c.name), time="0")
        if not c.passed:
            gate_failures += 1
            message = printable(c.message)
            ET.SubElement(case, "failure", message=message, type="QualityGate").text = message
    gate.set("failures", str(gate_failures))
    gate.set("errors", "0")
    root.set("tests", str(len(run.items) + len(checks)))
    root.set("failures", str(failures + gate_failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _detail(check: Check) -> str:
    """A check's message without its name in front (tables show the name in its own column)."""
    prefix = f"{check.name}: "
    return check.message[len(prefix) :] if check.message.startswith(prefix) else check.message


def markdown_summary(run: Run | Mapping[str, Any], checks: Sequence[Check] | None = None, worst: int = 5) -> str:
    """A compact summary for ``$GITHUB_STEP_SUMMARY`` and merge-request comments."""
    run = _as_run(run)
    checks = run.checks if checks is None else checks
    metrics = run.metrics
    labels = [metric_label(m) for m in metrics]
    s = run.summary
    status = "failed" if any(not k.passed for k in checks) or s.n_failed else "passed"
    unmatched = run.pred_only or run.gt_only
    out = [
        f"### iqeval: {status}",
        "",
        f"{plural(s.n_items, 'item')} ({s.n_ok} ok, {s.n_failed} failed), {plural(s.n_frames, 'sequence frame')}"
        + (f", {len(run.pred_only)} pred-only and {len(run.gt_only)} gt-only files" if unmatched else ""),
        "",
        "| scope | n | " + " | ".join(labels) + " |",
        "|---|---:|" + "---:|" * len(metrics),
    ]
    out.append(
        f"| **overall** | {s.micro[metrics[0]].n} | "
        + " | ".join(format_score(m, s.micro[m].mean) for m in metrics)
        + " |"
    )
    for key, rows in s.groups.items():
        for g in rows:
            out.append(
                f"| {md_text(key)}={md_text(g.value)} | {g.metrics[metrics[0]].n} | "
                + " | ".join(format_score(m, g.metrics[m].mean) if g.metrics[m].n else "-" for m in metrics)
                + " |"
            )
    if checks:
        out += ["", "| gate | result |", "|---|---|"]
        out += [f"| {md_text(k.name)} | {'pass' if k.passed else '**FAIL**: ' + md_text(_detail(k))} |" for k in checks]
    read_as: dict[str, list[str]] = {}
    for r in run.items:
        read_as.setdefault(r.decision or r.kind, []).append(r.id)
    if any(k not in ("image", "video") for k in read_as):
        out += ["", "<details><summary>how items were read</summary>", ""]
        out += [
            f"- {md_text(how)}: {len(ids)} item{'s' if len(ids) != 1 else ''} (first: {md_text(ids[0])})"
            for how, ids in read_as.items()
        ]
        out += ["", "</details>"]
    if run.paired:
        out += ["", "<details><summary>paired differences between methods</summary>", "", "```"]
        out += [line.replace("`", "'") for line in paired_text(run.paired).splitlines()]
        out += ["```", "", "</details>"]
    failed = [r for r in run.items if not r.ok]
    if failed:
        out += ["", "<details><summary>failed items</summary>", ""]
        out += [f"- {md_text(r.id)}: {md_text(str(r.error))}" for r in failed]
        out += ["", "</details>"]
    ranked = worst_items(run.items, worst)
    if ranked:
        m0 = ranked[0].metrics[0]
        out += ["", f"<details><summary>worst {len(ranked)} items by {METRICS[m0].label}</summary>", ""]
        out += [
            f"- {md_text(r.id)}: " + ", ".join(f"{METRICS[m].label} {format_score(m, r.scores[m])}" for m in metrics)
            for r in ranked
        ]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"


def format_changes(
    changes: Sequence[Change], max_drop: Mapping[str, float], limit: int = 20, listing: Presence | None = None
) -> str:
    """A readable comparison: overall and per-key changes, then the largest item regressions.

    When a scope's item count changed, its means are over different items, and
    the row says so.
    """

    def flag(c: Change) -> str:
        regressed = c.metric in max_drop and METRICS[c.metric].drop(c.old, c.new) > max_drop[c.metric]
        return "REGRESSION" if regressed else ""

    def change(c: Change) -> str:
        return f"{0.0 if c.old == c.new else c.new - c.old:+.6g}"

    rows, notes = [], []
    for c in (c for c in changes if not c.scope.startswith("item ")):
        rows.append(
            [printable(c.scope), c.metric, format_score(c.metric, c.old), format_score(c.metric, c.new), change(c)]
        )
        n = "" if c.n_old == c.n_new else f"(n {c.n_old} -> {c.n_new}: not the same items)"
        notes.append("  ".join(t for t in (n, flag(c)) if t))
    table = _table(["scope", "metric", "baseline", "new", "change"], rows)
    lines = [table[0]] + [f"{line}  {note}".rstrip() for line, note in zip(table[1:], notes, strict=True)]
    # item drops, ranked within each metric: an MSE drop in its own units never hides a PSNR one
    for metric in dict.fromkeys(c.metric for c in changes):
        drops = sorted(
            (
                c
                for c in changes
                if c.scope.startswith("item ") and c.metric == metric and METRICS[metric].drop(c.old, c.new) > 0
            ),
            key=lambda c: (-METRICS[metric].drop(c.old, c.new), c.scope),
        )
        if not drops:
            continue
        lines += ["", f"largest item drops in {METRICS[metric].label} ({min(limit, len(drops))} of {len(drops)}):"]
        item_rows = [
            [printable(c.scope[5:]), format_score(metric, c.old), format_score(metric, c.new), change(c)]
            for c in drops[:limit]
        ]
        item_table = _table(["item", "baseline", "new", "change"], item_rows)
        flags = [""] + [flag(c) for c in drops[:limit]]
        lines += [f"  {line}  {f}".rstrip() for line, f in zip(item_table, flags, strict=True)]
    if listing is not None:
        for label, ids in (
            ("in the baseline, missing now", listing.missing),
            ("scored in the baseline, failed now", listing.failed),
            ("new (not in the baseline)", listing.appeared),
        ):
            if ids:
                lines.append("")
                lines.append(f"{plural(len(ids), 'item')} {label}:")
                lines += [f"  {printable(i)}" for i in ids[:limit]]
                if len(ids) > limit:
                    lines.append(f"  ... and {len(ids) - limit} more")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- several methods

_TEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def tex_text(text: str) -> str:
    """Text for LaTeX: its special characters escaped."""
    return "".join(_TEX_SPECIAL.get(c, c) for c in printable(text))


def method_table(run: Run, fmt: str) -> str:
    """Methods x datasets x metrics, the paper's table: ``md``, ``tex`` (booktabs) or ``csv``.

    The best value of each column is marked (bold; ``best`` in CSV); the
    convention and the number of items per dataset are stated under it.
    """
    from .methods import best_in_columns, table_cells

    methods, datasets, cells = table_cells(run)
    metrics = list(run.metrics)
    best = best_in_columns(methods, datasets, metrics, cells)
    counts = ", ".join(f"{d} {max(cells[(m, d, metrics[0])][1] for m in methods)}" for d in datasets)
    settings = run.settings
    scale = f", scale {settings['scale']}" if settings.get("scale") else ""
    footer = f"Convention: {settings.get('convention', 'skimage')}{scale}. Items per dataset: {counts}."
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["method", "dataset", "metric", "mean", "n", "best"])
        for m in methods:
            for d in datasets:
                for k in metrics:
                    mean, n = cells[(m, d, k)]
                    w.writerow([csv_text(m), csv_text(d), k, csv_float(mean), n, (m, d, k) in best])
        return buf.getvalue()

    def cell(m: str, d: str, k: str, mark: tuple[str, str]) -> str:
        mean, n = cells[(m, d, k)]
        text = format_score(k, mean) if n else "-"
        return f"{mark[0]}{text}{mark[1]}" if (m, d, k) in best else text

    if fmt == "md":
        head = "| method | " + " | ".join(f"{md_text(d)} {metric_label(k)}" for d in datasets for k in metrics) + " |"
        rule = "|---|" + "---:|" * (len(datasets) * len(metrics))
        rows = [
            f"| {md_text(m)} | " + " | ".join(cell(m, d, k, ("**", "**")) for d in datasets for k in metrics) + " |"
            for m in methods
        ]
        return "\n".join([head, rule, *rows, "", md_text(footer)]) + "\n"
    if fmt == "tex":
        cols = "l" + ("r" * len(metrics)) * len(datasets)
        groups = " & ".join(rf"\multicolumn{{{len(metrics)}}}{{c}}{{{tex_text(d)}}}" for d in datasets)
        rules = " ".join(
            rf"\cmidrule(lr){{{2 + i * len(metrics)}-{1 + (i + 1) * len(metrics)}}}" for i in range(len(datasets))
        )
        labels = " & ".join(tex_text(metric_label(k)) for _ in datasets for k in metrics)
        body = [
            tex_text(m)
            + " & "
            + " & ".join(cell(m, d, k, (r"\textbf{", "}")) for d in datasets for k in metrics)
            + r" \\"
            for m in methods
        ]
        lines = [
            "% iqeval method table; needs \\usepackage{booktabs}",
            rf"\begin{{tabular}}{{{cols}}}",
            r"\toprule",
            rf" & {groups} \\",
            rules,
            rf"Method & {labels} \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            "",
            tex_text(footer),
        ]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown table format {fmt!r}; choose from md, tex, csv")


def paired_text(pairs: Sequence[Any]) -> str:
    """Paired differences between methods for people: mean (b - a), interval, Wilcoxon p, wins/ties/losses."""
    if not pairs:
        return ""
    header = ["b - a", "metric", "n", "mean diff", "95% CI", "Wilcoxon p", "win/tie/loss"]
    rows = []
    for p in pairs:
        ci = f"[{p.ci_low:+.4g}, {p.ci_high:+.4g}]" if p.n else "-"
        rows.append(
            [
                printable(f"{p.b} - {p.a}"),
                p.metric,
                str(p.n),
                f"{p.mean_diff:+.6g}",
                ci,
                f"{p.p_value:.3g}",
                f"{p.wins}/{p.ties}/{p.losses}",
            ]
        )
    lines = ["paired differences between methods (items both scored; bootstrap CI, seed 0, 10000 resamples):"]
    lines += _table(header, rows)
    for p in pairs:
        if p.only_a or p.only_b:
            lines.append(
                printable(
                    f"{p.b} - {p.a} ({p.metric}): {len(p.only_a)} items only {p.a} scored, "
                    f"{len(p.only_b)} only {p.b} (first: {(p.only_a + p.only_b)[0]})"
                )
            )
    return "\n".join(lines) + "\n"
