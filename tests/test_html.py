"""The HTML report: structure (always) and a real browser (when Chromium is there)."""

from __future__ import annotations

import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iqeval.cli import cli
from iqeval.html import html_report

from .conftest import noisy

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: dict[str, str] = {}
        self._script: str | None = None

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        self.tags.append((tag, d))
        if tag == "script":
            self._script = d.get("id") or "inline"

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._script:
            self.scripts[self._script] = self.scripts.get(self._script, "") + data


@pytest.fixture
def report(tmp_path, write_png, rgb):
    for i, sigma in enumerate((2, 25, 8, 12)):
        write_png(f"gt/{'ab'[i % 2]}/img{chr(97 + i)}.png", rgb)
        write_png(f"pred/{'ab'[i % 2]}/img{chr(97 + i)}.png", noisy(rgb, sigma, seed=i))
    for i in range(4):
        write_png(f"gt/clips/walk/{i}.png", rgb)
        write_png(f"pred/clips/walk/{i}.png", noisy(rgb, 3 + i, seed=10 + i))
    write_png("gt/a/same.png", rgb)
    write_png("pred/a/same.png", rgb)
    (tmp_path / "pred" / "b" / "broken.png").write_bytes(b"")
    write_png("gt/b/broken.png", rgb)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            str(tmp_path / "pred"),
            str(tmp_path / "gt"),
            "--html",
            str(out),
            "--worst",
            "2",
            "-q",
            "--fail-under",
            "ssim=0.1",
        ],
    )
    assert result.exit_code == 1  # the broken item
    return out


def test_structure(report):
    text = report.read_text()
    parser = Collector()
    parser.feed(text)
    ids = {d.get("id") for _, d in parser.tags}
    assert {"config", "summary", "distributions", "frames", "worst", "items-section", "items", "js-errors"} <= ids
    # self-contained: no address outside the page, and a policy that forbids loading one
    for tag, attrs in parser.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            assert value is None or value.startswith("data:"), (tag, value)
    assert "default-src 'none'" in text
    # thumbnails only for the worst items: prediction, ground truth, SSIM map each
    images = [d for t, d in parser.tags if t == "img"]
    assert len(images) == 2 * 3
    assert all(str(d["src"]).startswith("data:image/png;base64,") for d in images)
    # the item table's data is strict JSON with every item, including the failed one
    data = json.loads(parser.scripts["items-data"], parse_constant=lambda c: pytest.fail(c))
    ids_in_table = [row[0] for row in data["rows"]]
    assert ids_in_table == ["a/imga", "a/imgc", "a/same", "b/broken", "b/imgb", "b/imgd", "clips/walk"]
    row = dict(zip(data["columns"], data["rows"][2], strict=True))
    assert row["psnr"] == "inf" and row["status"] == "ok"
    assert dict(zip(data["columns"], data["rows"][3], strict=True))["status"] == "error"
    # one histogram per metric, one per-frame curve for the sequence
    assert text.count('<figure class="plot">') == 3 + 1
    assert "ssim &gt;= 0.1 (overall)" in text


def test_ten_thousand_items_stay_light():
    n = 10_000
    rng = np.random.default_rng(0)
    items = [
        {
            "id": f"g{i % 10}/item{i:05d}",
            "kind": "image",
            "status": "ok",
            "error": None,
            "keys": {"group": f"g{i % 10}"},
            "pred": "p",
            "gt": "g",
            "n_frames": 0,
            "scores": {"ssim": float(rng.random()), "psnr": float(20 + 20 * rng.random())},
            "info": None,
            "warnings": [],
        }
        for i in range(n)
    ]
    stats = {
        "n": n,
        "n_inf": 0,
        "mean": 0.5,
        "std": 0.1,
        "min": 0.0,
        "max": 1.0,
        "median": 0.5,
        "p05": 0.1,
        "p95": 0.9,
        "mean_finite": 0.5,
        "std_finite": 0.1,
    }
    doc = {
        "config": {"metrics": ["ssim", "psnr"]},
        "tool": {"version": "test"},
        "counts": {"items": n, "ok": n, "failed": 0, "frames": 0, "pred_only": 0, "gt_only": 0, "ignored_files": 0},
        "summary": {"micro": {"ssim": stats, "psnr": stats}, "macro": {}, "weighted": {}},
        "keys": {},
        "items": items,
    }
    text = html_report(doc, [], [])
    assert text.count("<tr>") < 100  # rows are drawn by the page, 100 at a time, not written out
    assert len(text) < 2_000_000
    assert "<img" not in text


def _launch(playwright):
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )


def _watch(page) -> list[str]:
    """Collect console errors and warnings, page errors, and any request that leaves the page."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.on(
        "request",
        lambda r: problems.append(f"request: {r.url}") if not r.url.startswith(("file:", "data:")) else None,
    )
    return problems


def test_renders_in_a_real_browser(report):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page()
        problems = _watch(page)
        page.goto(Path(report).as_uri())
        rows = page.locator("#items tbody tr")
        assert rows.count() == 7
        assert rows.nth(0).locator("td").nth(0).inner_text() == "a/imga"
        assert page.locator("#items-info").inner_text() == "7 of 7 items, page 1 of 1"
        assert page.locator("#items tbody tr.error").count() == 1
        # sort by SSIM (click twice: descending), then filter
        header = page.locator("#items th", has_text="SSIM")
        header.click()
        first = rows.nth(0).locator("td").nth(0).inner_text()
        header.click()
        assert rows.nth(0).locator("td").nth(0).inner_text() in ("a/same",)
        assert first != "a/same"
        page.fill("#filter", "clips")
        assert rows.count() == 1
        assert page.locator("#items-info").inner_text() == "1 of 7 items, page 1 of 1"
        assert page.locator("#worst img").count() == 6
        assert all(page.locator("#worst img").nth(i).evaluate("e => e.naturalWidth > 0") for i in range(6))
        assert page.locator("#js-errors").inner_text() == ""
        browser.close()
    assert problems == []


def test_ten_thousand_rows_page_in_a_real_browser(tmp_path, write_png, rgb):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    rows = [[f"item{i:05d}", "image", "ok", "g", (i % 997) / 997, 30.0 + i % 7, 1.0 + i, 0, ""] for i in range(10_000)]
    data = {
        "columns": ["id", "kind", "status", "group", "ssim", "psnr", "mse", "n_frames", "error"],
        "numeric": [False] * 4 + [True] * 4 + [False],
        "rows": rows,
        "statusIndex": 2,
    }
    text = html_report(
        {
            "config": {"metrics": ["ssim"]},
            "tool": {"version": "t"},
            "counts": {"items": 1, "ok": 1, "failed": 0, "frames": 0},
            "summary": {
                "micro": {
                    "ssim": {
                        "n": 1,
                        "n_inf": 0,
                        "mean": 0.5,
                        "std": 0.0,
                        "min": 0.5,
                        "max": 0.5,
                        "median": 0.5,
                        "p05": 0.5,
                        "p95": 0.5,
                    }
                },
                "macro": {},
                "weighted": {},
            },
            "keys": {},
            "items": [
                {
                    "id": "x",
                    "kind": "image",
                    "status": "ok",
                    "error": None,
                    "keys": {},
                    "n_frames": 0,
                    "scores": {"ssim": 0.5},
                }
            ],
        },
        [],
        [],
    )
    text = re.sub(
        r'(<script type="application/json" id="items-data">).*?(</script>)',
        lambda m: m.group(1) + json.dumps(data) + m.group(2),
        text,
        flags=re.S,
    )
    page_file = tmp_path / "big.html"
    page_file.write_text(text)
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page()
        page.goto(page_file.as_uri())
        assert page.locator("#items tbody tr").count() == 100
        assert page.locator("#items-info").inner_text() == "10000 of 10000 items, page 1 of 100"
        page.click("#next")
        assert page.locator("#items tbody tr").nth(0).locator("td").nth(0).inner_text() == "item00100"
        assert not math.isnan(float(page.locator("#items tbody tr").nth(0).locator("td").nth(4).inner_text()))
        browser.close()


def test_hostile_names_stay_inert_in_a_real_browser(tmp_path):
    # 0.1 embedded the item table as JSON with only "</" escaped: "<!--<script>" blanked it
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    import imageio.v3 as iio
    from skimage import data as skdata

    from iqeval.cli import cli

    names = ["<!--<script>", "</script><script>window.pwned=1</script>", "<img src=x onerror=pwned=1>"]
    img = skdata.camera()[:24, :24]
    for side in ("pred", "gt"):
        for name in names:
            path = tmp_path / side / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            iio.imwrite(path, img)
    result = CliRunner().invoke(
        cli, ["compare", str(tmp_path / "pred"), str(tmp_path / "gt"), "--html", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 0, result.output
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.goto((tmp_path / "r.html").as_uri())
        ids = sorted(page.locator("#items tbody tr").nth(i).locator("td").nth(0).inner_text() for i in range(3))
        assert ids == sorted(names)
        assert page.evaluate("() => window.pwned === undefined")
        assert page.locator("#js-errors").inner_text() == ""
        browser.close()
    assert problems == []


def test_methods_view_zooms_and_pans_every_method_together(tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    import imageio.v3 as iio
    from skimage import data as skdata

    for k, name in enumerate(("baby", "bird")):
        gt = np.roll(skdata.astronaut()[:120, :140], 9 * k, axis=0)
        iio.imwrite(_mk(tmp_path / "gt" / f"{name}.png"), gt)
        for m, sigma in (("bicubic", 14), ("edsr", 5)):
            iio.imwrite(_mk(tmp_path / "out" / m / f"{name}.png"), noisy(gt, sigma, seed=k))
    out = tmp_path / "r.html"
    args = ["compare", "--gt", str(tmp_path / "gt"), "--pred", f"bicubic={tmp_path / 'out/bicubic'}"]
    args += ["--pred", f"edsr={tmp_path / 'out/edsr'}", "--html", str(out), "-q", "-j", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        problems = _watch(page)
        page.goto(out.as_uri())
        assert page.locator("#method-table td.best").count() == 3  # edsr wins every column
        assert page.locator("#viewer").evaluate("e => getComputedStyle(e).display") == "none"
        page.locator(".mv-thumb").nth(1).click()  # a method's thumbnail opens the viewer
        assert page.locator("#viewer").evaluate("e => getComputedStyle(e).display") == "block"
        labels = page.locator("#viewer .pane span").all_inner_texts()
        assert labels == ["ground truth", "bicubic", "edsr"]

        def transforms() -> list[str]:
            return page.evaluate(
                "() => Array.from(document.querySelectorAll('#viewer img')).map(i => i.style.transform)"
            )

        before = transforms()
        box = page.locator("#viewer .pane").nth(2).bounding_box()
        page.mouse.move(box["x"] + 100, box["y"] + 100)
        page.mouse.wheel(0, -400)
        page.wait_for_timeout(100)
        zoomed = transforms()
        assert len(set(zoomed)) == 1 and zoomed != before  # one zoom, shared by every pane
        scale = float(zoomed[0].split("scale(")[1].rstrip(")"))
        assert scale > float(before[0].split("scale(")[1].rstrip(")"))
        page.mouse.down()
        page.mouse.move(box["x"] + 60, box["y"] + 40)
        page.mouse.up()
        panned = transforms()
        assert len(set(panned)) == 1 and panned != zoomed
        page.keyboard.press("Escape")
        assert page.locator("#viewer").evaluate("e => getComputedStyle(e).display") == "none"
        assert page.locator("#js-errors").inner_text() == ""
        browser.close()
    assert problems == []


def _mk(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_curves_start_at_their_axis_and_name_frames_as_the_files_do(tmp_path, write_png, rgb):
    import re as _re

    for i in range(1, 6):
        write_png(f"gt/clip/frame_{i:04d}.png", rgb)
        write_png(f"pred/clip/frame_{i:04d}.png", noisy(rgb, 3 if i != 4 else 30, seed=i))
    out = tmp_path / "r.html"
    args = ["compare", str(tmp_path / "pred"), str(tmp_path / "gt"), "--html", str(out), "--metrics", "psnr", "-q"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    text = out.read_text()
    points = _re.search(r'<polyline points="([^"]+)"', text).group(1).split()
    assert float(points[0].split(",")[0]) == 64.0  # the line starts on the axis, not 34 px left of it
    ticks = _re.findall(r'text-anchor="middle">(\d+)</text>', text)
    assert ticks == ["1", "3", "5"]  # frame_0001.png is frame 1
    assert "clip, frame 4 (its worst)" in text  # the worst frame, with its own value
    worst_psnr = _re.search(r"clip, frame 4 \(its worst\)</h3><p class=\"muted\">PSNR ([0-9.]+)", text).group(1)
    doc_run = CliRunner().invoke(cli, [*args[:3], "--metrics", "psnr", "--json", "-", "-q"])
    frames = json.loads(doc_run.output)["items"][0]["frames"]["psnr"]
    assert worst_psnr == f"{min(frames):.4f}"
    assert 'id="distributions"' not in text  # one item: no histogram
    settings = re.findall(
        r"<tr><td>([a-z_]+)</td><td>([^<]*)</td></tr>", text.split('id="config"')[1].split("</table>")[0]
    )
    names = [k for k, _ in settings]
    assert "ssim_kernel" not in names and "msssim" not in names and "y_rounding" not in names
    assert dict(settings)["metrics"] == "psnr" and dict(settings)["data_range"] == "-"
