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

Then the table of issue #15 (every convention, one core and all, against the
naive loop of the same window, FFmpeg's filters one process per pair, and the
decode-only time of the same files) and the video case of issue #14: one
1080p H.264 pair encoded here, iqeval against FFmpeg's ssim and psnr filters
(Debian's ffmpeg executable, or the same filters through PyAV), in frames/s,
with peak resident memory.

Environment: BENCH_PAIRS (default 8), BENCH_FRAMES (default 300), BENCH_DIR
(default: a temporary folder).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


def run_iqeval(root: Path, jobs: int, *extra: str) -> tuple[float, list[tuple[float, float, float]]]:
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
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    elapsed = time.perf_counter() - start
    items = json.loads(report.read_text())["items"]
    return elapsed, [tuple(i["scores"].get(m, math.nan) for m in ("ssim", "psnr", "mse")) for i in items]


def naive_gaussian(root: Path, sr: bool = False) -> float:
    """The naive loop with skimage's Gaussian window (and for ``sr``: on BT.601 Y, 4-pixel border cut)."""
    start = time.perf_counter()
    for path in sorted((root / "gt").glob("*.png")):
        gt = iio.imread(path).astype(np.float64)
        pred = iio.imread(root / "pred" / path.name).astype(np.float64)
        if sr:
            w = np.array([65.481, 128.553, 24.966]) / 255.0
            gt, pred = (a @ w + 16.0 for a in (gt, pred))
            gt, pred = gt[4:-4, 4:-4], pred[4:-4, 4:-4]
        axis = None if sr else -1
        structural_similarity(
            gt, pred, data_range=255, channel_axis=axis, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        peak_signal_noise_ratio(gt, pred, data_range=255)
    return time.perf_counter() - start


def decode_only(root: Path, threads: int, reader: Callable[[Path], object] = iio.imread) -> float:
    """Read every PNG of both sides and nothing else: the floor any scorer stands on (imageio's
    reader, or ``reader``)."""
    from concurrent.futures import ThreadPoolExecutor

    paths = sorted((root / "gt").glob("*.png")) + sorted((root / "pred").glob("*.png"))
    reader(paths[0])  # a reader's one-time set-up (iqeval's loads its compiled kernels) is not decoding
    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(reader, paths))
    return time.perf_counter() - start


def ffmpeg_pairs(root: Path) -> float | None:
    """FFmpeg's ssim and psnr filters, one process per pair (None without an ffmpeg executable)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    start = time.perf_counter()
    for path in sorted((root / "gt").glob("*.png")):
        cmd = [exe, "-v", "error", "-nostats", "-i", str(root / "pred" / path.name), "-i", str(path)]
        graph = "[0:v]split[a][b];[1:v]split[c][d];[a][c]ssim;[b][d]psnr"
        subprocess.run([*cmd, "-filter_complex", graph, "-f", "null", "-"], check=True)
    return time.perf_counter() - start


def least_of(rounds: int, fn: Callable[[], float]) -> float:
    """The least of ``rounds`` timings that ``fn`` returns: load from elsewhere on a shared machine only
    ever adds time."""
    return min(fn() for _ in range(rounds))


def image_table(root: Path, n: int, rounds: int = 3) -> None:
    """#15's table: every convention row, one core and all, against the naive loop, FFmpeg and
    decode-only; each row the best of ``rounds`` runs."""
    cores = default_jobs()
    t_naive_u = least_of(rounds, lambda: naive(root)[0])
    t_naive_g = least_of(rounds, lambda: naive_gaussian(root))
    t_naive_sr = least_of(rounds, lambda: naive_gaussian(root, sr=True))
    rows: list[tuple[str, float, float | None]] = [
        ("naive loop, imageio + skimage (uniform 7x7)", t_naive_u, t_naive_u)
    ]
    cases = [
        ("uniform", (), t_naive_u),
        ("gaussian", ("--ssim-kernel", "gaussian"), t_naive_g),
        ("SR: y, gaussian, crop 4", ("--color", "y", "--ssim-kernel", "gaussian", "--crop-border", "4"), t_naive_sr),
        ("MS-SSIM + PSNR", ("--metrics", "msssim,psnr"), t_naive_g),
    ]
    # start-up: the same command on one 256x256 pair, so the rate past it (what thousands of pairs see) shows
    one = root / "one"
    for side, image in zip(("pred", "gt"), make_pair(0, (256, 256)), strict=True):
        (one / side).mkdir(parents=True, exist_ok=True)
        iio.imwrite(one / side / "0000.png", image)
    past: dict[str, float] = {}
    for name, extra, ref in cases:
        if name == "gaussian":
            rows.append(("naive loop, Gaussian window", t_naive_g, t_naive_g))
        if name.startswith("SR"):
            rows.append(("naive loop, SR convention", t_naive_sr, t_naive_sr))
        for jobs in (1, 0):

            def on(tree: Path, jobs: int = jobs, extra: tuple[str, ...] = extra) -> Callable[[], float]:
                return lambda: run_iqeval(tree, jobs, *extra)[0]

            label = f"iqeval {name}, {'--jobs 1' if jobs == 1 else f'all {cores} cores'}"
            t = least_of(rounds, on(root))
            rows.append((label, t, ref))
            past[label] = ref / max(1e-9, t - least_of(rounds, on(one)))
    if shutil.which("ffmpeg") is not None:
        t_ff = least_of(rounds, lambda: ffmpeg_pairs(root) or 0.0)
        rows.append(("FFmpeg ssim + psnr filters, one process per pair", t_ff, t_naive_u))
    t_dec1 = least_of(rounds, lambda: decode_only(root, 1))
    t_dec = least_of(rounds, lambda: decode_only(root, cores))
    rows.append(("decode only (imageio), one thread", t_dec1, None))
    rows.append((f"decode only (imageio), {cores} threads", t_dec, None))
    from iqeval.io import read_image

    t_own1 = least_of(rounds, lambda: decode_only(root, 1, read_image))
    t_own = least_of(rounds, lambda: decode_only(root, cores, read_image))
    rows.append(("decode only (iqeval's reader), one thread", t_own1, None))
    rows.append((f"decode only (iqeval's reader), {cores} threads", t_own, None))
    print(
        f"\n{n} pairs of 1920x1080 RGB PNG, {cores} cores, best of {rounds} runs each "
        "(the naive row of the same window is the reference)"
    )
    head = f"{'run':<52}{'seconds':>9}{'pairs/s':>9}{'vs naive':>10}{'vs decode':>11}{'vs own':>8}{'past start-up':>15}"
    print(head)
    for name, seconds, reference in rows:
        vs = f"{reference / seconds:>9.2f}x" if reference else f"{'':>10}"
        rate = f"{past[name]:>14.2f}x" if name in past else ""
        print(
            f"{name:<52}{seconds:>9.2f}{n / seconds:>9.2f}{vs}{seconds / t_dec:>10.2f}x{seconds / t_own:>7.2f}x{rate}"
        )
    print("(vs decode: how many times the decode-only time of the same files on all cores a run takes, with")
    print(" imageio's reader; vs own: with iqeval's reader, in-process and warm; past start-up: vs naive once")
    print(" the command's start-up, the same command on one 256x256 pair, is taken off)")


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
    print("(uniform, gaussian: skimage's SSIM with that window; the others: a convention's SSIM variant)")
    print(f"{'dtype':<9}{'size':>10}{'option':>14}{'fast':>9}{'skimage':>9}{'ratio':>8}")
    rng = np.random.default_rng(1)
    options: dict[str, dict[str, str]] = {
        "uniform": {"ssim_kernel": "uniform"},
        "gaussian": {"ssim_kernel": "gaussian"},
        "torchmetrics": {"convention": "torchmetrics"},  # mirrored borders kept
        "piq": {"convention": "piq"},  # downsampled by round(side / 256)
        "pyiqa": {"convention": "pyiqa"},  # Y of YIQ, contrast clipped
    }
    for side in (32, 256, 1024):
        base = transform.resize(data.astronaut(), (side, side), anti_aliasing=True)
        for dtype in (np.uint8, np.uint16, np.float32):
            top = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
            gt = (base * top).astype(dtype) if dtype != np.float32 else base.astype(np.float32)
            noise = rng.normal(0, 0.02 * top, gt.shape)
            pred = np.clip(gt + noise, 0, top).astype(dtype)
            for option, kwargs in options.items():
                t_fast, t_sk = (
                    best_of(lambda e=engine, p=pred, g=gt, kw=kwargs: compare_images(p, g, engine=e, **kw))
                    for engine in ("fast", "skimage")
                )
                name = np.dtype(dtype).name
                print(
                    f"{name:<9}{f'{side}x{side}':>10}{option:>14}{t_fast * 1e3:>9.2f}{t_sk * 1e3:>9.2f}"
                    f"{t_sk / t_fast:>7.1f}x"
                )


# runs a command and writes its peak resident memory (its own, not this large process's: a child
# forked from here would count the pages it shared with us before exec)
_WRAPPER = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[2:]).returncode; "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); sys.exit(code)"
)


def _timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak resident memory (bytes) of one command."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as out:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _WRAPPER, out.name, *cmd])
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"failed: {' '.join(cmd)}")
        return elapsed, int(Path(out.name).read_text()) * 1024


def ffmpeg_video(pred: Path, gt: Path) -> tuple[str, float]:
    """FFmpeg's ssim and psnr filters on two videos: Debian's executable, else the same filters through PyAV."""
    exe = shutil.which("ffmpeg")
    if exe is not None:
        graph = "[0:v]split[a][b];[1:v]split[c][d];[a][c]ssim;[b][d]psnr"
        cmd = [exe, "-v", "error", "-nostats", "-i", str(pred), "-i", str(gt), "-filter_complex", graph]
        return "FFmpeg executable", _timed([*cmd, "-f", "null", "-"])[0]
    from .clip import ffmpeg_filter_frames

    start = time.perf_counter()
    for _ in ffmpeg_filter_frames(pred, gt, threaded=True):
        pass
    return "FFmpeg filters through PyAV", time.perf_counter() - start


def video_case(root: Path, frames: int, rounds: int = 5) -> None:
    """#14: one 1080p H.264 pair, iqeval against FFmpeg's ssim + psnr filters, frames/s and peak memory.

    Every command runs ``rounds`` times, the rounds interleaved so that each
    tool meets the same load on a shared machine; the best round counts (load
    from elsewhere only ever adds time). Five rounds, not three: the two tools
    are within a few percent of each other, about the spread of three rounds
    on a loaded machine. Start-up is the same command on a
    2-frame clip of the same size, so the steady rate can be read off.
    """
    import av

    from .clip import encode, make_clip

    print(f"\nencoding a {frames}-frame 1080p H.264 pair (x264, crf 16 and 32) ...", flush=True)
    pred, gt = make_clip(root / "video", frames)
    tiny_pred, tiny_gt = root / "video" / "tiny_pred.mp4", root / "video" / "tiny_gt.mp4"
    if not tiny_gt.exists():
        encode(tiny_gt, 2, 16)
        encode(tiny_pred, 2, 32)
    cores = default_jobs()
    report = root / "video.json"
    iqeval_runs = [
        (f"iqeval --color y (Y plane, skimage SSIM), all {cores} cores", ["--color", "y"]),
        ("iqeval --color y, --jobs 1", ["--color", "y", "--jobs", "1"]),
        (f"iqeval --convention ffmpeg (its 8x8 SSIM, Y U V), all {cores} cores", ["--convention", "ffmpeg"]),
        (f"iqeval RGB (the default), all {cores} cores", []),
    ]
    name = "FFmpeg executable" if shutil.which("ffmpeg") else "FFmpeg filters through PyAV"
    labels = [f"{name}: ssim + psnr", *(label for label, _ in iqeval_runs)]
    best: dict[str, tuple[float, float, int]] = {}  # label: (seconds, start-up seconds, peak RSS)

    def keep(label: str, t: float, t0: float, rss: int) -> None:
        old = best.get(label)
        best[label] = (min(t, old[0]), min(t0, old[1]), max(rss, old[2])) if old else (t, t0, rss)

    for _ in range(rounds):
        keep(labels[0], ffmpeg_video(pred, gt)[1], ffmpeg_video(tiny_pred, tiny_gt)[1], 0)
        for label, extra in iqeval_runs:
            cmd = [sys.executable, "-m", "iqeval", "compare", "--quiet", "--metrics", "ssim,psnr", *extra]
            json_out = ["--json", str(report)] if extra == ["--color", "y"] else []
            t, rss = _timed([*cmd, *json_out, str(pred), str(gt)])
            keep(label, t, _timed([*cmd, str(tiny_pred), str(tiny_gt)])[0], rss)
    t_ff, t_ff0, _ = best[labels[0]]
    steady_ff = (frames - 2) / (t_ff - t_ff0)
    print(f"\none {frames}-frame 1920x1080 H.264 pair, {cores} cores, best of {rounds} interleaved rounds")
    print(
        f"{'run':<62}{'seconds':>9}{'frames/s':>10}{'vs FFmpeg':>11}{'start-up':>10}{'steady':>8}{'vs FFmpeg':>11}{'peak RSS':>10}"
    )
    for label in labels:
        t, t0, rss = best[label]
        mem = f"{rss / 2**20:>7.0f} MiB" if rss else ""
        steady = (frames - 2) / (t - t0)
        print(
            f"{label:<62}{t:>9.2f}{frames / t:>10.1f}{t_ff / t:>10.2f}x{t0:>9.2f}s{steady:>8.1f}"
            f"{steady / steady_ff:>10.2f}x{mem:>10}"
        )
    print("(start-up: the same command on a 2-frame clip; steady: frames/s once started)")
    # iqeval's number is skimage's definition on the Y plane: check frame 0 decoded independently
    doc = json.loads(report.read_text())
    with av.open(str(pred)) as cp, av.open(str(gt)) as cg:
        fp = next(cp.decode(video=0)).to_ndarray()[:1080]  # yuv420p as one array: Y on top
        fg = next(cg.decode(video=0)).to_ndarray()[:1080]
    ref = structural_similarity(fp, fg, data_range=255)
    got = float(doc["items"][0]["frames"]["ssim"][0])
    print(
        f"frame 0 SSIM-Y: iqeval {got:.12f}, skimage on PyAV's own decode {ref:.12f} (difference {abs(got - ref):.1e})"
    )


def overhead_case(root: Path) -> None:
    """#15: what one item costs beyond its pixels (process start, imports, pool, pickling), and the
    peak resident memory of one 4K and one 8K RGB pair, each run as the real command."""
    small = root / "small"
    for side in ("pred", "gt"):
        (small / side).mkdir(parents=True, exist_ok=True)
    n = 200
    rng = np.random.default_rng(7)
    for i in range(n):
        a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        iio.imwrite(small / "gt" / f"{i:04d}.png", a)
        iio.imwrite(small / "pred" / f"{i:04d}.png", np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8))
    one = [
        sys.executable,
        "-m",
        "iqeval",
        "compare",
        str(small / "pred" / "0000.png"),
        str(small / "gt" / "0000.png"),
        "-q",
    ]
    t_start = min(_timed(one)[0] for _ in range(3))
    print("\nper-item overhead (200 pairs of 16x16 PNG: almost no pixels)")
    print(f"  start-up of the command (one pair): {t_start:.2f} s")
    for jobs in (1, 0):
        cmd = [
            sys.executable,
            "-m",
            "iqeval",
            "compare",
            str(small / "pred"),
            str(small / "gt"),
            "-q",
            "--jobs",
            str(jobs),
        ]
        t = min(_timed(cmd)[0] for _ in range(3))  # best of 3, as the start-up it is set against
        label = "--jobs 1" if jobs == 1 else f"all {default_jobs()} cores"
        print(f"  {label:<14} {t:.2f} s in all, {(t - t_start) / n * 1e3:.2f} ms per item beyond start-up")
    print("\npeak resident memory of the command on one RGB pair (decoding included)")
    for name, shape in (("4K", (2160, 3840)), ("8K", (4320, 7680))):
        pred, gt = make_pair(1, shape)
        iio.imwrite(root / f"{name}_pred.png", pred)
        iio.imwrite(root / f"{name}_gt.png", gt)
        for extra in ((), ("--ssim-kernel", "gaussian")):
            cmd = [
                sys.executable,
                "-m",
                "iqeval",
                "compare",
                str(root / f"{name}_pred.png"),
                str(root / f"{name}_gt.png"),
                "-q",
            ]
            t, rss = _timed([*cmd, *extra])
            what = "gaussian" if extra else "uniform"
            pixels = 2 * pred.nbytes / 2**20
            print(
                f"  {name} {what:<9} {rss / 2**20:6.0f} MiB peak, {t:5.2f} s (the two decoded images: {pixels:.0f} MiB)"
            )


def main() -> None:
    n = int(os.environ.get("BENCH_PAIRS", "8"))
    keep = os.environ.get("BENCH_DIR")
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="iqeval-bench-"))
    # an installed iqeval has its bytecode compiled (pip does it); a source tree run with
    # PYTHONDONTWRITEBYTECODE set would compile every module on every start instead
    import compileall

    import iqeval

    compileall.compile_dir(Path(iqeval.__file__).parent, quiet=1)
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
        image_table(root, n)
        overhead_case(root)
        video_case(root, int(os.environ.get("BENCH_FRAMES", "300")))
        batch_case()
        engine_grid()
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
