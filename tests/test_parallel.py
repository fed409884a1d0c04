"""Parallel and distributed runs give exactly the serial results, in the same order."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iqeval.cli import _on_sigterm, cli
from iqeval.evaluate import CompareConfig, evaluate
from iqeval.parallel import choose_mapper, process_map

from .conftest import noisy


@pytest.fixture
def tree(tmp_path, write_png, rgb):
    for i in range(6):
        write_png(f"gt/g{i % 2}/{i}.png", rgb)
        write_png(f"pred/g{i % 2}/{i}.png", noisy(rgb, 3 + 4 * i, seed=i))
    for i in range(3):
        write_png(f"gt/seq/clip/{i}.png", rgb)
        write_png(f"pred/seq/clip/{i}.png", noisy(rgb, 5, seed=10 + i))
    (tmp_path / "pred" / "g0" / "broken.png").write_bytes(b"")
    write_png("gt/g0/broken.png", rgb)
    return tmp_path / "pred", tmp_path / "gt"


def _rows(results):
    return [(r.id, r.status, r.error, dict(r.scores), r.frame_scores.tolist()) for r in results]


def test_process_pool_equals_serial(tree):
    pred, gt = tree
    config = CompareConfig(pred=pred, gt=gt)
    serial = _rows(evaluate(config, mapper=map))
    parallel = _rows(evaluate(config, mapper=process_map(2)))
    assert parallel == serial
    assert [r[0] for r in serial] == sorted(r[0] for r in serial)
    assert sum(r[1] == "error" for r in serial) == 1


def test_cli_reports_identical_for_any_jobs(tree, tmp_path):
    pred, gt = tree
    outputs = []
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"r{jobs}.json"
        result = CliRunner().invoke(cli, ["compare", str(pred), str(gt), "--jobs", jobs, "--json", str(out), "-q"])
        assert result.exit_code == 1  # the broken item
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1] == outputs[2]


def test_choose_mapper():
    assert choose_mapper(1, None, 10) is map
    assert choose_mapper(4, None, 1) is map
    assert choose_mapper(2, None, 10) is not map


def test_interrupt_writes_no_report(tree, tmp_path, monkeypatch):
    pred, gt = tree

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
        yield  # pragma: no cover

    monkeypatch.setattr("iqeval.cli.evaluate", interrupted)
    out = tmp_path / "never.json"
    result = CliRunner().invoke(cli, ["compare", str(pred), str(gt), "--json", str(out)])
    assert result.exit_code == 130
    assert "Interrupted: no report written." in result.output
    assert not out.exists()


def test_dask_local_cluster_equals_local_run(tree, tmp_path):
    distributed = pytest.importorskip("distributed")
    pred, gt = tree
    local = tmp_path / "local.json"
    remote = tmp_path / "dask.json"
    assert (
        CliRunner().invoke(cli, ["compare", str(pred), str(gt), "-j", "1", "--json", str(local), "-q"]).exit_code == 1
    )
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = CliRunner().invoke(
            cli, ["compare", str(pred), str(gt), "--scheduler", cluster.scheduler_address, "--json", str(remote), "-q"]
        )
    assert result.exit_code == 1, result.output

    def outcomes(path: Path) -> list[tuple[str, str, str | None]]:
        return [(i["id"], i["status"], i.get("error")) for i in json.loads(path.read_text())["items"]]

    assert outcomes(remote) == outcomes(local)  # where they differ, the item and its error show
    assert remote.read_text() == local.read_text()


def test_unreachable_scheduler_is_a_usage_error(tree):
    pred, gt = tree
    result = CliRunner().invoke(cli, ["compare", str(pred), str(gt), "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in result.output


def test_images_identical_to_skimage_under_pool(tree):
    from skimage.metrics import structural_similarity

    pred, gt = tree
    results = {r.id: r for r in evaluate(CompareConfig(pred=pred, gt=gt, jobs=2, sequences="never"))}
    import imageio.v3 as iio

    p, g = iio.imread(pred / "g1" / "3.png"), iio.imread(gt / "g1" / "3.png")
    assert results["g1/3"].scores["ssim"] == pytest.approx(
        structural_similarity(g, p, data_range=255, channel_axis=-1), abs=1e-9
    )
    assert np.isfinite(results["g1/3"].scores["psnr"])


def _terminated_mid_item(item: int) -> str:
    os.kill(os.getpid(), signal.SIGTERM)  # as the command's _terminate does to a busy worker
    time.sleep(2)
    return "survived"


def test_a_worker_dies_on_sigterm_even_with_the_commands_handler_inherited(monkeypatch):
    # A forked worker inherits the command's SIGTERM handler, which raises. Mid-item that
    # exception was caught and sent back as the item's result, and the worker lived on: the
    # pool's shutdown then waited on it forever (a hang seen once in CI).
    monkeypatch.setattr("iqeval.parallel._context", lambda: multiprocessing.get_context("fork"))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        results = list(process_map(1, crashed=lambda item, reason: reason)(_terminated_mid_item, [0]))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(results) == 1
    assert "the worker process scoring it died" in results[0]
