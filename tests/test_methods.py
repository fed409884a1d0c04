"""Several methods against one ground truth: the method key, paired statistics, the paper table,
and a gate that asks for significance."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import wilcoxon
from skimage import data
from skimage.metrics import structural_similarity

import iqeval
from iqeval.cli import cli
from iqeval.gate import baseline_checks, compare_runs
from iqeval.methods import BOOTSTRAP_RESAMPLES, paired
from iqeval.results import ItemResult, Run
from iqeval.sources import ImageSource

from .conftest import noisy

NAMES = ("baby", "bird", "butterfly", "head", "woman")


@pytest.fixture
def methods_tree(tmp_path, write_png):
    """Two datasets of 5 images; 'edsr' is better than 'bicubic'; bicubic lacks one output."""
    for ds in ("set5", "set14"):
        for k, name in enumerate(NAMES):  # not numbered: numbered images of one size would be a sequence
            gt = np.roll(data.astronaut()[:48, :56], 7 * k, axis=1)
            write_png(f"gt/{ds}/{name}.png", gt)
            write_png(f"out/edsr/{ds}/{name}.png", noisy(gt, 5, seed=k))
            if (ds, k) != ("set14", 4):
                write_png(f"out/bicubic/{ds}/{name}.png", noisy(gt, 14, seed=10 + k))
    return tmp_path


def _run(root) -> Run:
    """The two methods of ``methods_tree`` scored in-process, through the library."""
    methods = (("bicubic", root / "out/bicubic"), ("edsr", root / "out/edsr"))
    return iqeval.run(iqeval.CompareConfig(pred=root / "out/edsr", gt=root / "gt", methods=methods, jobs=1))


def run_methods(root, *extra):
    args = ["compare", "--gt", str(root / "gt"), "--pred", f"bicubic={root / 'out/bicubic'}"]
    args += ["--pred", f"edsr={root / 'out/edsr'}", *extra]
    return CliRunner().invoke(cli, args)


def test_method_is_a_key_in_every_report(methods_tree):
    root = methods_tree
    result = run_methods(root, "--json", str(root / "r.json"), "--csv", str(root / "r.csv"), "-j", "1")
    assert result.exit_code == 0, result.output
    doc = json.loads((root / "r.json").read_text())
    assert doc["config"]["methods"] == ["bicubic", "edsr"]
    items = {i["id"]: i for i in doc["items"]}
    assert items["edsr/set5/baby"]["keys"] == {"method": "edsr", "group": "set5"}
    assert [g["value"] for g in doc["keys"]["method"]] == ["bicubic", "edsr"]
    assert doc["gt_only"] == ["bicubic: set14/woman.png"]
    gt = data.astronaut()[:48, :56]
    expected = structural_similarity(gt, noisy(gt, 5, seed=0), channel_axis=-1, data_range=255)
    assert items["edsr/set5/baby"]["scores"]["ssim"] == pytest.approx(expected, abs=1e-9)
    rows = list(csv.DictReader(io.StringIO((root / "r.csv").read_text())))
    assert {r["method"] for r in rows} == {"bicubic", "edsr"}
    assert "paired differences between methods" in result.output


def test_each_ground_truth_is_decoded_once(methods_tree, monkeypatch):
    root = methods_tree
    decoded: list[str] = []
    real = ImageSource.decode

    def counting(self, max_pixels=iqeval.io.DEFAULT_MAX_PIXELS):
        decoded.append(str(self.path))
        return real(self, max_pixels)

    monkeypatch.setattr(ImageSource, "decode", counting)
    run = _run(root)
    assert run.summary.n_ok == 19
    gt_reads = [p for p in decoded if "/gt/" in p]
    assert len(gt_reads) == len(set(gt_reads)) == 10


def test_paired_statistics_against_scipy_and_a_bootstrap_written_out(methods_tree):
    root = methods_tree
    run = _run(root)
    p = paired(run, "bicubic", "edsr", "psnr")
    a = {r.id.split("/", 1)[1]: r.scores["psnr"] for r in run.items if r.keys["method"] == "bicubic"}
    b = {r.id.split("/", 1)[1]: r.scores["psnr"] for r in run.items if r.keys["method"] == "edsr"}
    shared = sorted(set(a) & set(b))
    diffs = np.array([b[k] - a[k] for k in shared])
    assert p.n == 9 and p.only_b == ("set14/woman",) and p.only_a == ()
    assert p.mean_diff == pytest.approx(diffs.mean(), abs=1e-12)
    assert p.p_value == pytest.approx(wilcoxon(diffs).pvalue, abs=1e-15)
    rng = np.random.default_rng(0)  # the documented bootstrap: seed 0, 10000 resamples, percentile interval
    means = diffs[rng.integers(0, diffs.size, size=(BOOTSTRAP_RESAMPLES, diffs.size))].mean(axis=1)
    assert (p.ci_low, p.ci_high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])), abs=1e-12)
    assert (p.wins, p.ties, p.losses) == (9, 0, 0)
    mse = paired(run, "bicubic", "edsr", "mse")  # lower is better: edsr still wins
    assert (mse.wins, mse.losses) == (9, 0) and mse.mean_diff < 0
    assert [(q.a, q.b, q.metric) for q in run.paired] == [
        ("bicubic", "edsr", "ssim"),
        ("bicubic", "edsr", "psnr"),
        ("bicubic", "edsr", "mse"),
    ]
    back = Run.from_doc(json.loads(json.dumps(run.to_doc())))
    assert back.paired == run.paired


@pytest.mark.parametrize("ext", ["md", "tex", "csv"])
def test_the_paper_table(methods_tree, ext):
    root = methods_tree
    out = root / f"table.{ext}"
    result = run_methods(root, "--table", str(out), "--metrics", "ssim,psnr", "--convention", "basicsr", "-q")
    assert result.exit_code == 0, result.output
    text = out.read_text()
    if ext == "md":
        lines = text.splitlines()
        assert lines[0] == "| method | set14 SSIM | set14 PSNR (dB) | set5 SSIM | set5 PSNR (dB) |"
        assert lines[3].startswith("| edsr | **") and "**" not in lines[2]  # the best value of each column
        assert lines[-1] == "Convention: basicsr. Items per dataset: set14 5, set5 5."
    elif ext == "tex":
        assert text.count(r"\begin{tabular}{lrrrr}") == 1 and text.count(r"\end{tabular}") == 1
        for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\cmidrule(lr){2-3} \cmidrule(lr){4-5}"):
            assert rule in text
        edsr = next(line for line in text.splitlines() if line.startswith("edsr &"))
        assert edsr.count(r"\textbf{") == 4 and edsr.endswith(r"\\")
        assert "Convention: basicsr. Items per dataset: set14 5, set5 5." in text
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
        assert len(rows) == 2 * 2 * 2
        best = {(r["dataset"], r["metric"]): r["method"] for r in rows if r["best"] == "True"}
        assert set(best.values()) == {"edsr"}
        n = {(r["method"], r["dataset"]): int(r["n"]) for r in rows}
        assert n[("bicubic", "set14")] == 4 and n[("edsr", "set14")] == 5


def _runs(drops: list[float]) -> tuple[Run, Run]:
    def run(values: list[float]) -> Run:
        items = tuple(
            ItemResult(
                id=f"g/i{k}",
                pred="",
                gt="",
                kind="image",
                keys={"group": "g"},
                metrics=("psnr",),
                scores={"psnr": v},
                frame_scores=np.empty((0, 1)),
                status="ok",
            )
            for k, v in enumerate(values)
        )
        from iqeval.aggregate import summarize_run

        return Run({"metrics": ["psnr"]}, items, summarize_run(items, ("psnr",), ("group",)))

    base = [30.0 + k for k in range(12)]
    return run(base), run([b - d for b, d in zip(base, drops, strict=True)])


def test_the_significance_gate_trips_on_a_real_regression_and_not_on_noise():
    real_old, real_new = _runs([0.4 + 0.01 * k for k in range(12)])  # every item worse
    noise_old, noise_new = _runs([2.0, -1.8] * 6)  # mean drop 0.1, half the items better
    for old, new, fails in ((real_old, real_new, True), (noise_old, noise_new, False)):
        plain = baseline_checks(compare_runs(old, new), {"psnr": 0.05})
        tested = baseline_checks(compare_runs(old, new), {"psnr": 0.05}, 0.05, old, new)
        assert plain[0].passed is False  # without the test both drops fail
        assert tested[0].passed is (not fails), tested[0].message
    check = baseline_checks(compare_runs(noise_old, noise_new), {"psnr": 0.05}, 0.05, noise_old, noise_new)[0]
    assert "drops beyond 0.05 but not significant at 0.05: " in check.message and "overall (p=" in check.message
    real = baseline_checks(compare_runs(real_old, real_new), {"psnr": 0.05}, 0.05, real_old, real_new)[0]
    assert "significant at 0.05, one-sided Wilcoxon" in real.message


def test_method_usage_errors():
    runner = CliRunner()
    assert "needs --gt DIR" in runner.invoke(cli, ["compare", "--pred", "a=x"]).output
    assert "expected NAME=DIR" in runner.invoke(cli, ["compare", "--gt", "g", "--pred", "ax"]).output
    assert "give PRED and GT" in runner.invoke(cli, ["compare", "only_one"]).output


def test_the_latex_table_compiles(methods_tree, tmp_path):
    import shutil
    import subprocess

    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        pytest.skip("pdflatex is not installed (.ci/run installs Debian's texlive-latex-recommended)")
    root = methods_tree
    table = tmp_path / "table.tex"
    assert run_methods(root, "--table", str(table), "-q").exit_code == 0
    doc = tmp_path / "paper.tex"
    doc.write_text(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n\\input{table.tex}\n\\end{document}\n"
    )
    done = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "paper.pdf").stat().st_size > 1000
