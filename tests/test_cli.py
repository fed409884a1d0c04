"""The command line: exact user-facing text and exit codes."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from iqeval.cli import cli

from .conftest import noisy


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_version_is_the_installed_distributions():
    """``--version``, ``iqeval.__version__`` and the installed metadata (read from ``_version.py``) agree."""
    from importlib.metadata import version

    import iqeval

    out = CliRunner().invoke(cli, ["--version"])
    assert out.exit_code == 0
    assert out.output.strip() == f"iqeval, version {version('iqeval')}"
    assert iqeval.__version__ == version("iqeval")


def test_single_pair_prints_scores_and_facts(write_png, rgb):
    gt = write_png("gt.png", rgb)
    pred = write_png("pred.png", np.clip(rgb.astype(int) + 3, 0, 255).astype(np.uint8))
    result = run("compare", str(pred), str(gt))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[2] == "size        112x96, 3 channels"
    assert lines[3] == "dtype       uint8"
    assert lines[4] == "data range  255 (dtype uint8)"
    assert lines[5] == "colour      rgb"
    assert lines[6] == "crop        none"
    assert lines[7] == "ssim window uniform 7x7 window, sample covariance"
    assert lines[9].startswith("PSNR        ") and lines[9].endswith(" dB")
    mse = ((np.clip(rgb.astype(int) + 3, 0, 255) - rgb) ** 2).mean()
    assert lines[10] == f"MSE         {mse:.6g}"


def test_identical_pair_says_inf(write_png, rgb):
    gt = write_png("gt.png", rgb)
    result = run("compare", str(gt), str(gt), "--metrics", "psnr")
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "PSNR        inf dB  (identical images)"


def test_sr_convention_output(write_png, rgb):
    gt = write_png("gt.png", rgb)
    pred = write_png("pred.png", noisy(rgb, 5))
    result = run("compare", str(pred), str(gt), "--color", "y", "--ssim-kernel", "gaussian", "--crop-border", "4")
    assert result.exit_code == 0
    assert "crop        4 px (scored 104x88)" in result.output
    assert "ssim window gaussian sigma=1.5, 11x11 window, population covariance" in result.output


def test_json_to_stdout_is_strict(write_png, rgb):
    gt = write_png("gt.png", rgb)
    result = run("compare", str(gt), str(gt), "--json", "-")
    assert result.exit_code == 0
    doc = json.loads(result.output, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    # schema 2: a single pair is a run with one item, in the same layout as a batch
    (item,) = doc["items"]
    assert item["scores"] == {"ssim": 1.0, "psnr": "inf", "mse": 0.0}
    assert item["info"]["data_range"] == 255.0
    assert doc["schema_version"] == 2


def test_missing_file_is_one_line_exit_1(tmp_path, write_png, rgb):
    gt = write_png("gt.png", rgb)
    result = run("compare", str(tmp_path / "missing.png"), str(gt))
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'missing.png'}: no such file or directory\n"


def test_empty_file_exit_1(tmp_path, write_png, rgb):
    gt = write_png("gt.png", rgb)
    (tmp_path / "empty.png").write_bytes(b"")
    result = run("compare", str(tmp_path / "empty.png"), str(gt))
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'empty.png'}: file is empty\n"


def test_truncated_file_exit_1(write_png, rgb):
    gt = write_png("gt.png", rgb)
    bad = write_png("bad.png", rgb)
    bad.write_bytes(bad.read_bytes()[:300])
    result = run("compare", str(bad), str(gt))
    assert result.exit_code == 1
    assert result.output == f"Error: {bad}: cannot read image: corrupt or truncated data\n"


def test_non_image_exit_1(tmp_path, write_png, rgb):
    gt = write_png("gt.png", rgb)
    (tmp_path / "a.png").write_text("hello")
    result = run("compare", str(tmp_path / "a.png"), str(gt))
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'a.png'}: cannot read image: not a recognised image format\n"


def test_size_mismatch_exit_1(write_png, rgb):
    a = write_png("a.png", rgb)
    b = write_png("b.png", rgb[:90])
    result = run("compare", str(a), str(b))
    assert result.exit_code == 1
    assert result.output == f"Error: size mismatch: {a} is 112x96 but {b} is 112x90\n"


def test_gray_vs_rgb_exit_1(write_png, rgb):
    a = write_png("a.png", rgb[..., 0])
    b = write_png("b.png", rgb)
    result = run("compare", str(a), str(b))
    assert result.exit_code == 1
    assert result.output == f"Error: {a} is gray but {b} is RGB; use --color gray or --color y to compare them\n"
    assert run("compare", str(a), str(b), "--color", "gray").exit_code == 0


def test_too_small_for_window_exit_1(write_png):
    a = write_png("a.png", np.zeros((5, 5), np.uint8))
    result = run("compare", str(a), str(a))
    assert result.exit_code == 1
    assert (
        result.output == f"Error: {a}: 5x5 is smaller than the 7x7 SSIM window; pass an odd --win-size of at most 5\n"
    )


def test_float_out_of_range_exit_1(tmp_path):
    path = tmp_path / "f.tif"
    np.random.default_rng(0)
    import imageio.v3 as iio

    iio.imwrite(path, np.full((16, 16), 2.0, dtype=np.float32))
    result = run("compare", str(path), str(path))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: {path}: float values lie in [2, 2], outside [0, 1]; pass --data-range to state their range\n"
    )
    assert run("compare", str(path), str(path), "--data-range", "4").exit_code == 0


def test_unsupported_dtype_exit_1(tmp_path):
    import imageio.v3 as iio

    path = tmp_path / "i.tif"
    iio.imwrite(path, np.zeros((16, 16), dtype=np.int16))
    result = run("compare", str(path), str(path))
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: unsupported dtype int16; ")


def test_bad_option_is_usage_error_exit_2(write_png, rgb):
    a = write_png("a.png", rgb)
    result = run("compare", str(a), str(a), "--win-size", "4")
    assert result.exit_code == 2
    assert "Error: SSIM window size must be an odd integer of at least 3, got 4" in result.output
    assert run("compare", str(a), str(a), "--metrics", "ssim,foo").exit_code == 2


# ---------------------------------------------------------------- batch mode

import csv  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "sample_data.json"


def strict_json(text: str):
    def reject(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture
def tree(write_png, rgb, tmp_path):
    write_png("gt/a/x.png", rgb)
    write_png("pred/a/x.png", noisy(rgb, 8))
    write_png("gt/a/same.png", rgb)
    write_png("pred/a/same.png", rgb)
    write_png("gt/b/y.png", rgb)
    write_png("pred/b/y.png", noisy(rgb, 20, seed=1))
    return tmp_path / "pred", tmp_path / "gt"


def test_batch_summary_table(tree):
    pred, gt = tree
    result = run("compare", str(pred), str(gt))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["mean", "n", "SSIM", "PSNR", "(dB)", "MSE"]
    assert lines[1].split()[:3] == ["group=a", "2", lines[1].split()[2]]
    assert (
        lines[-2] == "PSNR: 1 of 3 items are inf (identical); mean of the finite ones: " + lines[-2].rsplit(" ", 1)[1]
    )
    assert lines[-1] == "3 items (3 ok, 0 failed), 0 sequence frames"


def test_batch_json_is_strict_and_complete(tree, rgb):
    pred, gt = tree
    result = run("compare", str(pred), str(gt), "--json", "-")
    assert result.exit_code == 0
    doc = strict_json(result.stdout)
    assert doc["schema_version"] == 2
    assert doc["counts"] == {
        "items": 3,
        "ok": 3,
        "failed": 0,
        "frames": 0,
        "pred_only": 0,
        "gt_only": 0,
        "ignored_files": 0,
    }
    items = {i["id"]: i for i in doc["items"]}
    assert items["a/same"]["scores"]["psnr"] == "inf"
    assert items["a/x"]["scores"]["ssim"] == pytest.approx(
        structural_similarity(rgb, noisy(rgb, 8), data_range=255, channel_axis=-1), abs=1e-9
    )
    assert doc["summary"]["micro"]["psnr"]["n_inf"] == 1
    assert doc["summary"]["micro"]["psnr"]["mean"] == "inf"
    assert doc["summary"]["micro"]["psnr"]["std"] == "nan"
    assert [k["value"] for k in doc["keys"]["group"]] == ["a", "b"]
    assert doc["config"]["color"] == "rgb" and doc["config"]["win_size"] == 7


def test_batch_csv_round_trips(tree, tmp_path):
    pred, gt = tree
    out = tmp_path / "items.csv"
    assert run("compare", str(pred), str(gt), "--csv", str(out), "--json", str(tmp_path / "r.json")).exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    doc = strict_json((tmp_path / "r.json").read_text())
    by_id = {i["id"]: i for i in doc["items"]}
    assert [r["id"] for r in rows] == ["a/same", "a/x", "b/y"]
    for row in rows:
        for m in ("ssim", "psnr", "mse"):
            expected = by_id[row["id"]]["scores"][m]
            assert float(row[m]) == float(expected)  # full precision, inf as "inf"
    assert rows[0]["psnr"] == "inf" and rows[0]["group"] == "a"


def test_unmatched_files_warn_and_strict_exits_3(tree):
    pred, gt = tree
    (pred / "extra.png").write_bytes((pred / "a" / "x.png").read_bytes())
    result = CliRunner().invoke(cli, ["compare", str(pred), str(gt)])
    assert result.exit_code == 0
    assert f"Warning: unmatched files: 1 only in {pred} (first: extra.png)" in result.output
    strict = CliRunner().invoke(cli, ["compare", str(pred), str(gt), "--strict", "--json", "-"])
    assert strict.exit_code == 3
    doc = strict_json(strict.stdout)
    assert doc["pred_only"] == ["extra.png"]
    assert "Error: --strict: 1 pred-only and 0 gt-only files" in strict.stderr


def test_failed_item_exits_1_and_keeps_the_rest(tree):
    pred, gt = tree
    (pred / "b" / "y.png").write_bytes(b"")
    result = CliRunner().invoke(cli, ["compare", str(pred), str(gt), "--json", "-"])
    assert result.exit_code == 1
    doc = strict_json(result.stdout)
    statuses = {i["id"]: (i["status"], i["error"]) for i in doc["items"]}
    assert statuses["b/y"] == ("error", f"{pred / 'b' / 'y.png'}: file is empty")
    assert statuses["a/x"] == ("ok", None)
    assert result.stderr == f"Error: b/y: {pred / 'b' / 'y.png'}: file is empty\n"


def test_group_by_and_weights(tree, tmp_path):
    pred, gt = tree
    weights = tmp_path / "w.json"
    weights.write_text('{"top": {"a": 3, "b": 1}}')
    result = run(
        "compare", str(pred), str(gt), "--group-by", r"(?P<top>[^/]+)/", "--weights", str(weights), "--json", "-"
    )
    assert result.exit_code == 0, result.output
    doc = strict_json(result.stdout)
    a, b = doc["keys"]["top"]
    expected = (3 * a["metrics"]["ssim"]["mean"] + b["metrics"]["ssim"]["mean"]) / 4
    assert doc["summary"]["weighted"]["top"]["ssim"] == pytest.approx(expected, abs=1e-15)
    assert doc["summary"]["macro"]["top"]["ssim"] == pytest.approx(
        (a["metrics"]["ssim"]["mean"] + b["metrics"]["ssim"]["mean"]) / 2, abs=1e-15
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--group-by", "("], "is not a valid regular expression"),
        (["--group-by", "[^/]+"], "has no named group"),
        (["--json", "-", "--csv", "-"], "only one report can go to stdout"),
    ],
)
def test_batch_usage_errors_exit_2(tree, args, message):
    pred, gt = tree
    result = run("compare", str(pred), str(gt), *args)
    assert result.exit_code == 2
    assert message in result.output


def test_weights_for_unknown_key_exit_2(tree, tmp_path):
    pred, gt = tree
    w = tmp_path / "w.json"
    w.write_text('{"scene": {"a": 1}}')
    result = run("compare", str(pred), str(gt), "--weights", str(w))
    assert result.exit_code == 2
    assert "--weights names key 'scene', but the keys are: group" in result.output


def test_file_against_folder_exit_2(tree):
    pred, gt = tree
    result = run("compare", str(pred / "a" / "x.png"), str(gt))
    assert result.exit_code == 2
    assert f"{gt} is a folder but {pred / 'a' / 'x.png'} is a file" in result.output


def test_quiet_prints_nothing(tree):
    pred, gt = tree
    result = run("compare", str(pred), str(gt), "--quiet")
    assert result.exit_code == 0 and result.output == ""


def test_frames_csv(tmp_path, write_png):
    for i in range(3):
        write_png(f"pred/clip/{i}.png", np.full((16, 16), 10 + i, np.uint8))
        write_png(f"gt/clip/{i}.png", np.full((16, 16), 10, np.uint8))
    result = run("compare", str(tmp_path / "pred"), str(tmp_path / "gt"), "--frames-csv", "-", "--metrics", "mse,psnr")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["id", "frame", "psnr", "mse"]
    assert [(r[0], r[1], float(r[3])) for r in rows[1:]] == [("clip", "0", 0.0), ("clip", "1", 1.0), ("clip", "2", 4.0)]
    assert float(rows[1][2]) == math.inf
    assert float(rows[3][2]) == pytest.approx(10 * math.log10(255**2 / 4), abs=1e-12)


def _close(a, b, path=""):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


def test_golden_report_of_sample_data(monkeypatch):
    # regenerate: .venv/bin/iqeval compare sample_data/pred sample_data/gt --json tests/golden/sample_data.json
    monkeypatch.chdir(REPO)
    result = run("compare", "sample_data/pred", "sample_data/gt", "--json", "-")
    assert result.exit_code == 0
    doc, golden = strict_json(result.stdout), strict_json(GOLDEN.read_text())
    doc.pop("tool")
    golden.pop("tool")
    _close(doc, golden)
