"""Formatting of results: text, JSON and CSV. No other module formats numbers."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .aggregate import RunSummary, Summary, summarize
from .core import PairResult
from .discovery import Pairing
from .evaluate import ItemResult
from .gate import Check
from .metrics import METRICS

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


def json_value(value: float) -> float | str:
    """A float as strict JSON allows it: non-finite values become "inf", "-inf" or "nan"."""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def dumps(data: Any) -> str:
    """Strict JSON (no NaN or Infinity tokens), stable key order."""
    return json.dumps(data, allow_nan=False, indent=2, sort_keys=False) + "\n"


def metric_label(metric: str) -> str:
    """A metric's display name with its unit, e.g. "PSNR (dB)"."""
    m = METRICS[metric]
    return m.label + (f" ({m.unit})" if m.unit else "")


def format_score(metric: str | None, value: float) -> str:
    """A score for people to read; full precision lives in JSON and CSV."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if metric == "ssim":
        return f"{value:.6f}"
    if metric == "psnr":
        return f"{value:.4f}"
    return f"{value:.6g}"


def format_pair(result: PairResult) -> str:
    """The single-pair report: the facts that shaped the numbers, then the numbers."""
    info = result.info
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


def pair_json(result: PairResult, options: dict[str, Any], version: str) -> dict[str, Any]:
    """The single-pair report as a JSON-ready dict."""
    return {
        "schema_version": 1,
        "tool": {"name": "iqeval", "version": version},
        "config": options,
        "pred": result.pred,
        "gt": result.gt,
        "info": result.info.as_dict(),
        "scores": {k: json_value(v) for k, v in result.scores.items()},
    }


# ---------------------------------------------------------------- batch reports

SCHEMA_VERSION = 1


def _clean(value: Any) -> Any:
    """Recursively make a structure strict-JSON-ready (floats through json_value)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return json_value(float(value))
    if isinstance(value, np.integer):
        return int(value)
    return value


def item_dict(r: ItemResult, frames: bool = True) -> dict[str, Any]:
    """One item as a JSON-ready dict."""
    out: dict[str, Any] = {
        "id": r.id,
        "kind": r.kind,
        "status": r.status,
        "error": r.error,
        "keys": dict(r.keys),
        "pred": r.pred,
        "gt": r.gt,
        "n_frames": r.n_frames,
        "scores": {m: r.scores[m] for m in r.metrics if m in r.scores},
        "info": r.info.as_dict() if r.info else None,
        "warnings": list(r.warnings),
        "read_as": r.decision,
    }
    if r.kind == "sequence" and r.ok:
        out["frame_stats"] = {m: summarize(m, r.frame_scores[:, i]).as_dict() for i, m in enumerate(r.metrics)}
        if frames:
            out["frames"] = {m: r.frame_scores[:, i].tolist() for i, m in enumerate(r.metrics)}
    return out


def batch_json(
    results: Sequence[ItemResult],
    summary: RunSummary,
    pairing: Pairing,
    config: Mapping[str, Any],
    version: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The batch report as a strict-JSON-ready dict (see the README for the schema)."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "iqeval", "version": version},
        "config": dict(config),
        "counts": {
            "items": summary.n_items,
            "ok": summary.n_ok,
            "failed": summary.n_failed,
            "frames": summary.n_frames,
            "pred_only": len(pairing.pred_only),
            "gt_only": len(pairing.gt_only),
            "ignored_files": pairing.ignored,
        },
        "summary": {
            "micro": {m: s.as_dict() for m, s in summary.micro.items()},
            "macro": summary.macro,
            "weighted": summary.weighted,
        },
        "keys": {
            key: [
                {
                    "value": g.value,
                    "n_items": g.n_items,
                    "n_failed": g.n_failed,
                    "metrics": {m: s.as_dict() for m, s in g.metrics.items()},
                }
                for g in rows
            ]
            for key, rows in summary.groups.items()
        },
        "items": [item_dict(r) for r in results],
        "pred_only": list(pairing.pred_only),
        "gt_only": list(pairing.gt_only),
        "group_by_unmatched": list(summary.group_by_unmatched),
        "discovery_notes": list(pairing.notes),
    }
    if extra:
        doc.update(extra)
    return _clean(doc)


def csv_float(value: float | None) -> str:
    """Full precision that round-trips through float(); inf as "inf"."""
    if value is None:
        return ""
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def items_csv(results: Sequence[ItemResult], metrics: Sequence[str], key_names: Sequence[str]) -> str:
    """One row per item."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "id",
            "kind",
            "status",
            *key_names,
            *metrics,
            "n_frames",
            "width",
            "height",
            "data_range",
            "pred",
            "gt",
            "error",
            "read_as",
        ]
    )
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


def frames_csv(results: Sequence[ItemResult], metrics: Sequence[str]) -> str:
    """One row per frame of every sequence item (a still image is not a frame)."""
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


def format_summary(
    results: Sequence[ItemResult], summary: RunSummary, pairing: Pairing, show_items: bool = False
) -> str:
    """The human summary: items if asked, per-key means, overall means, failures, unmatched files."""
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
        f"{summary.n_items} items ({summary.n_ok} ok, {summary.n_failed} failed), {summary.n_frames} sequence frames"
        + (f", {pairing.ignored} non-image files ignored" if pairing.ignored else "")
    )
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- CI reports


def junit_xml(doc: Mapping[str, Any], checks: Sequence[Check]) -> str:
    """JUnit XML: one testcase per item and one per gate condition.

    The layout (testsuites > testsuite > testcase with failure/error children)
    is the one GitLab, Jenkins and the GitHub test reporters read.
    """
    from xml.etree import ElementTree as ET

    metrics = doc["config"]["metrics"]
    floors = {i for c in checks if not c.passed for i in c.offenders}
    root = ET.Element("testsuites", name="iqeval")
    items = ET.SubElement(root, "testsuite", name="iqeval.items")
    failures = errors = 0
    for it in doc["items"]:
        case = ET.SubElement(
            items,
            "testcase",
            classname=printable(f"iqeval.items.{it['keys'].get('group', 'items')}"),
            name=printable(it["id"]),
        )
        case.set("time", "0")
        if it["status"] != "ok":
            errors += 1
            error = printable(str(it["error"]))
            ET.SubElement(case, "error", message=error, type="ItemError").text = error
        elif it["id"] in floors:
            failures += 1
            text = ", ".join(f"{m}={it['scores'][m]}" for m in metrics)
            ET.SubElement(case, "failure", message=f"below an item floor: {text}", type="QualityFloor").text = text
        else:
            ET.SubElement(case, "system-out").text = ", ".join(f"{m}={it['scores'][m]}" for m in metrics)
    items.set("tests", str(len(doc["items"])))
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
    root.set("tests", str(len(doc["items"]) + len(checks)))
    root.set("failures", str(failures + gate_failures))
    root.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def markdown_summary(doc: Mapping[str, Any], checks: Sequence[Check], worst: int = 5) -> str:
    """A compact summary for ``$GITHUB_STEP_SUMMARY`` and merge-request comments."""
    metrics = doc["config"]["metrics"]
    labels = [metric_label(m) for m in metrics]
    c = doc["counts"]
    failed_checks = [k for k in checks if not k.passed]
    status = "failed" if failed_checks or c["failed"] else "passed"
    out = [
        f"### iqeval: {status}",
        "",
        f"{c['items']} items ({c['ok']} ok, {c['failed']} failed), {c['frames']} sequence frames"
        + (f", {c['pred_only']} pred-only and {c['gt_only']} gt-only files" if c["pred_only"] or c["gt_only"] else ""),
        "",
        "| scope | n | " + " | ".join(labels) + " |",
        "|---|---:|" + "---:|" * len(metrics),
    ]

    def cell(m: str, v: Any) -> str:
        return format_score(m, float(v))

    micro = doc["summary"]["micro"]
    out.append(
        f"| **overall** | {micro[metrics[0]]['n']} | " + " | ".join(cell(m, micro[m]["mean"]) for m in metrics) + " |"
    )
    for key, rows in doc["keys"].items():
        for r in rows:
            n = r["metrics"][metrics[0]]["n"]
            out.append(
                f"| {md_text(key)}={md_text(r['value'])} | {n} | "
                + " | ".join(cell(m, r["metrics"][m]["mean"]) if r["metrics"][m]["n"] else "-" for m in metrics)
                + " |"
            )
    if checks:
        out += ["", "| gate | result |", "|---|---|"]
        out += [f"| {md_text(k.name)} | {'pass' if k.passed else '**FAIL**: ' + md_text(k.message)} |" for k in checks]
    read_as: dict[str, list[str]] = {}
    for i in doc["items"]:
        read_as.setdefault(i.get("read_as") or i["kind"], []).append(i["id"])
    if any(k not in ("image", "video") for k in read_as):
        out += ["", "<details><summary>how items were read</summary>", ""]
        out += [
            f"- {md_text(how)}: {len(ids)} item{'s' if len(ids) != 1 else ''} (first: {md_text(ids[0])})"
            for how, ids in read_as.items()
        ]
        out += ["", "</details>"]
    failed = [i for i in doc["items"] if i["status"] != "ok"]
    if failed:
        out += ["", "<details><summary>failed items</summary>", ""]
        out += [f"- {md_text(i['id'])}: {md_text(str(i['error']))}" for i in failed]
        out += ["", "</details>"]
    m0 = metrics[0]
    ok = [i for i in doc["items"] if i["status"] == "ok"]
    if ok and worst:
        ranked = sorted(ok, key=lambda i: float(i["scores"][m0]), reverse=not METRICS[m0].higher_is_better)[:worst]
        out += ["", f"<details><summary>worst {len(ranked)} items by {METRICS[m0].label}</summary>", ""]
        out += [
            f"- {md_text(i['id'])}: " + ", ".join(f"{METRICS[m].label} {cell(m, i['scores'][m])}" for m in metrics)
            for i in ranked
        ]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"
