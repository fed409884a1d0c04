"""iqeval against a naive skimage loop, side by side in one run (``make bench``).

Generates realistic 1080p RGB PNG pairs (natural images from scikit-image,
resized, with a degraded copy as the prediction), then times:

* naive: for each pair, ``imageio.imread`` both files, then skimage SSIM, PSNR
  and MSE, one pair at a time;
* iqeval with one worker (``--jobs 1``) and with all cores (the default), run as
  the real command in a subprocess, start-up included.

It also measures the peak memory of scoring one 4K RGB pair with skimage's
float64 path and with iqeval's banded engine, each in a fresh process, with
tracemalloc (numpy reports its buffers to it).

Environment: BENCH_PAIRS (default 12), BENCH_DIR (default: a temporary folder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from skimage import data, transform
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from iqeval.parallel import default_jobs

SOURCES = [data.astronaut, data.coffee, data.chelsea, data.rocket, data.immunohistochemistry]


def make_pair(i: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(i)
    img = SOURCES[i % len(SOURCES)]()
    gt = transform.resize(img, shape, order=3, anti_aliasing=False, preserve_range=True)
    gt = np.clip(np.rint(gt + rng.normal(0, 2, gt.shape)), 0, 255).astype(np.uint8)  # sensor-like grain
    pred = np.clip(np.rint(gt + rng.normal(0, 6, gt.shape)), 0, 255).astype(np.uint8)
    return pred, gt


def generate(root: Path, n: int) -> None:
    for side in ("pred", "gt"):
        (root / side).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pred, gt = make_pair(i, (1080, 1920))
        iio.imwrite(root / "pred" / f"{i:04d}.png", pred)
        iio.imwrite(root / "gt" / f"{i:04d}.png", gt)


def naive(root: Path) -> tuple[float, list[tuple[float, float, float]]]:
    start = time.perf_counter()
    out = []
    for path in sorted((root / "gt").glob("*.png")):
        gt = iio.imread(path)
        pred = iio.imread(root / "pred" / path.name)
        s = structural_similarity(gt, pred, data_range=255, channel_axis=-1)
        p = peak_signal_noise_ratio(gt, pred, data_range=255)
        m = mean_squared_error(gt, pred)
        out.append((float(s), float(p), float(m)))
    return time.perf_counter() - start, out


def run_iqeval(root: Path, jobs: int) -> tuple[float, list[tuple[float, float, float]]]:
    report = root / f"report_j{jobs}.json"
    cmd = [
        sys.executable,
        "-m",
        "iqeval",
        "compare",
        str(root / "pred"),
        str(root / "gt"),
        "--quiet",
        "--jobs",
        str(jobs),
        "--json",
        str(report),
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    elapsed = time.perf_counter() - start
    items = json.loads(report.read_text())["items"]
    return elapsed, [(i["scores"]["ssim"], i["scores"]["psnr"], i["scores"]["mse"]) for i in items]


PEAK_SNIPPET = """
import sys, tracemalloc, numpy as np
sys.path.insert(0, {root!r})
from benchmarks.bench import make_pair
pred, gt = make_pair(0, (2160, 3840))
tracemalloc.start()
if {which!r} == "skimage":
    from skimage.metrics import structural_similarity, peak_signal_noise_ratio, mean_squared_error
    structural_similarity(gt, pred, data_range=255, channel_axis=-1)
    peak_signal_noise_ratio(gt, pred, data_range=255)
    mean_squared_error(gt, pred)
else:
    from iqeval import compare_images
    compare_images(pred, gt)
print(tracemalloc.get_traced_memory()[1])
"""


def peak_memory(which: str) -> int:
    code = PEAK_SNIPPET.format(root=str(Path(__file__).resolve().parent.parent), which=which)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.strip().splitlines()[-1])


def main() -> None:
    n = int(os.environ.get("BENCH_PAIRS", "12"))
    keep = os.environ.get("BENCH_DIR")
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="iqeval-bench-"))
    try:
        print(f"generating {n} 1080p RGB PNG pairs in {root} ...", flush=True)
        generate(root, n)
        mp = n * 1920 * 1080 / 1e6
        cores = default_jobs()
        t_naive, ref = naive(root)
        t_one, one = run_iqeval(root, 1)
        t_all, allc = run_iqeval(root, 0)
        worst = max(abs(a - b) for r, o in zip(ref, allc, strict=True) for a, b in zip(r[:2], o[:2], strict=True))
        assert one == allc, "parallel and serial runs differ"
        print(f"\n{n} pairs of 1920x1080 RGB, {cores} cores")
        print(f"{'run':<28}{'seconds':>9}{'pairs/s':>10}{'MP/s':>9}{'vs naive':>10}")
        for name, t in (
            ("naive skimage loop", t_naive),
            ("iqeval --jobs 1", t_one),
            (f"iqeval (all {cores} cores)", t_all),
        ):
            print(f"{name:<28}{t:>9.2f}{n / t:>10.2f}{mp / t:>9.1f}{t_naive / t:>9.2f}x")
        print(f"largest SSIM/PSNR difference from skimage: {worst:.2e}")
        sk, iq = peak_memory("skimage"), peak_memory("iqeval")
        print("\npeak memory to score one 3840x2160 RGB pair, beyond its two decoded uint8 images (tracemalloc):")
        print(f"  skimage float64 path {sk / 2**20:8.0f} MiB")
        print(f"  iqeval fast engine   {iq / 2**20:8.0f} MiB   ({iq / sk:.2f} of skimage's)")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
