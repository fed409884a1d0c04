"""CI gates: thresholds, item floors, baselines, JUnit, Markdown and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

from iqeval.cli import cli
from iqeval.errors import ConfigError
from iqeval.gate import drop, parse_threshold, worse

from .conftest import noisy


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def tree(tmp_path, write_png, rgb):
    # faces: mild noise, nature: heavy noise
    write_png("gt/faces/a.png", rgb)
    write_png("pred/faces/a.png", noisy(rgb, 4, seed=1))
    write_png("gt/faces/b.png", rgb)
    write_png("pred/faces/b.png", noisy(rgb, 6, seed=2))
    write_png("gt/nature/c.png", rgb)
    write_png("pred/nature/c.png", noisy(rgb, 30, seed=3))
    return tmp_path / "pred", tmp_path / "gt"


def report(tree, *args: str) -> dict:
    pred, gt = tree
    result = run("compare", str(pred), str(gt), "--json", "-", *args)
    return json.loads(result.stdout)


def test_parse_threshold():
    assert parse_threshold("ssim=0.92").metric == "ssim"
    t = parse_threshold("psnr[group=faces]=30")
    assert (t.metric, t.key, t.key_value, t.value) == ("psnr", "group", "faces", 30.0)
    with pytest.raises(ConfigError, match="unknown metric 'lpips'"):
        parse_threshold("lpips=0.1")
    with pytest.raises(ConfigError, match=r"cannot parse 'ssim>0\.9'"):
        parse_threshold("ssim>0.9")


def test_direction():
    assert worse("ssim", 0.8, 0.9) and not worse("ssim", 0.95, 0.9)
    assert worse("mse", 120.0, 100.0) and not worse("mse", 80.0, 100.0)
    assert drop("psnr", 30.0, 29.0) == 1.0
    assert drop("mse", 10.0, 12.0) == 2.0
    assert drop("psnr", float("inf"), float("inf")) == 0.0
    assert drop("psnr", float("inf"), 40.0) == float("inf")


def test_fail_under_overall_passes_and_fails(tree):
    pred, gt = tree
    doc = report(tree)
    mean = doc["summary"]["micro"]["ssim"]["mean"]
    ok = run("compare", str(pred), str(gt), "--fail-under", f"ssim={mean - 0.01}")
    assert ok.exit_code == 0
    bad = CliRunner().invoke(
        cli, ["compare", str(pred), str(gt), "--fail-under", f"ssim={mean + 0.01}", "--fail-under", "psnr=1"]
    )
    assert bad.exit_code == 4
    lines = [line for line in bad.stderr.splitlines() if line.startswith("Gate failed")]
    assert lines == [f"Gate failed: ssim >= {mean + 0.01:g} (overall): mean is {mean:.6f}"]


def test_mse_is_lower_is_better(tree):
    pred, gt = tree
    mse = report(tree)["summary"]["micro"]["mse"]["mean"]
    assert run("compare", str(pred), str(gt), "--fail-under", f"mse={mse + 1}").exit_code == 0
    bad = CliRunner().invoke(cli, ["compare", str(pred), str(gt), "--fail-under", f"mse={mse - 1}"])
    assert bad.exit_code == 4
    assert f"Gate failed: mse <= {mse - 1:g} (overall)" in bad.stderr


def test_scoped_threshold(tree):
    pred, gt = tree
    doc = report(tree)
    faces, nature = doc["keys"]["group"]
    limit = (faces["metrics"]["psnr"]["mean"] + nature["metrics"]["psnr"]["mean"]) / 2
    assert run("compare", str(pred), str(gt), "--fail-under", f"psnr[group=faces]={limit}").exit_code == 0
    bad = CliRunner().invoke(cli, ["compare", str(pred), str(gt), "--fail-under", f"psnr[group=*]={limit}"])
    assert bad.exit_code == 4
    failed = [line for line in bad.stderr.splitlines() if line.startswith("Gate failed")]
    assert len(failed) == 1 and "(group=nature)" in failed[0]
    missing = CliRunner().invoke(cli, ["compare", str(pred), str(gt), "--fail-under", "psnr[group=zoo]=1"])
    assert missing.exit_code == 4
    assert "no item has group=zoo" in missing.stderr


def test_item_floor_lists_offenders_worst_first(tree):
    pred, gt = tree
    doc = report(tree)
    scores = {i["id"]: i["scores"]["psnr"] for i in doc["items"]}
    floor = scores["faces/b"] + 0.001  # faces/b and nature/c are below
    bad = CliRunner().invoke(cli, ["compare", str(pred), str(gt), "--item-floor", f"psnr={floor}"])
    assert bad.exit_code == 4
    (line,) = [x for x in bad.stderr.splitlines() if x.startswith("Gate failed")]
    assert line.index("nature/c") < line.index("faces/b")
    assert "2 items below the floor" in line


def test_baseline_regression_detected_and_improvement_not_flagged(tree, tmp_path, write_png, rgb):
    pred, gt = tree
    base = tmp_path / "base.json"
    assert run("compare", str(pred), str(gt), "--json", str(base)).exit_code == 0
    # the model gets worse on faces/a and better on nature/c
    write_png("pred/faces/a.png", noisy(rgb, 12, seed=1))
    write_png("pred/nature/c.png", noisy(rgb, 10, seed=3))
    result = CliRunner().invoke(
        cli,
        ["compare", str(pred), str(gt), "--baseline", str(base), "--max-drop", "psnr=0.1", "--max-drop", "ssim=0.005"],
    )
    assert result.exit_code == 4
    failed = [x for x in result.stderr.splitlines() if x.startswith("Gate failed")]
    assert any("item faces/a" in x and x.startswith("Gate failed: psnr drops at most 0.1") for x in failed)
    assert all("nature/c" not in x for x in failed)
    # the same data against itself passes
    same = tmp_path / "same.json"
    run("compare", str(pred), str(gt), "--json", str(same))
    assert run("compare", str(pred), str(gt), "--baseline", str(same), "--max-drop", "psnr=0").exit_code == 0


def test_diff_command(tree, tmp_path, write_png, rgb):
    pred, gt = tree
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    run("compare", str(pred), str(gt), "--json", str(old))
    write_png("pred/faces/a.png", noisy(rgb, 15, seed=1))
    run("compare", str(pred), str(gt), "--json", str(new))
    result = CliRunner().invoke(cli, ["diff", str(old), str(new), "--max-drop", "psnr=0.5"])
    assert result.exit_code == 4
    assert result.stdout.splitlines()[0].split() == ["scope", "metric", "baseline", "new", "change"]
    assert "faces/a" in result.stdout and "REGRESSION" in result.stdout
    assert "Gate failed: psnr drops at most 0.5 against the baseline: " in result.stderr
    assert CliRunner().invoke(cli, ["diff", str(old), str(old), "--max-drop", "psnr=0"]).exit_code == 0


def test_incompatible_baseline_is_refused(tree, tmp_path):
    pred, gt = tree
    base = tmp_path / "base.json"
    run("compare", str(pred), str(gt), "--json", str(base))
    result = run("compare", str(pred), str(gt), "--color", "y", "--baseline", str(base), "--max-drop", "psnr=1")
    assert result.exit_code == 2
    assert "other settings (color='rgb' vs 'y'); comparing them would be meaningless" in result.output
    (tmp_path / "junk.json").write_text("[1, 2]")
    junk = run("diff", str(tmp_path / "junk.json"), str(base))
    assert junk.exit_code == 2
    assert "not an iqeval batch report" in junk.output


def test_junit_structure(tree, tmp_path):
    pred, gt = tree
    (pred / "faces" / "b.png").write_bytes(b"")
    out = tmp_path / "junit.xml"
    result = run(
        "compare", str(pred), str(gt), "--junit", str(out), "--fail-under", "ssim=0.99", "--item-floor", "psnr=20"
    )
    assert result.exit_code == 1  # a failed item outranks the gate
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    items, gate = root.findall("testsuite")
    assert items.get("name") == "iqeval.items"
    cases = {c.get("name"): c for c in items.findall("testcase")}
    assert set(cases) == {"faces/a", "faces/b", "nature/c"}
    assert cases["faces/b"].find("error") is not None
    assert cases["nature/c"].find("failure") is not None  # under the item floor
    assert cases["faces/a"].find("failure") is None and cases["faces/a"].find("error") is None
    assert (items.get("tests"), items.get("failures"), items.get("errors")) == ("3", "1", "1")
    gate_cases = gate.findall("testcase")
    assert [c.get("name") for c in gate_cases] == ["ssim >= 0.99 (overall)", "psnr >= 20 (every item)"]
    assert all(c.find("failure") is not None for c in gate_cases)
    assert root.get("tests") == "5"


def test_markdown_summary(tree, tmp_path):
    pred, gt = tree
    out = tmp_path / "summary.md"
    assert run("compare", str(pred), str(gt), "--markdown", str(out), "--fail-under", "psnr=1").exit_code == 0
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0] == "### iqeval: passed"
    assert "| scope | n | SSIM | PSNR (dB) | MSE |" in lines
    assert any(line.startswith("| **overall** | 3 | ") for line in lines)
    assert "| psnr >= 1 (overall) | pass |" in lines


def test_installed_command_end_to_end(tree, tmp_path):
    # as a CI job runs it: the installed console script, in a subprocess, no TTY
    exe = shutil.which("iqeval", path=str(Path(sys.executable).parent)) or shutil.which("iqeval")
    assert exe is not None, "the iqeval console script is not installed"
    pred, gt = tree
    env = {**os.environ, "NO_COLOR": "1"}
    out = tmp_path / "r.json"
    proc = subprocess.run(
        [exe, "compare", str(pred), str(gt), "--json", str(out), "--fail-under", "ssim=0.999"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert proc.returncode == 4, proc.stderr
    # the process ends with os._exit: its piped output must still arrive whole, the table last
    assert proc.stdout.rstrip().endswith("3 items (3 ok, 0 failed), 0 sequence frames"), proc.stdout
    assert "\x1b[" not in proc.stdout + proc.stderr  # no colour, no progress bar
    assert "Gate failed: ssim >= 0.999 (overall)" in proc.stderr
    doc = json.loads(out.read_text())
    assert doc["counts"]["items"] == 3
    assert np.isfinite(doc["summary"]["micro"]["psnr"]["mean"])
