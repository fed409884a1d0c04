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

Two in-process cases follow:

* the training-loop batch: 64 float32 images of 256x256x3 scored by
  ``iqeval.score`` (one thread, all cores) against a plain loop over
  ``skimage.metrics`` (SSIM, PSNR, MSE per image);
* the engine grid: ``compare_images`` with ``engine="fast"`` against
  ``engine="skimage"`` for each dtype, size and window, the fast engine's
  promise being never to be the slower one (the ratio column).

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


def best_of(fn: object, repeat: int = 3) -> float:
    """The best wall time of ``repeat`` calls (after one warm-up call)."""
    assert callable(fn)
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def batch_case() -> None:
    import iqeval

    rng = np.random.default_rng(0)
    gt = np.stack([transform.resize(SOURCES[i % 5](), (256, 256), anti_aliasing=True) for i in range(64)])
    gt = gt.astype(np.float32)
    pred = np.clip(gt + rng.normal(0, 0.03, gt.shape), 0, 1).astype(np.float32)

    def loop() -> None:
        for i in range(len(gt)):
            structural_similarity(gt[i], pred[i], data_range=1.0, channel_axis=-1)
            peak_signal_noise_ratio(gt[i], pred[i], data_range=1.0)
            mean_squared_error(gt[i], pred[i])

    t_loop = best_of(loop)
    t_one = best_of(lambda: iqeval.score(pred, gt, layout="NHWC", jobs=1))
    t_all = best_of(lambda: iqeval.score(pred, gt, layout="NHWC"))
    s = iqeval.score(pred, gt, layout="NHWC")
    ref = [
        structural_similarity(gt[i].astype(float), pred[i].astype(float), data_range=1.0, channel_axis=-1)
        for i in range(4)
    ]
    worst = max(abs(a - b) for a, b in zip(ref, s["ssim"][:4], strict=True))
    print("\nbatch: 64 float32 images of 256x256x3 (iqeval.score, layout NHWC)")
    print(f"{'run':<34}{'seconds':>9}{'vs loop':>10}")
    for name, t in (
        ("plain loop over skimage.metrics", t_loop),
        ("iqeval.score, one thread", t_one),
        (f"iqeval.score, all {default_jobs()} cores", t_all),
    ):
        print(f"{name:<34}{t:>9.3f}{t_loop / t:>9.2f}x")
    print(f"largest SSIM difference from skimage on float64: {worst:.2e}")


def engine_grid() -> None:
    from iqeval import compare_images

    print("\nfast engine against the skimage engine (compare_images, best of 3, ms)")
    print(f"{'dtype':<9}{'size':>10}{'window':>10}{'fast':>9}{'skimage':>9}{'ratio':>8}")
    rng = np.random.default_rng(1)
    for side in (32, 256, 1024):
        base = transform.resize(data.astronaut(), (side, side), anti_aliasing=True)
        for dtype in (np.uint8, np.uint16, np.float32):
            top = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
            gt = (base * top).astype(dtype) if dtype != np.float32 else base.astype(np.float32)
            noise = rng.normal(0, 0.02 * top, gt.shape)
            pred = np.clip(gt + noise, 0, top).astype(dtype)
            for kernel in ("uniform", "gaussian"):
                t_fast, t_sk = (
                    best_of(lambda e=engine, p=pred, g=gt, k=kernel: compare_images(p, g, ssim_kernel=k, engine=e))
                    for engine in ("fast", "skimage")
                )
                name = np.dtype(dtype).name
                print(
                    f"{name:<9}{f'{side}x{side}':>10}{kernel:>10}{t_fast * 1e3:>9.2f}{t_sk * 1e3:>9.2f}"
                    f"{t_sk / t_fast:>7.1f}x"
                )


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
        batch_case()
        engine_grid()
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
