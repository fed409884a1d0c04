"""``iqeval diff``'s text: aligned columns, drops ranked within each metric, a change on every row."""

from __future__ import annotations

from iqeval.report import format_changes
from iqeval.results import Change


def _columns(line: str) -> list[int]:
    """The right edge of each whitespace-separated cell."""
    edges, inside = [], False
    for i, ch in enumerate(line + " "):
        if ch != " " and not inside:
            inside = True
        elif ch == " " and inside:
            inside = False
            edges.append(i)
    return edges


def test_columns_are_aligned_and_never_run_together():
    changes = [
        Change("overall", "ssim", 0.790974, 0.791786123),
        Change("group=a-rather-long-group-name-indeed", "psnr", 30.0, 29.5),
        Change("overall", "mse", 12345.678, 0.5),
    ]
    lines = format_changes(changes, {}).splitlines()
    assert lines[0].split() == ["scope", "metric", "baseline", "new", "change"]
    assert "0.790974+0.000812" not in "".join(lines)  # 0.1 printed the change glued to the value
    widths = {len(_columns(line)) for line in lines[:4]}
    assert widths == {5}
    edges = [_columns(line)[1:] for line in lines[:4]]  # every column but the left-aligned scope
    assert all(e == edges[0] for e in edges)
    assert lines[1].split()[-1] == "+0.000812123"


def test_item_drops_are_ranked_within_each_metric():
    changes = [Change(f"item i{k}", "mse", 1.0, 1000.0 + k) for k in range(5)]
    changes += [Change("item p1", "psnr", 30.0, 29.0), Change("item p2", "psnr", 30.0, 29.9)]
    text = format_changes(changes, {"psnr": 0.5}, limit=1)
    assert "largest item drops in MSE (1 of 5):" in text
    assert "largest item drops in PSNR (1 of 2):" in text  # not pushed out by the MSE drops
    psnr_rows = text.split("largest item drops in PSNR (1 of 2):\n")[1].splitlines()
    assert psnr_rows[0].split() == ["item", "baseline", "new", "change"]
    assert psnr_rows[1].split() == ["p1", "30.0000", "29.0000", "-1", "REGRESSION"]


def test_words_agree_with_their_numbers(tmp_path, write_png, rgb):
    import xml.etree.ElementTree as ET

    from click.testing import CliRunner

    from iqeval.cli import cli

    from .conftest import noisy

    write_png("gt/a.png", rgb)
    write_png("pred/a.png", noisy(rgb, 30))
    out = tmp_path / "j.xml"
    md = tmp_path / "s.md"
    args = [
        "compare",
        str(tmp_path / "pred"),
        str(tmp_path / "gt"),
        "--item-floor",
        "psnr=40",
        "--fail-under",
        "ssim=0.1",
    ]
    result = CliRunner().invoke(cli, [*args, "--junit", str(out), "--markdown", str(md), "-q"])
    assert result.exit_code == 4
    assert "Gate failed: psnr >= 40 (every item): 1 item below the floor, worst first: a (" in result.stderr
    failure = ET.parse(out).getroot().find(".//testcase[@name='a']/failure")
    assert failure is not None and failure.get("message", "").startswith("below psnr >= 40 (every item): ssim=")
    text = md.read_text()
    assert "| psnr &gt;= 40 (every item) | **FAIL**: 1 item below" not in text  # no escaping of > needed
    assert "| psnr >= 40 (every item) | **FAIL**: 1 item below the floor, worst first: a (" in text  # name said once
    help_text = CliRunner().invoke(cli, ["compare", "--help"]).output
    assert "Exit codes: 0 every item scored" in help_text and "143 terminated (SIGTERM)" in help_text
