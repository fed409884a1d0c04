"""The house: a metric is one registry entry, a run is one typed model, the import graph has no cycle."""

from __future__ import annotations

import ast
import csv
import io
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

import iqeval
from iqeval.cli import cli
from iqeval.errors import ConfigError
from iqeval.metrics import METRICS, Metric, as_float, parse_metrics
from iqeval.results import Run

from .conftest import noisy

PACKAGE = Path(iqeval.__file__).resolve().parent


def _mae_reference(x, y, options, data_range):
    return float(np.mean(np.abs(x - y)))


def _mae_fast(prep, options, scratch):
    # a different path from the reference: per-row sums, so the test sees which engine ran
    d = np.abs(as_float(prep.pred, prep.pred_scale) - as_float(prep.gt, prep.gt_scale))
    return float(d.reshape(d.shape[0], -1).sum(axis=1).sum() / d.size)


MAE = Metric("mae", "MAE", "", False, reference=_mae_reference, fast=_mae_fast, decimals=3)


@pytest.fixture
def with_mae(monkeypatch):
    # a test-only registry: the built-in metrics plus MAE, restored after the test
    monkeypatch.setitem(METRICS, "mae", MAE)


@pytest.fixture
def tree(tmp_path, write_png, rgb):
    write_png("gt/a/x.png", rgb)
    write_png("pred/a/x.png", noisy(rgb, 8))
    write_png("gt/b/y.png", rgb)
    write_png("pred/b/y.png", noisy(rgb, 20, seed=1))
    for i in range(3):
        write_png(f"gt/clip/{i}.png", rgb)
        write_png(f"pred/clip/{i}.png", noisy(rgb, 4 + i, seed=10 + i))
    return tmp_path / "pred", tmp_path / "gt"


def _mae(pred: Path, gt: Path) -> float:
    import imageio.v3 as iio

    return float(np.mean(np.abs(iio.imread(pred).astype(float) - iio.imread(gt).astype(float))))


@pytest.mark.parametrize("engine", ["fast", "skimage"])
def test_a_toy_metric_is_computed_gated_and_written_everywhere(with_mae, tree, tmp_path, engine):
    pred, gt = tree
    out = tmp_path / "out"
    args = ["compare", str(pred), str(gt), "--metrics", "ssim,mae", "--engine", engine, "-j", "2"]
    args += ["--fail-under", "mae=1", "--item-floor", "mae=9", "--html", str(out / "r.html"), "--maps", str(out / "m")]
    for flag, name in (("--json", "r.json"), ("--csv", "r.csv"), ("--frames-csv", "f.csv")):
        args += [flag, str(out / name)]
    args += ["--junit", str(out / "r.xml"), "--markdown", str(out / "r.md")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 4, result.output  # MAE is lower-is-better: mean MAE above 1 fails

    doc = json.loads((out / "r.json").read_text())
    items = {i["id"]: i for i in doc["items"]}
    assert doc["config"]["metrics"] == ["ssim", "mae"]
    assert items["a/x"]["scores"]["mae"] == pytest.approx(_mae(pred / "a/x.png", gt / "a/x.png"), rel=1e-12)
    frames = [_mae(pred / f"clip/{i}.png", gt / f"clip/{i}.png") for i in range(3)]
    assert items["clip"]["frames"]["mae"] == pytest.approx(frames, rel=1e-12)
    assert items["clip"]["scores"]["mae"] == pytest.approx(np.mean(frames), rel=1e-12)  # pooled by the mean
    assert "mae" in doc["summary"]["micro"] and "mae" in doc["keys"]["group"][0]["metrics"]
    gate = {c["name"]: c for c in doc["checks"]}
    assert gate["mae <= 1 (overall)"]["passed"] is False
    assert gate["mae <= 9 (every item)"]["offenders"] == ["b/y"]  # the noisier item, above the floor
    assert "Gate failed: mae <= 1 (overall): mean is " in result.stderr

    rows = list(csv.DictReader(io.StringIO((out / "r.csv").read_text())))
    assert float(rows[0]["mae"]) == items[rows[0]["id"]]["scores"]["mae"]
    assert [r["mae"] for r in csv.DictReader(io.StringIO((out / "f.csv").read_text()))] == [repr(v) for v in frames]
    junit = ET.parse(out / "r.xml").getroot()
    assert [c.get("name") for c in junit.iter("testcase") if c.find("failure") is not None] == [
        "b/y",
        "mae <= 1 (overall)",
        "mae <= 9 (every item)",
    ]
    md = (out / "r.md").read_text()
    assert "| scope | n | SSIM | MAE |" in md
    assert f"| **overall** | 3 | {doc['summary']['micro']['ssim']['mean']:.6f} | " in md
    html = (out / "r.html").read_text()
    assert "<th>MAE</th>" in html and "mae &lt;= 1 (overall)" in html
    table = json.loads(html.split('id="items-data">', 1)[1].split("</script>", 1)[0])
    mae_col = table["columns"].index("mae")
    assert table["text"][0][mae_col] == f"{table['rows'][0][mae_col]:.3f}"  # the metric's own decimals
    assert len(list((out / "m").iterdir())) == 2 * 3  # the worst items' maps

    # and iqeval diff reads the metric back from the saved report
    again = CliRunner().invoke(cli, ["diff", str(out / "r.json"), str(out / "r.json"), "--max-drop", "mae=0"])
    assert again.exit_code == 0, again.output
    assert any(line.split()[:2] == ["overall", "mae"] for line in again.stdout.splitlines())


def test_both_engines_agree_on_the_toy_metric(with_mae, rgb):
    pred = noisy(rgb, 9)
    fast = iqeval.compare_images(pred, rgb, metrics="mae")["mae"]
    reference = iqeval.compare_images(pred, rgb, metrics="mae", engine="skimage")["mae"]
    assert fast == pytest.approx(reference, rel=1e-12)
    assert reference == pytest.approx(np.mean(np.abs(pred.astype(float) - rgb)), rel=1e-12)


def test_an_unknown_metric_raises():
    with pytest.raises(ConfigError, match="unknown metric 'mae'; choose from ssim, psnr, mse, msssim"):
        parse_metrics("ssim,mae")
    with pytest.raises(ConfigError, match="unknown metric"):
        iqeval.Options(metrics=("nope",))


def test_a_run_round_trips_through_its_json(tree, tmp_path):
    pred, gt = tree
    result = iqeval.run(iqeval.CompareConfig(pred=pred, gt=gt, jobs=1))
    back = Run.from_doc(json.loads(json.dumps(result.to_doc())))
    assert back.to_doc() == result.to_doc()
    assert [r.id for r in back.items] == ["a/x", "b/y", "clip"]
    assert back.item("clip").frame_scores.shape == (3, 3)


def test_run_reports_progress_and_needs_no_click(tree):
    pred, gt = tree
    seen = []
    result = iqeval.run(iqeval.CompareConfig(pred=pred, gt=gt, jobs=1), progress=lambda d, t, r: seen.append((d, t)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert result.passed and result.summary.n_ok == 3


def test_a_single_pair_is_a_run_with_one_item(write_png, rgb):
    a = write_png("a.png", rgb)
    b = write_png("b.png", noisy(rgb, 5))
    result = iqeval.run(iqeval.CompareConfig(pred=b, gt=a, jobs=1))
    (item,) = result.items
    assert item.scores == iqeval.compare_images(b, a).scores


def _module_imports(path: Path) -> set[str]:
    """The package modules a module imports when it is loaded (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else ():
            if isinstance(sub, ast.ImportFrom) and sub.level == 1:
                if sub.module:
                    out.add(sub.module.split(".")[0])
                else:
                    out.update(a.name for a in sub.names)
    return out


def test_the_import_graph_has_no_cycle():
    graph = {p.stem: _module_imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        assert state.get(node) != 1, "import cycle: " + " -> ".join([*path, node])
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        state[node] = 2

    for module in sorted(graph):
        visit(module, [])
    assert all("import click" not in p.read_text() for p in PACKAGE.glob("*.py") if p.stem != "cli")
    assert all(
        "tqdm" not in _module_imports(p) and "from tqdm" not in p.read_text()
        for p in PACKAGE.glob("*.py")
        if p.stem != "cli"
    )


def test_public_api_is_small():
    assert sorted(iqeval.__all__) == sorted(
        [
            "CompareConfig",
            "Evaluator",
            "GateConfig",
            "IqevalError",
            "ItemResult",
            "Options",
            "PairInfo",
            "PairResult",
            "Run",
            "Scores",
            "__version__",
            "compare_images",
            "run",
            "score",
        ]
    )


def test_sources_know_their_kind_frames_and_facts(tmp_path, write_png, rgb):
    import imageio.v3 as iio

    from iqeval.sources import FrameFolderSource, ImageSource, Source, VideoSource, kind_of

    img = write_png("a.png", rgb)
    frames = np.stack([rgb, noisy(rgb, 3)])
    iio.imwrite(tmp_path / "v.mp4", frames, plugin="pyav", codec="libx264")
    folder = [write_png(f"f/{i}.png", f) for i, f in enumerate(frames)]
    assert (kind_of("x.PNG"), kind_of("x.mkv"), kind_of("x.txt")) == ("image", "video", None)
    image, video = Source(img, "image"), Source(tmp_path / "v.mp4", "video")
    frame_folder = Source(tmp_path / "f", "frames", tuple(folder))
    assert (type(image), type(video), type(frame_folder)) == (ImageSource, VideoSource, FrameFolderSource)
    np.testing.assert_array_equal(image.frame(0), rgb)
    np.testing.assert_array_equal(frame_folder.frame(1), frames[1])
    assert [d.array.shape for d in video.decode()] == [rgb.shape, rgb.shape]
    assert video.facts()["n_frames"] == 2 and frame_folder.facts()["n_frames"] == 2
    with pytest.raises(ValueError, match="unknown source kind 'tape'"):
        Source(img, "tape")


def test_a_registered_metric_reaches_workers_that_did_not_fork_from_the_test(with_mae, tree):
    import threading

    pred, gt = tree
    stop = threading.Event()
    holder = threading.Thread(target=stop.wait)  # a second thread: the pool starts workers by forkserver, not fork
    holder.start()
    try:
        result = iqeval.run(iqeval.CompareConfig(pred=pred, gt=gt, jobs=2, options=iqeval.Options(metrics=("mae",))))
    finally:
        stop.set()
        holder.join()
    assert result.summary.n_ok == 3, [r.error for r in result.items]
    assert result.item("a/x").scores["mae"] == pytest.approx(_mae(pred / "a/x.png", gt / "a/x.png"), rel=1e-12)
