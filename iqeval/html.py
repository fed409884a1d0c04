"""A self-contained HTML report: no network access, everything inlined.

Plots are inline SVG drawn here; the item table is rendered by a small inline
script from embedded JSON, paged, so a 10,000-item report stays responsive;
thumbnails (prediction, ground truth, SSIM map) are data URIs for the worst
items only.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .io import encode_image
from .maps import Visual, colorize
from .metrics import METRICS
from .report import format_score, metric_label, printable, worst_items
from .results import Check, ItemResult, Run, json_value
from .stats import Summary, plural

STAT_COLUMNS = ("n", "n_inf", "mean", "std", "min", "p05", "median", "p95", "max")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:16px 24px}header h1{margin:0;font-size:20px}
header .status{font-size:13px;opacity:.85}
main{padding:8px 24px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e1e4ea;border-radius:6px;padding:12px 16px;margin:16px 0}
h2{font-size:16px;margin:4px 0 10px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 8px;border-bottom:1px solid #eef0f3;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}#config td{text-align:left}
th{background:#f0f2f5;font-weight:600}
#items th{cursor:pointer;user-select:none}#items th.sorted-asc::after{content:" \\25B2"}#items th.sorted-desc::after{content:" \\25BC"}
tr.error td{color:#b3261e}
.plots{display:flex;flex-wrap:wrap;gap:16px}.plot{font-size:12px}
.worst{display:flex;gap:10px;align-items:flex-start;margin:10px 0;flex-wrap:wrap}
.worst figure{margin:0;text-align:center;font-size:12px}.worst img{display:block;max-width:256px;border:1px solid #ccd}
.muted{color:#667085;font-size:12px}input#filter{padding:4px 8px;width:280px}
#js-errors:empty{display:none}#js-errors{background:#fdecea;color:#b3261e;padding:8px;border-radius:4px}
.pager button{margin:0 4px}
.mv-row{display:flex;gap:10px;flex-wrap:wrap;align-items:flex-start;margin:8px 0 18px}
.mv-row figure{margin:0;text-align:center;font-size:12px}.mv-row img{display:block;max-width:220px;border:1px solid #ccd}
.mv-thumb{cursor:zoom-in}td.best{font-weight:700}
#viewer{position:fixed;inset:0;background:rgba(20,24,33,.92);display:none;z-index:10;padding:16px;overflow:auto}
#viewer.open{display:block}#viewer .bar{color:#fff;margin-bottom:8px}#viewer .bar button{margin-left:8px}
#viewer .panes{display:flex;gap:10px;flex-wrap:wrap}
#viewer .pane{width:360px;height:360px;overflow:hidden;position:relative;background:#000;cursor:grab}
#viewer .pane img{position:absolute;left:0;top:0;transform-origin:0 0;image-rendering:pixelated;user-select:none}
#viewer .pane span{position:absolute;left:4px;top:4px;color:#fff;background:rgba(0,0,0,.6);font-size:12px;padding:1px 4px;z-index:1}
"""

SCRIPT = r"""
(function(){
  var errors=document.getElementById('js-errors');
  function record(msg){var li=document.createElement('div');li.textContent=msg;errors.appendChild(li);}
  window.addEventListener('error',function(e){record('error: '+e.message);});
  var origError=console.error;console.error=function(){record('console.error: '+Array.prototype.join.call(arguments,' '));origError.apply(console,arguments);};
  var data=JSON.parse(document.getElementById('items-data').textContent);
  data.rows.forEach(function(r,i){Object.defineProperty(r,'__row',{value:i});});
  var cols=data.columns, rows=data.rows, pageSize=100, page=0, sortCol=0, sortDir=1, view=rows.slice();
  var table=document.getElementById('items'), tbody=table.querySelector('tbody');
  var filter=document.getElementById('filter'), info=document.getElementById('items-info');
  function num(v){if(v==='inf')return Infinity;if(v==='-inf')return -Infinity;if(v==='nan'||v===null||v==='')return NaN;return Number(v);}
  function apply(){
    var q=filter.value.toLowerCase();
    view=rows.filter(function(r){return !q||r.join(' ').toLowerCase().indexOf(q)>=0;});
    var numeric=data.numeric[sortCol];
    view.sort(function(a,b){var x=a[sortCol],y=b[sortCol];
      if(numeric){x=num(x);y=num(y);if(isNaN(x))return 1;if(isNaN(y))return -1;return x===y?0:(x<y?-sortDir:sortDir);}
      x=String(x);y=String(y);return x===y?0:(x<y?-sortDir:sortDir);});
    page=Math.min(page,Math.max(0,Math.ceil(view.length/pageSize)-1));render();}
  function render(){
    tbody.textContent='';
    view.slice(page*pageSize,(page+1)*pageSize).forEach(function(r){
      var tr=document.createElement('tr');if(r[data.statusIndex]!=='ok')tr.className='error';
      var shown=data.text?data.text[r.__row]:null;
      r.forEach(function(v,i){var td=document.createElement('td');td.textContent=shown&&shown[i]!==null?shown[i]:(v===null?'':String(v));tr.appendChild(td);});
      tbody.appendChild(tr);});
    var pages=Math.max(1,Math.ceil(view.length/pageSize));
    info.textContent=view.length+' of '+rows.length+' items, page '+(page+1)+' of '+pages;
    Array.prototype.forEach.call(table.querySelectorAll('th'),function(th,i){th.className=i===sortCol?(sortDir>0?'sorted-asc':'sorted-desc'):'';});}
  Array.prototype.forEach.call(table.querySelectorAll('th'),function(th,i){th.addEventListener('click',function(){sortDir=(sortCol===i)?-sortDir:1;sortCol=i;apply();});});
  filter.addEventListener('input',function(){page=0;apply();});
  document.getElementById('prev').addEventListener('click',function(){if(page>0){page--;render();}});
  document.getElementById('next').addEventListener('click',function(){if((page+1)*pageSize<view.length){page++;render();}});
  apply();
  // the methods view: one zoom and pan shared by every pane (ground truth and each method)
  var viewer=document.getElementById('viewer'); if(!viewer)return;
  var groups=JSON.parse(document.getElementById('methods-data').textContent).groups;
  var panes=viewer.querySelector('.panes'), title=viewer.querySelector('.title'), view={s:1,x:0,y:0};
  function draw(){Array.prototype.forEach.call(panes.querySelectorAll('img'),function(img){
    img.style.transform='translate('+view.x+'px,'+view.y+'px) scale('+view.s+')';});}
  function open(g){var group=groups[g];panes.textContent='';title.textContent=group.id+' (wheel: zoom, drag: pan)';
    group.panes.forEach(function(p){var d=document.createElement('div');d.className='pane';
      var l=document.createElement('span');l.textContent=p.label;var img=document.createElement('img');img.src=p.uri;img.alt=p.label;
      d.appendChild(l);d.appendChild(img);panes.appendChild(d);});
    view={s:360/Math.max(group.width,group.height),x:0,y:0};draw();viewer.className='open';}
  Array.prototype.forEach.call(document.querySelectorAll('.mv-thumb'),function(t){
    t.addEventListener('click',function(){open(Number(t.getAttribute('data-group')));});});
  panes.addEventListener('wheel',function(e){e.preventDefault();var pane=e.target.closest('.pane');if(!pane)return;
    var r=pane.getBoundingClientRect(),cx=e.clientX-r.left,cy=e.clientY-r.top,f=e.deltaY<0?1.25:0.8;
    view.x=cx-(cx-view.x)*f;view.y=cy-(cy-view.y)*f;view.s*=f;draw();},{passive:false});
  var drag=null;
  panes.addEventListener('mousedown',function(e){drag={x:e.clientX-view.x,y:e.clientY-view.y};e.preventDefault();});
  window.addEventListener('mousemove',function(e){if(drag){view.x=e.clientX-drag.x;view.y=e.clientY-drag.y;draw();}});
  window.addEventListener('mouseup',function(){drag=null;});
  viewer.querySelector('.close').addEventListener('click',function(){viewer.className='';});
  window.addEventListener('keydown',function(e){if(e.key==='Escape')viewer.className='';});
})();
"""


def _plain(value: Any) -> str:
    """A setting as people read it: no JSON quotes or brackets."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value) or "-"
    return str(value)


# settings that matter only for some metrics, or only for a luma colour mode
_LUMA_ONLY = ("y_rounding", "gray_as_y")


def relevant_settings(run: Run) -> dict[str, Any]:
    """The settings that shaped the metrics this run computed (SSIM's window only when SSIM was computed)."""
    metrics = set(run.metrics)
    owned: dict[str, set[str]] = {}
    for name, m in METRICS.items():
        for opt in m.options:
            owned.setdefault(opt, set()).add(name)
    colours = {run.settings.get("color"), run.settings.get("psnr_color")}
    out = {}
    for key, value in run.settings.items():
        if key in owned and not owned[key] & metrics:
            continue
        if key in _LUMA_ONLY and not colours & {"y", "yiq"}:
            continue
        out[key] = value
    return out


def _e(value: Any) -> str:
    return html.escape(printable(str(value)), quote=True)


def embed_json(data: Any) -> str:
    """JSON for a ``<script type="application/json">`` block that no text in it can end or alter.

    ``<``, ``>`` and ``&`` become ``\\u003c``, ``\\u003e`` and ``\\u0026``, so a file
    named ``<!--<script>.png`` stays a string (the HTML parser sees no tag).
    """
    text = json.dumps(data, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _num(metric: str | None, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return format_score(metric, float(value))


def _png_uri(image: np.ndarray, max_side: int = 256) -> str:
    from PIL import Image

    im = Image.fromarray(image)
    im.thumbnail((max_side, max_side))
    return "data:image/png;base64," + base64.b64encode(encode_image(np.asarray(im))).decode("ascii")


def _histogram(metric: str, values: Sequence[float], n_inf: int, width: int = 320, height: int = 150) -> str:
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    title = f"{metric_label(metric)}: {len(values)} items" + (f", {n_inf} inf (not drawn)" if n_inf else "")
    if finite.size == 0:
        return (
            f'<figure class="plot"><figcaption>{_e(title)}</figcaption><p class="muted">no finite values</p></figure>'
        )
    lo, hi = float(finite.min()), float(finite.max())
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(finite, bins=min(30, max(5, finite.size)), range=(lo, hi))
    top = max(int(counts.max()), 1)
    pw, ph = width - 40, height - 30
    bw = pw / len(counts)
    bars = "".join(
        f'<rect x="{30 + i * bw:.1f}" y="{5 + ph - c / top * ph:.1f}" width="{max(bw - 1, 1):.1f}" height="{c / top * ph:.1f}" fill="#3b6fb6"><title>{_num(metric, edges[i])} to {_num(metric, edges[i + 1])}: {c}</title></rect>'
        for i, c in enumerate(counts)
    )
    axis = (
        f'<line x1="30" y1="{5 + ph}" x2="{30 + pw}" y2="{5 + ph}" stroke="#667085"/>'
        f'<text x="30" y="{height - 8}" font-size="10">{_e(_num(metric, lo))}</text>'
        f'<text x="{30 + pw}" y="{height - 8}" font-size="10" text-anchor="end">{_e(_num(metric, hi))}</text>'
        f'<text x="26" y="12" font-size="10" text-anchor="end">{top}</text>'
    )
    svg = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">{bars}{axis}</svg>'
    return f'<figure class="plot"><figcaption>{_e(title)}</figcaption>{svg}</figure>'


def frame_labels(item: ItemResult) -> list[str]:
    """How people name a sequence's frames: the numbers of a frame folder's files, else 0, 1, 2, ..."""
    source = item.gt_source if item.gt_source is not None and item.gt_source.kind == "frames" else item.pred_source
    if source is not None and source.kind == "frames" and len(source.frames) >= item.n_frames:
        return [_frame_number(p.stem) for p in source.frames[: item.n_frames]]
    return [str(i) for i in range(item.n_frames)]


def _frame_number(stem: str) -> str:
    digits = re.search(r"(\d+)$", stem)
    return str(int(digits.group(1))) if digits else stem


def _curve(item: ItemResult, metric: str, width: int = 340, height: int = 150) -> str:
    values = [float(v) for v in item.frame_scores[:, item.metrics.index(metric)]]
    finite = [v for v in values if math.isfinite(v)]
    caption = f"{item.id}: {metric_label(metric)} per frame ({len(values)} frames)"
    if not finite:
        return (
            f'<figure class="plot"><figcaption>{_e(caption)}</figcaption><p class="muted">no finite values</p></figure>'
        )
    lo, hi = min(finite), max(finite)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    left, top, bottom = 64, 8, 36  # room for the value ticks on the left and the frame ticks below
    pw, ph = width - left - 12, height - top - bottom
    n = max(len(values) - 1, 1)

    def x(i: float) -> float:
        return left + i / n * pw

    def y(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph

    step = max(1, len(values) // 1000)  # at most ~1000 points per curve
    pts = " ".join(f"{x(i):.1f},{y(v if math.isfinite(v) else hi):.1f}" for i, v in list(enumerate(values))[::step])
    labels = frame_labels(item)
    ticks = ""
    for v in (lo, (lo + hi) / 2, hi):
        ticks += (
            f'<line x1="{left - 4}" y1="{y(v):.1f}" x2="{left}" y2="{y(v):.1f}" stroke="#667085"/>'
            f'<text x="{left - 6}" y="{y(v) + 3:.1f}" font-size="10" text-anchor="end">{_e(_num(metric, v))}</text>'
        )
    for i in sorted({0, (len(values) - 1) // 2, len(values) - 1}):
        ticks += (
            f'<line x1="{x(i):.1f}" y1="{top + ph}" x2="{x(i):.1f}" y2="{top + ph + 4}" stroke="#667085"/>'
            f'<text x="{x(i):.1f}" y="{top + ph + 15}" font-size="10" text-anchor="middle">{_e(labels[i])}</text>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="#667085"/>'
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#667085"/>{ticks}'
        f'<polyline points="{pts}" fill="none" stroke="#3b6fb6" stroke-width="1.2"/>'
        f'<text x="{left + pw / 2:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">frame</text>'
        f'<text x="12" y="{top + ph / 2:.1f}" font-size="10" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + ph / 2:.1f})">{_e(metric_label(metric))}</text></svg>'
    )
    return f'<figure class="plot"><figcaption>{_e(caption)}</figcaption>{svg}</figure>'


def _stats_table(rows: Sequence[tuple[str, str, Summary]]) -> str:
    head = "<tr><th>scope</th><th>metric</th>" + "".join(f"<th>{c}</th>" for c in STAT_COLUMNS) + "</tr>"
    body = "".join(
        f"<tr><td>{_e(scope)}</td><td>{_e(METRICS[m].label)}</td>"
        + "".join(f"<td>{_e(_num(None if c in ('n', 'n_inf') else m, getattr(stats, c)))}</td>" for c in STAT_COLUMNS)
        + "</tr>"
        for scope, m, stats in rows
    )
    return f"<table>{head}{body}</table>"


CROP = 512  # side of the full-resolution crops the methods view zooms into


def _crop_box(v: Visual) -> tuple[slice, slice]:
    """A CROP x CROP window around the worst region of the SSIM map (the whole image when smaller)."""
    h, w = v.pred.shape[:2]
    ch, cw = min(CROP, h), min(CROP, w)
    sm = v.ssim
    # the SSIM map may be cropped by the border: scale its worst point back onto the image
    iy, ix = np.unravel_index(int(np.argmin(sm)), sm.shape)
    cy, cx = int(iy * h / max(sm.shape[0], 1)), int(ix * w / max(sm.shape[1], 1))
    y0 = min(max(0, cy - ch // 2), h - ch)
    x0 = min(max(0, cx - cw // 2), w - cw)
    return slice(y0, y0 + ch), slice(x0, x0 + cw)


def _full_uri(image: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_image(np.ascontiguousarray(image))).decode("ascii")


def _scale_bar(values: np.ndarray, title: str, vmin: float, vmax: float, cmap: str) -> str:
    from .maps import render

    return _png_uri(render(values, title, vmin, vmax, cmap), max_side=300)


def _methods_section(run: Run, visuals: Sequence[tuple[ItemResult, Visual]]) -> str:
    """The table of methods, their paired differences, and each hard item with every method side by side."""
    from .methods import best_in_columns, by_method, table_cells

    methods, datasets, cells = table_cells(run)
    metrics = list(run.metrics)
    best = best_in_columns(methods, datasets, metrics, cells)
    head = (
        "<tr><th>method</th>"
        + "".join(f"<th>{_e(d)} {_e(metric_label(k))}</th>" for d in datasets for k in metrics)
        + "</tr>"
    )
    body = ""
    for m in methods:
        body += f"<tr><td>{_e(m)}</td>"
        for d in datasets:
            for k in metrics:
                mean, n = cells[(m, d, k)]
                cls = ' class="best"' if (m, d, k) in best else ""
                body += f"<td{cls}>{_e(format_score(k, mean) if n else '-')}</td>"
        body += "</tr>"
    parts = [f'<h2>Methods</h2><table id="method-table">{head}{body}</table>']
    if run.paired:
        rows = "".join(
            f"<tr><td>{_e(p.b)} - {_e(p.a)}</td><td>{_e(METRICS[p.metric].label)}</td><td>{p.n}</td>"
            f"<td>{p.mean_diff:+.6g}</td><td>[{p.ci_low:+.4g}, {p.ci_high:+.4g}]</td><td>{p.p_value:.3g}</td>"
            f"<td>{p.wins}/{p.ties}/{p.losses}</td></tr>"
            for p in run.paired
        )
        parts.append(
            "<h3>Paired differences (items both methods scored; 95% bootstrap interval, seed 0, 10000 resamples; "
            "Wilcoxon signed-rank)</h3><table><tr><th>b - a</th><th>metric</th><th>n</th><th>mean diff</th>"
            f"<th>95% CI</th><th>p</th><th>win/tie/loss</th></tr>{rows}</table>"
        )
    order = list(by_method(run))
    stems: dict[str, list[tuple[ItemResult, Visual]]] = {}
    for item, v in visuals:
        stems.setdefault(item.id.split("/", 1)[1], []).append((item, v))
    groups = []
    blocks = []
    for g, (stem, members) in enumerate(stems.items()):
        members.sort(key=lambda iv: order.index(iv[0].keys["method"]) if iv[0].keys.get("method") in order else 0)
        ys, xs = _crop_box(members[0][1])
        gt = members[0][1].gt
        panes = [{"label": "ground truth", "uri": _full_uri(gt[ys, xs])}]
        figures = [
            f'<figure><img class="mv-thumb" data-group="{g}" alt="ground truth" src="{_png_uri(gt)}">'
            "<figcaption>ground truth</figcaption></figure>"
        ]
        maps = []
        for item, v in members:
            method = item.keys.get("method", "")
            score = ", ".join(f"{METRICS[m].label} {format_score(m, item.scores[m])}" for m in metrics)
            panes.append({"label": method, "uri": _full_uri(v.pred[ys, xs])})
            figures.append(
                f'<figure><img class="mv-thumb" data-group="{g}" alt="{_e(method)}" src="{_png_uri(v.pred)}">'
                f"<figcaption>{_e(method)}<br>{_e(score)}</figcaption></figure>"
            )
            top = float(v.error.max()) or 1.0
            maps.append(
                f'<figure><img alt="{_e(method)} SSIM map" src="{_scale_bar(v.ssim, f"{method}: SSIM map", 0.0, 1.0, "viridis")}">'
                f"<figcaption>{_e(method)}: SSIM map</figcaption></figure>"
                f'<figure><img alt="{_e(method)} error map" src="{_scale_bar(v.error, f"{method}: |pred - gt|", 0.0, top, "inferno")}">'
                f"<figcaption>{_e(method)}: |pred - gt|</figcaption></figure>"
            )
        groups.append(
            {"id": printable(stem), "width": int(xs.stop - xs.start), "height": int(ys.stop - ys.start), "panes": panes}
        )
        blocks.append(
            f'<h3>{_e(stem)}</h3><p class="muted">click an image to compare full-resolution crops, zoomed and panned together</p>'
            f'<div class="mv-row">{"".join(figures)}</div><div class="mv-row">{"".join(maps)}</div>'
        )
    if blocks:
        parts.append(f"<h2>Items, every method side by side ({len(blocks)})</h2>" + "".join(blocks))
        parts.append(
            '<div id="viewer"><div class="bar"><span class="title"></span><button class="close" type="button">close</button>'
            '</div><div class="panes"></div></div>'
            f'<script type="application/json" id="methods-data">{embed_json({"groups": groups})}</script>'
        )
    return f'<section id="methods">{"".join(parts)}</section>'


def html_report(
    run: Run | Mapping[str, Any],
    checks: Sequence[Check] | None = None,
    visuals: Sequence[tuple[ItemResult, Visual]] = (),
    curves: int = 24,
) -> str:
    """The whole page as one string (``run.checks`` unless ``checks`` is given)."""
    if not isinstance(run, Run):
        run = Run.from_doc(run)
    checks = run.checks if checks is None else checks
    metrics = list(run.metrics)
    s = run.summary
    status = "failed" if any(not k.passed for k in checks) or s.n_failed else "passed"
    parts: list[str] = []

    config_rows = "".join(
        f"<tr><td>{_e(k)}</td><td>{_e(_plain(v))}</td></tr>" for k, v in relevant_settings(run).items()
    )
    parts.append(
        f'<section id="config"><h2>Configuration</h2><table>{config_rows}</table><p class="muted">iqeval {_e(run.version)}</p></section>'
    )

    summary_rows = [("overall (micro)", m, s.micro[m]) for m in metrics]
    for key, rows in s.groups.items():
        summary_rows += [(f"{key}={g.value}", m, g.metrics[m]) for g in rows for m in metrics]
    extra = ""
    for view, table in (("macro", s.macro), ("weighted", s.weighted)):
        for key, values in table.items():
            extra += (
                f"<tr><td>overall ({view} by {_e(key)})</td>"
                + "".join(f"<td>{_e(format_score(m, values[m]))}</td>" for m in metrics)
                + "</tr>"
            )
    if extra:
        extra = (
            "<h2>Macro and weighted overalls</h2><table><tr><th>view</th>"
            + "".join(f"<th>{_e(metric_label(m))}</th>" for m in metrics)
            + f"</tr>{extra}</table>"
        )
    gate = ""
    if checks:
        gate = (
            "<h2>Gate</h2><table><tr><th>condition</th><th>result</th></tr>"
            + "".join(
                f"<tr><td>{_e(k.name)}</td><td>{'pass' if k.passed else _e('FAIL: ' + k.message)}</td></tr>"
                for k in checks
            )
            + "</table>"
        )
    parts.append(f'<section id="summary"><h2>Summary</h2>{_stats_table(summary_rows)}{extra}{gate}</section>')

    ok_items = [r for r in run.items if r.ok]
    if len(ok_items) > 1:  # one item has no distribution to draw
        hists = "".join(_histogram(m, [r.scores[m] for r in ok_items], s.micro[m].n_inf) for m in metrics)
        parts.append(
            f'<section id="distributions"><h2>Distribution of item scores</h2><div class="plots">{hists}</div></section>'
        )

    sequences = [r for r in ok_items if r.n_frames]
    if sequences:
        ranked = worst_items(sequences, curves)
        plots = "".join(_curve(r, metrics[0]) for r in ranked)
        note = (
            f'<p class="muted">{len(ranked)} of {len(sequences)} sequences, worst first.</p>'
            if len(sequences) > len(ranked)
            else ""
        )
        parts.append(f'<section id="frames"><h2>Per-frame scores</h2>{note}<div class="plots">{plots}</div></section>')

    methods_view = len({r.keys.get("method") for r in run.items} - {None}) > 1
    if methods_view:
        parts.append(_methods_section(run, visuals))
    if visuals and not methods_view:
        blocks = []
        for item, v in visuals:
            if v.frame is not None:  # a sequence's worst frame: its own values, named as its file is
                frame = f", frame {frame_labels(item)[v.frame]} (its worst)"
                values = dict(zip(metrics, item.frame_scores[v.frame], strict=True))
            else:
                frame, values = "", dict(item.scores)
            scores = ", ".join(f"{METRICS[m].label} {format_score(m, values[m])}" for m in metrics)
            ssim_img = colorize(v.ssim, 0.0, 1.0, "viridis")
            blocks.append(
                f'<div class="worst-item"><h3>{_e(item.id)}{_e(frame)}</h3><p class="muted">{_e(scores)}</p><div class="worst">'
                f'<figure><img alt="prediction" src="{_png_uri(v.pred)}"><figcaption>prediction</figcaption></figure>'
                f'<figure><img alt="ground truth" src="{_png_uri(v.gt)}"><figcaption>ground truth</figcaption></figure>'
                f'<figure><img alt="SSIM map" src="{_png_uri(ssim_img)}"><figcaption>SSIM map (0 to 1)</figcaption></figure>'
                "</div></div>"
            )
        parts.append(f'<section id="worst"><h2>Worst items ({len(visuals)})</h2>{"".join(blocks)}</section>')

    key_names = sorted({k for r in run.items for k in r.keys})
    columns = ["id", "kind", "status", *key_names, *metrics, "n_frames", "read_as", "error"]
    numeric = [False, False, False, *[False] * len(key_names), *[True] * len(metrics), True, False, False]
    table_rows = []
    table_text = []
    for r in run.items:
        cells = [r.scores.get(m) for m in metrics]
        table_rows.append(
            [
                printable(r.id),
                r.kind,
                r.status,
                *[printable(r.keys.get(k, "")) for k in key_names],
                *[None if v is None else json_value(v) for v in cells],
                r.n_frames,
                printable(r.decision),
                printable(r.error or ""),
            ]
        )
        # what the table shows: formatted here, by the same rule as every other report
        shown: list[str | None] = [None] * (3 + len(key_names))
        shown += [None if v is None else format_score(m, v) for m, v in zip(metrics, cells, strict=True)]
        table_text.append([*shown, None, None, None])
    data = embed_json(
        {"columns": columns, "numeric": numeric, "rows": table_rows, "text": table_text, "statusIndex": 2}
    )
    head = "".join(f"<th>{_e(metric_label(col) if col in METRICS else col)}</th>" for col in columns)
    parts.append(
        '<section id="items-section"><h2>Items</h2>'
        '<p><input id="filter" type="search" placeholder="filter by id, key, status or error"> '
        '<span class="pager"><button id="prev" type="button">previous</button><button id="next" type="button">next</button></span> '
        '<span id="items-info" class="muted"></span></p>'
        f'<table id="items"><thead><tr>{head}</tr></thead><tbody></tbody></table>'
        f'<script type="application/json" id="items-data">{data}</script></section>'
    )
    lists = ""
    for name, listed in (
        ("pred_only", run.pred_only),
        ("gt_only", run.gt_only),
        ("group_by_unmatched", s.group_by_unmatched),
        ("discovery_notes", run.discovery_notes),
    ):
        if listed:
            lists += (
                f"<h3>{_e(name)} ({len(listed)})</h3><ul>"
                + "".join(f"<li>{_e(x)}</li>" for x in listed[:200])
                + "</ul>"
            )
    if lists:
        parts.append(f'<section id="unmatched"><h2>Unmatched</h2>{lists}</section>')

    counts = f"{plural(s.n_items, 'item')} ({s.n_ok} ok, {s.n_failed} failed), {plural(s.n_frames, 'sequence frame')}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
        f"<title>iqeval report: {status}</title><style>{CSS}</style></head><body>"
        f'<header><h1>iqeval report: {status}</h1><div class="status">{_e(counts)}</div></header>'
        f'<main><div id="js-errors"></div>{"".join(parts)}</main><script>{SCRIPT}</script></body></html>\n'
    )
