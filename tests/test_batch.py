"""The Python API for training loops: batches, layouts, tensors, several outputs, the CLI's exact numbers."""

from __future__ import annotations

import json
import math
import platform
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner
from skimage import data
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

import iqeval
from iqeval.cli import cli
from iqeval.errors import ConfigError, DataRangeError

from .conftest import noisy


def _batch(n: int = 4, dtype=np.uint8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    gt = np.stack([np.roll(data.astronaut()[:40, :48], 7 * i, axis=1) for i in range(n)])
    pred = np.stack([noisy(g, 6 + 3 * i, seed=seed + i) for i, g in enumerate(gt)])
    if dtype == np.float32:
        return (pred / 255.0).astype(np.float32), (gt / 255.0).astype(np.float32)
    return pred, gt


def _sk(pred: np.ndarray, gt: np.ndarray, data_range: float) -> tuple[float, float, float]:
    """skimage called directly on one sample (H, W, C)."""
    p, g = pred.astype(np.float64), gt.astype(np.float64)
    ssim = structural_similarity(g, p, channel_axis=-1, data_range=data_range)
    mse = mean_squared_error(g, p)
    return ssim, peak_signal_noise_ratio(g, p, data_range=data_range), mse


@pytest.mark.parametrize(("layout", "dtype"), [("NHWC", np.uint8), ("NCHW", np.float32)])
def test_per_sample_values_equal_skimage_in_a_loop(layout, dtype):
    pred, gt = _batch(dtype=dtype)
    rng = 255.0 if dtype == np.uint8 else 1.0
    if layout == "NCHW":
        p_in, g_in = pred.transpose(0, 3, 1, 2), gt.transpose(0, 3, 1, 2)
    else:
        p_in, g_in = pred, gt
    s = iqeval.score(p_in, g_in, layout=layout)
    assert s["ssim"].shape == (4,) and s["ssim"].dtype == np.float64
    for i in range(4):
        ssim, psnr, mse = _sk(pred[i], gt[i], rng)
        assert s["ssim"][i] == pytest.approx(ssim, abs=1e-9)
        assert s["psnr"][i] == pytest.approx(psnr, abs=1e-9)
        assert s["mse"][i] == pytest.approx(mse, rel=1e-12)
    # per-sample PSNR averaged, never the PSNR of the pooled MSE (0.26 dB apart on 2 images)
    assert s.mean()["psnr"] == pytest.approx(np.mean([_sk(pred[i], gt[i], rng)[1] for i in range(4)]), abs=1e-9)


def test_single_image_layouts_give_scalar_arrays():
    pred, gt = _batch(1)
    hwc = iqeval.score(pred[0], gt[0], layout="HWC")
    chw = iqeval.score(pred[0].transpose(2, 0, 1), gt[0].transpose(2, 0, 1), layout="CHW")
    hw = iqeval.score(pred[0, ..., 0], gt[0, ..., 0], layout="HW")
    assert hwc["ssim"].shape == () and float(hwc["ssim"]) == float(chw["ssim"])
    assert float(hw["ssim"]) == pytest.approx(structural_similarity(gt[0, ..., 0], pred[0, ..., 0]), abs=1e-9)


@pytest.mark.parametrize("layout", ["NTHWC", "NTCHW"])
def test_5d_batches_equal_frame_by_frame_scoring(layout):
    pred, gt = _batch(6)
    clip_p, clip_g = pred.reshape(2, 3, *pred.shape[1:]), gt.reshape(2, 3, *gt.shape[1:])
    if layout == "NTCHW":
        clip_p, clip_g = clip_p.transpose(0, 1, 4, 2, 3), clip_g.transpose(0, 1, 4, 2, 3)
    s = iqeval.score(clip_p, clip_g, layout=layout)
    assert s["ssim"].shape == (2, 3)
    for n in range(2):
        for t in range(3):
            one = iqeval.compare_images(pred[3 * n + t], gt[3 * n + t])
            assert s["ssim"][n, t] == one["ssim"] and s["psnr"][n, t] == one["psnr"]


def test_layout_is_never_guessed_and_errors_name_the_parameter():
    pred, gt = _batch(2)
    with pytest.raises(ConfigError, match=r"pred: layout='NHWC' needs a 4-D array, got shape \(40, 48, 3\)"):
        iqeval.score(pred[0], gt[0])
    with pytest.raises(ConfigError, match="layout='NHWCX' is not one of"):
        iqeval.score(pred, gt, layout="NHWCX")
    with pytest.raises(ConfigError, match=r"pred has batch shape \(2,\) but gt has \(1,\)"):
        iqeval.score(pred, gt[:1])
    with pytest.raises(TypeError, match="unknown option 'colour'"):
        iqeval.score(pred, gt, colour="y")
    with pytest.raises(DataRangeError, match=r"pred\[0\]: float values lie in .*pass data_range= to state their range"):
        iqeval.score(pred.astype(np.float32), gt.astype(np.float32))


def test_out_of_range_clip_is_explicit_and_recorded():
    pred, gt = _batch(2, np.float32)
    over = pred.copy()
    over[0, 0, 0, 0] = 1.02  # a model's overshoot
    over[1, 5, 5, 1] = -0.01
    s = iqeval.score(over, gt, out_of_range="clip")
    clipped = np.clip(over, 0, 1)
    for i in range(2):
        assert s["ssim"][i] == pytest.approx(_sk(clipped[i], gt[i], 1.0)[0], abs=1e-9)
    lo = float(over[0].min())
    assert s.infos[0].conversions == (f"pred[0]: 1 values in [{lo:g}, 1.02] clipped to [0, 1] (out_of_range='clip')",)


class OnlyArray:
    """An object that offers nothing but ``__array__`` (like many framework tensors)."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a if dtype is None else self.a.astype(dtype)


def test_objects_with_only_array_interface():
    pred, gt = _batch(2)
    assert np.array_equal(iqeval.score(OnlyArray(pred), OnlyArray(gt))["ssim"], iqeval.score(pred, gt)["ssim"])


def test_torch_tensors_without_importing_torch_in_iqeval():
    torch = pytest.importorskip("torch")
    pred, gt = _batch(3, np.float32)
    tp, tg = torch.from_numpy(pred).permute(0, 3, 1, 2), torch.from_numpy(gt).permute(0, 3, 1, 2)  # NCHW, strided
    s = iqeval.score(tp, tg, layout="NCHW")
    assert np.array_equal(s["ssim"], iqeval.score(pred, gt)["ssim"])
    grad = tp.clone().requires_grad_(True)
    with pytest.raises(ConfigError, match=r"pred: cannot be read as an array .*\.detach\(\)"):
        iqeval.score(grad, tg, layout="NCHW")
    assert np.array_equal(iqeval.score(grad.detach(), tg, layout="NCHW")["psnr"], s["psnr"])


def test_several_outputs_weighted_by_hand():
    pred, gt = _batch(4)
    ev = iqeval.Evaluator(weights={"output": {"sr": 3, "flow_warp": 1}})
    ev.update({"sr": (pred[:2], gt[:2]), "flow_warp": (pred[2:], gt[2:])})
    run = ev.result()
    assert run.key_names == ("output",)
    ssim = [_sk(pred[i], gt[i], 255.0)[0] for i in range(4)]
    sr, flow = np.mean(ssim[:2]), np.mean(ssim[2:])
    assert run.summary.weighted["output"]["ssim"] == pytest.approx((3 * sr + 1 * flow) / 4, abs=1e-12)
    assert run.summary.macro["output"]["ssim"] == pytest.approx((sr + flow) / 2, abs=1e-12)
    assert run.summary.micro["ssim"].mean == pytest.approx(np.mean(ssim), abs=1e-12)
    groups = {g.value: g.metrics["ssim"].mean for g in run.summary.groups["output"]}
    assert groups == {"flow_warp": pytest.approx(flow, abs=1e-12), "sr": pytest.approx(sr, abs=1e-12)}


def test_update_in_batches_equals_one_call_and_reset_forgets():
    pred, gt = _batch(6)
    keys = {"scene": ["a", "a", "b", "b", "c", "c"]}
    one = iqeval.Evaluator()
    one.update(pred, gt, keys=keys)
    several = iqeval.Evaluator()
    for lo, hi in ((0, 1), (1, 4), (4, 6)):
        several.update(pred[lo:hi], gt[lo:hi], keys={"scene": keys["scene"][lo:hi]})
    assert several.result().to_doc() == one.result().to_doc()
    several.reset()
    several.update(pred[:1], gt[:1], keys={"scene": ["a"]})
    assert several.result().summary.n_items == 1
    with pytest.raises(ConfigError, match="keys= names"):
        several.update(pred[:1], gt[:1], keys={"other": "x"})


def test_evaluator_result_is_the_clis_json(tmp_path):
    pred, gt = _batch(4)
    ids = ["set5/a", "set5/b", "set14/c", "set14/d"]
    for side, arrays in (("pred", pred), ("gt", gt)):
        for item_id, a in zip(ids, arrays, strict=True):
            (tmp_path / side / item_id).parent.mkdir(parents=True, exist_ok=True)
            iio.imwrite(tmp_path / side / f"{item_id}.png", a)
    out = tmp_path / "cli.json"
    result = CliRunner().invoke(cli, ["compare", str(tmp_path / "pred"), str(tmp_path / "gt"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    cli_doc = json.loads(out.read_text())
    ev = iqeval.Evaluator(metrics="ssim,psnr,mse")
    ev.update(pred[:3], gt[:3], ids=ids[:3])
    ev.update(pred[3:], gt[3:], ids=ids[3:])
    doc = json.loads(iqeval.report.json_report(ev.result()))
    for d in (cli_doc, doc):  # where the files were is not a number
        for item in d["items"]:
            item["pred"] = item["gt"] = ""
    assert doc == cli_doc


def test_every_option_is_reachable_from_python():
    pred, gt = _batch(2)
    s = iqeval.score(
        pred, gt, metrics="ssim,psnr", color="y", crop_border=4, ssim_kernel="gaussian", sigma=1.5, engine="skimage"
    )
    assert set(s) == {"ssim", "psnr"}
    one = iqeval.compare_images(pred[1], gt[1], color="y", crop_border=4, ssim_kernel="gaussian")
    assert s["ssim"][1] == pytest.approx(one["ssim"], abs=1e-9)
    assert math.isfinite(s["psnr"][0])


def test_the_public_namespace_is_the_api():
    public = [n for n in dir(iqeval) if not n.startswith("_")]
    assert public == sorted(set(iqeval.__all__) - {"__version__"})
    assert "Evaluator" in (iqeval.__doc__ or "") and "score" in (iqeval.__doc__ or "")


def _python(code: str, **env: str | None) -> str:
    """Run ``code`` in a fresh interpreter; ``env`` sets (or, with None, removes) variables."""
    import os
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if k not in env}
    environ.update({k: v for k, v in env.items() if v is not None})
    done = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_package_loads_its_api_on_first_use():
    out = _python(
        "import sys, iqeval\n"
        "before = sorted(m for m in ('numpy', 'iqeval.batch', 'iqeval.runner') if m in sys.modules)\n"
        "from iqeval import *\n"
        "same = iqeval.Run is iqeval.results.Run and run is iqeval.runner.run\n"
        "try:\n"
        "    iqeval.not_a_name\n"
        "    missing = 'found'\n"
        "except AttributeError as exc:\n"
        "    missing = str(exc)\n"
        "print(before, same, missing, sep='|')"
    )
    assert out == "[]|True|module 'iqeval' has no attribute 'not_a_name'"
    # a submodule is an attribute too, imported on first use, as when the package imported them all
    out = _python("import iqeval\nprint(iqeval.report.json_report.__name__, iqeval.gate.parse_threshold('psnr=30'))")
    assert out.startswith("json_report ")
    assert all(getattr(iqeval, name) is not None for name in iqeval.__all__)


def test_the_command_starts_numpy_without_blas_threads():
    """The command's entry point sets OPENBLAS_NUM_THREADS=1 before numpy loads (it does no linear
    algebra, and OpenBLAS's pool costs start-up and spinning CPU); a user's value is kept, and the
    library leaves the environment alone."""
    import sys
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "iqeval"]
    assert script.value == "iqeval.__main__:main"
    code = (
        "import os, sys, {module}\n"
        "import numpy\n"
        "threads = len(os.listdir('/proc/self/task')) if os.path.isdir('/proc/self/task') else -1\n"
        "print(os.environ.get('OPENBLAS_NUM_THREADS'), threads)"
    )
    value, threads = _python(code.format(module="iqeval.__main__"), OPENBLAS_NUM_THREADS=None).split()
    assert value == "1"
    if sys.platform.startswith("linux"):
        assert threads == "1"  # numpy's OpenBLAS started no threads of its own
    assert _python(code.format(module="iqeval.__main__"), OPENBLAS_NUM_THREADS="2").split()[0] == "2"
    assert _python(code.format(module="iqeval"), OPENBLAS_NUM_THREADS=None).split()[0] == "None"


def test_the_command_starts_without_what_only_some_runs_need():
    """A process pool, the HTML report and the maps load when a run asks for them, not at start-up."""
    out = _python(
        "import sys, iqeval.__main__\n"
        "print(sorted(m for m in ('multiprocessing', 'iqeval.html', 'iqeval.maps') if m in sys.modules))"
    )
    assert out == "[]"


def test_the_command_loads_without_garbage_collection_and_runs_with_it():
    """The entry point imports the command with the collector off (its passes over start-up's
    long-lived objects cost 15-20 ms), freezes what was loaded, and turns the collector back on,
    so that a long run's garbage is collected. The library changes none of it."""
    code = (
        "import gc, sys\n"
        "passes = []  # collections once numpy, which only the command's import loads, has started\n"
        "gc.callbacks.append(lambda phase, info: phase == 'start' and 'numpy' in sys.modules and passes.append(1))\n"
        "import {module}\n"
        "print(len(passes), gc.get_freeze_count(), gc.isenabled())"
    )
    passes, frozen, enabled = _python(code.format(module="iqeval.__main__")).split()
    assert (passes, enabled) == ("0", "True")
    assert int(frozen) > 30_000  # numpy's, click's and iqeval's objects
    passes, frozen, enabled = _python(code.format(module="iqeval.cli")).split()
    assert int(passes) > 0 and (frozen, enabled) == ("0", "True")


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc's malloc")
def test_the_command_keeps_freed_image_memory_for_the_next_image():
    """In the command's process an image-sized block (12 MiB) comes from the heap, which keeps it
    when freed for the next image (glibc's thresholds start where its own adaptation ends). By
    default, and with a user's own threshold, glibc maps it from the kernel and unmaps it when
    freed, so the next image's pages fault in afresh. The library changes nothing."""
    code = (
        "import {module}\n"
        "import numpy as np\n"
        "a = np.ones(12 << 20, dtype=np.uint8)\n"
        "with open('/proc/self/maps') as f:\n"
        "    heap = [line.split()[0] for line in f if line.rstrip().endswith('[heap]')]\n"
        "lo, hi = (int(x, 16) for x in heap[0].split('-')) if heap else (0, 0)\n"
        "print(lo <= a.ctypes.data < hi)"
    )
    assert _python(code.format(module="iqeval.__main__")) == "True"
    assert _python(code.format(module="iqeval")) == "False"
    assert _python(code.format(module="iqeval.__main__"), MALLOC_MMAP_THRESHOLD_=str(1 << 20)) == "False"
