"""Formatting of results: text, JSON and CSV. No other module formats numbers."""

from __future__ import annotations

import json
import math
from typing import Any

from .core import PairResult
from .metrics import METRICS


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


def format_score(metric: str, value: float) -> str:
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
        f"pred        {result.pred}",
        f"gt          {result.gt}",
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
