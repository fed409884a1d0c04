"""Video: native YUV planes at the file's bit depth, the ffmpeg convention against FFmpeg's own
filters (run live through PyAV), raw .yuv and .y4m input, alignment, pooling, and one video
split across threads.

The clips are made here from planes generated in numpy, so the reference values come from
skimage on the very planes that were written, not from anything iqeval decoded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner
from skimage import data, transform
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmarks.clip import ffmpeg_filter_frames
from iqeval.cli import cli
from iqeval.evaluate import CompareConfig
from iqeval.io import RawFormat, video_format
from iqeval.prepare import Options
from iqeval.runner import run as run_config

H, W = 72, 96


def make_planes(n: int, pix_fmt: str, seed: int, noise: float = 0.0, shift: int = 0) -> list[tuple[np.ndarray, ...]]:
    """``n`` frames of Y, U, V planes: a slow pan over a photograph, plus noise (the prediction)."""
    bits = 10 if "10" in pix_fmt else 8
    top = (1 << bits) - 1
    sub = 2 if pix_fmt.startswith("yuv420") else 1
    rng = np.random.default_rng(seed)
    photo = transform.resize(data.astronaut(), (H + 40, W + 40 + n + abs(shift)), anti_aliasing=True)
    frames = []
    for i in range(n):
        x0 = i + shift if shift >= 0 else i
        crop = photo[20:-20, x0 : x0 + W] if x0 + W <= photo.shape[1] else photo[20:-20, -W:]
        y = crop @ np.array([0.299, 0.587, 0.114]) * (top * 0.8) + top * 0.06
        u = transform.resize(crop[..., 2] - crop[..., 1], (H // sub, W // sub), anti_aliasing=True) * top * 0.4
        v = transform.resize(crop[..., 0] - crop[..., 1], (H // sub, W // sub), anti_aliasing=True) * top * 0.4
        planes = []
        for p, off in ((y, 0.0), (u, top / 2), (v, top / 2)):
            p = p + off + rng.normal(0, noise * top / 255, p.shape)
            planes.append(np.clip(np.rint(p), 0, top).astype(np.uint8 if bits == 8 else np.uint16))
        frames.append(tuple(planes))
    return frames


def write_raw(path: Path, frames: list[tuple[np.ndarray, ...]]) -> None:
    with open(path, "wb") as f:
        for planes in frames:
            for p in planes:
                f.write(p.astype(p.dtype.newbyteorder("<")).tobytes())


def write_y4m(path: Path, frames: list[tuple[np.ndarray, ...]], pix_fmt: str) -> None:
    colour = {"yuv420p": "420jpeg", "yuv444p": "444", "yuv420p10le": "420p10", "yuv444p10le": "444p10"}[pix_fmt]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{W} H{H} F25:1 Ip A1:1 C{colour}\n".encode())
        for planes in frames:
            f.write(b"FRAME\n")
            for p in planes:
                f.write(p.astype(p.dtype.newbyteorder("<")).tobytes())


def write_ffv1(path: Path, frames: list[tuple[np.ndarray, ...]], pix_fmt: str, rate: int = 25) -> None:
    """A lossless FFV1 video of exactly these planes."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=rate)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        for planes in frames:
            frame = av.VideoFrame(W, H, pix_fmt)
            for plane, a in zip(frame.planes, planes, strict=True):
                rows = np.zeros((plane.height, plane.line_size // a.itemsize), dtype=a.dtype)
                rows[:, : a.shape[1]] = a
                plane.update(rows.tobytes())
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def report(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "r.json"
    result = run("compare", *args, "--json", str(out), "-q")
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def frame_rows(doc: dict) -> list[dict]:
    """Each frame's values (strict JSON writes inf as "inf")."""
    (item,) = doc["items"]
    frames = item["frames"]
    n = len(next(iter(frames.values())))
    return [{m: float(frames[m][i]) for m in frames} for i in range(n)]


@pytest.fixture(params=["yuv420p", "yuv444p", "yuv420p10le", "yuv444p10le"])
def clip(request, tmp_path):
    pix_fmt = request.param
    gt = make_planes(4, pix_fmt, 0)
    pred = make_planes(4, pix_fmt, 1, noise=6.0)
    write_ffv1(tmp_path / "pred.mkv", pred, pix_fmt)
    write_ffv1(tmp_path / "gt.mkv", gt, pix_fmt)
    return pix_fmt, pred, gt


def test_native_planes_match_skimage_at_the_files_bit_depth(tmp_path, clip):
    pix_fmt, pred, gt = clip
    top = 1023 if "10" in pix_fmt else 255
    p, g = str(tmp_path / "pred.mkv"), str(tmp_path / "gt.mkv")
    y_doc = report(tmp_path, p, g, "--color", "y", "--metrics", "ssim,psnr,mse")
    info = y_doc["items"][0]["info"]
    assert info["data_range"] == top and info["color"] == "y"
    assert info["data_range_source"] == f"bit depth {10 if top == 1023 else 8} ({pix_fmt})"
    for row, pp, gp in zip(frame_rows(y_doc), pred, gt, strict=True):
        assert row["ssim"] == pytest.approx(structural_similarity(pp[0], gp[0], data_range=top), abs=1e-12)
        assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(gp[0], pp[0], data_range=top), abs=1e-9)
        assert row["mse"] == pytest.approx(np.mean((pp[0].astype(float) - gp[0]) ** 2), rel=1e-12)

    yuv_doc = report(tmp_path, p, g, "--color", "yuv", "--metrics", "ssim,psnr")
    for row, pp, gp in zip(frame_rows(yuv_doc), pred, gt, strict=True):
        areas = np.array([a.size for a in pp], dtype=float)
        w = areas / areas.sum()
        ssim = sum(wk * structural_similarity(a, b, data_range=top) for wk, a, b in zip(w, pp, gp, strict=True))
        mse = sum(wk * np.mean((a.astype(float) - b) ** 2) for wk, a, b in zip(w, pp, gp, strict=True))
        assert row["ssim"] == pytest.approx(ssim, abs=1e-12)
        assert row["psnr"] == pytest.approx(10 * math.log10(top**2 / mse), abs=1e-9)


def ffmpeg_filters(pred: Path, gt: Path) -> list[dict[str, float]]:
    """Per-frame values of FFmpeg's ssim and psnr filters on two videos, run through PyAV."""
    return [{k: float(v) for k, v in meta.items()} for meta in ffmpeg_filter_frames(pred, gt)]


def test_ffmpeg_convention_reproduces_ffmpegs_filters_live(tmp_path, clip):
    _ = clip  # the clip files are in tmp_path
    p, g = tmp_path / "pred.mkv", tmp_path / "gt.mkv"
    theirs = ffmpeg_filters(p, g)
    doc = report(tmp_path, str(p), str(g), "--convention", "ffmpeg", "--metrics", "ssim,psnr")
    ours = frame_rows(doc)
    assert len(ours) == len(theirs) == 4
    for mine, ref in zip(ours, theirs, strict=True):
        # FFmpeg prints 6 decimals, sums 8-bit SSIM in float32 and keeps each plane's MSE in
        # float32 (574.501282 for 574.5013021): its PSNR is about 1e-6 dB from the exact one
        assert mine["ssim"] == pytest.approx(ref["lavfi.ssim.All"], abs=2e-6)
        assert mine["psnr"] == pytest.approx(ref["lavfi.psnr.psnr_avg"], abs=1e-5)
    y = report(tmp_path, str(p), str(g), "--convention", "ffmpeg", "--color", "y", "--metrics", "ssim,psnr")
    for mine, ref in zip(frame_rows(y), theirs, strict=True):
        assert mine["ssim"] == pytest.approx(ref["lavfi.ssim.Y"], abs=2e-6)
        assert mine["psnr"] == pytest.approx(ref["lavfi.psnr.psnr.y"], abs=1e-5)


def test_ffmpeg_ssim_is_its_formula_written_out():
    from iqeval.metrics import ffmpeg_ssim

    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (21, 30)).astype(np.uint8)
    y = np.clip(x + rng.integers(-20, 21, x.shape), 0, 255).astype(np.uint8)
    c1, c2 = round(0.0001 * 255 * 255 * 64), round(0.0009 * 255 * 255 * 64 * 63)  # 416, 235963
    values = []
    for by in range(21 // 4 - 1):
        for bx in range(30 // 4 - 1):
            a = x[4 * by : 4 * by + 8, 4 * bx : 4 * bx + 8].astype(np.int64)
            b = y[4 * by : 4 * by + 8, 4 * bx : 4 * bx + 8].astype(np.int64)
            s1, s2, ss, s12 = a.sum(), b.sum(), (a * a + b * b).sum(), (a * b).sum()
            var, cov = ss * 64 - s1 * s1 - s2 * s2, s12 * 64 - s1 * s2
            values.append((2 * s1 * s2 + c1) * (2 * cov + c2) / ((s1 * s1 + s2 * s2 + c1) * (var + c2)))
    assert ffmpeg_ssim(x, y, 255) == pytest.approx(np.mean(values), abs=1e-15)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv420p10le"])
def test_raw_yuv_and_y4m_read_as_written(tmp_path, pix_fmt):
    top = 1023 if "10" in pix_fmt else 255
    gt, pred = make_planes(3, pix_fmt, 0), make_planes(3, pix_fmt, 1, noise=5.0)
    write_raw(tmp_path / "gt.yuv", gt)
    write_raw(tmp_path / "pred.yuv", pred)
    write_y4m(tmp_path / "gt.y4m", gt, pix_fmt)
    write_y4m(tmp_path / "pred.y4m", pred, pix_fmt)
    size = f"{W}x{H}"
    raw = report(
        tmp_path,
        str(tmp_path / "pred.yuv"),
        str(tmp_path / "gt.yuv"),
        "--video-size",
        size,
        "--pix-fmt",
        pix_fmt,
        "--color",
        "y",
        "--metrics",
        "ssim,psnr",
    )
    y4m = report(
        tmp_path, str(tmp_path / "pred.y4m"), str(tmp_path / "gt.y4m"), "--color", "y", "--metrics", "ssim,psnr"
    )
    assert raw["config"]["raw"] == f"{size} {pix_fmt}"
    # the header facts: a raw file's frame count is its size over one frame's bytes
    assert video_format(tmp_path / "gt.yuv", RawFormat.parse(size, pix_fmt)).frames == 3
    assert video_format(tmp_path / "gt.y4m").pix_fmt == pix_fmt
    for rows in (frame_rows(raw), frame_rows(y4m)):
        assert len(rows) == 3
        for row, pp, gp in zip(rows, pred, gt, strict=True):
            assert row["ssim"] == pytest.approx(structural_similarity(pp[0], gp[0], data_range=top), abs=1e-12)
            assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(gp[0], pp[0], data_range=top), abs=1e-9)


def test_raw_yuv_errors_name_the_file_and_reason(tmp_path):
    gt = make_planes(2, "yuv420p", 0)
    write_raw(tmp_path / "gt.yuv", gt)
    write_raw(tmp_path / "pred.yuv", gt)
    with open(tmp_path / "pred.yuv", "ab") as f:
        f.write(b"\0" * 100)
    pred, g = str(tmp_path / "pred.yuv"), str(tmp_path / "gt.yuv")
    result = run("compare", pred, g, "--video-size", f"{W}x{H}", "--pix-fmt", "yuv420p", "-q")
    assert result.exit_code == 1
    frame = W * H * 3 // 2
    assert (
        f"{pred}: {2 * frame + 100} bytes is not a whole number of {W}x{H} yuv420p frames ({frame} bytes each; 100 bytes left over)"
        in result.output
    )
    result = run("compare", g, g)
    assert result.exit_code == 1
    assert f"{g}: a raw video has no header; give its --video-size WxH and --pix-fmt" in result.output
    assert run("compare", g, g, "--video-size", "96").exit_code == 2
    result = run("compare", g, g, "--video-size", "96x72", "--pix-fmt", "rgb24")
    assert result.exit_code == 2 and "not a planar YUV or gray format" in result.output
    result = run("compare", g, g, "--video-size", "96x72", "--pix-fmt", "yuv420p", "--color", "yuv", "-q")
    assert result.exit_code == 0


def test_frame_rate_mismatch_and_empty_video_are_one_line_errors(tmp_path):
    frames = make_planes(2, "yuv420p", 0)
    write_ffv1(tmp_path / "a.mkv", frames, "yuv420p", rate=25)
    write_ffv1(tmp_path / "b.mkv", frames, "yuv420p", rate=30)
    result = run("compare", str(tmp_path / "a.mkv"), str(tmp_path / "b.mkv"))
    assert result.exit_code == 1
    assert f"frame rates differ: {tmp_path / 'a.mkv'} is 25 fps but {tmp_path / 'b.mkv'} is 30 fps" in result.output
    write_y4m(tmp_path / "empty.y4m", [], "yuv420p")  # a header and no frame
    write_y4m(tmp_path / "two.y4m", frames, "yuv420p")
    for color in ("y", "rgb"):
        result = run("compare", str(tmp_path / "empty.y4m"), str(tmp_path / "two.y4m"), "--color", color)
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        assert f"{tmp_path / 'empty.y4m'}: cannot read video: no frames" in result.output


def test_bit_depths_that_differ_are_refused_for_planes(tmp_path):
    write_ffv1(tmp_path / "a.mkv", make_planes(2, "yuv420p", 0), "yuv420p")
    write_ffv1(tmp_path / "b.mkv", make_planes(2, "yuv420p10le", 0), "yuv420p10le")
    result = run("compare", str(tmp_path / "a.mkv"), str(tmp_path / "b.mkv"), "--color", "y")
    assert result.exit_code == 1
    assert "bit depths differ" in result.output and "yuv420p10le, 10-bit" in result.output
    result = run("compare", str(tmp_path / "a.mkv"), str(tmp_path / "b.mkv"), "-q")  # RGB: both rescaled
    assert result.exit_code == 0


def test_yuv_colour_on_images_is_refused(tmp_path, write_png):
    a = write_png("a.png", np.zeros((16, 16, 3), np.uint8))
    result = run("compare", str(a), str(a), "--color", "yuv")
    assert result.exit_code == 1
    assert (
        f"--color yuv scores the planes of planar YUV videos; {a} is an image: pass --color rgb or --color y"
        in result.output
    )


def test_align_auto_finds_the_shift(tmp_path):
    gt = make_planes(14, "yuv420p", 0)
    pred = gt[3:] + make_planes(3, "yuv420p", 5)  # the prediction starts 3 frames later
    write_ffv1(tmp_path / "gt.mkv", gt, "yuv420p")
    write_ffv1(tmp_path / "pred.mkv", pred, "yuv420p")
    p, g = str(tmp_path / "pred.mkv"), str(tmp_path / "gt.mkv")
    doc = report(tmp_path, p, g, "--align", "auto", "--truncate-frames", "--metrics", "psnr")
    info = doc["items"][0]["info"]
    assert info["frame_offset"] == 3
    assert doc["config"]["align"] == 5
    assert "frame offset +3 found by align='auto' (searched +0 ± 5)" in info["conversions"]
    rows = frame_rows(doc)
    assert len(rows) == 11 and all(r["psnr"] == math.inf for r in rows[:8])
    doc = report(tmp_path, g, p, "--align", "auto", "--truncate-frames", "--metrics", "psnr")
    assert doc["items"][0]["info"]["frame_offset"] == -3
    narrow = report(tmp_path, p, g, "--align", "auto", "--align-window", "1", "--truncate-frames", "--metrics", "psnr")
    assert narrow["items"][0]["info"]["frame_offset"] != 3  # outside the stated window


def test_pooling_choices_are_their_formulas(tmp_path):
    gt = make_planes(6, "yuv420p", 0)
    pred = make_planes(6, "yuv420p", 1, noise=8.0)
    write_ffv1(tmp_path / "gt.mkv", gt, "yuv420p")
    write_ffv1(tmp_path / "pred.mkv", pred, "yuv420p")
    p, g = str(tmp_path / "pred.mkv"), str(tmp_path / "gt.mkv")
    base = report(tmp_path, p, g, "--color", "y", "--metrics", "ssim,psnr,mse")
    frames = np.array([[r[m] for m in ("ssim", "psnr", "mse")] for r in frame_rows(base)])
    expected = {
        "harmonic": 1 / np.mean(1 / (1 + frames), axis=0) - 1,
        "min": frames.min(axis=0),
        "median": np.median(frames, axis=0),
        "p5": np.percentile(frames, 5, axis=0),
    }
    for pool, values in expected.items():
        doc = report(tmp_path, p, g, "--color", "y", "--metrics", "ssim,psnr,mse", "--pool", pool)
        assert doc["config"]["pool"] == {"ssim": pool, "psnr": pool, "mse": pool}
        scores = doc["items"][0]["scores"]
        for m, v in zip(("ssim", "psnr", "mse"), values, strict=True):
            assert scores[m] == pytest.approx(v, rel=1e-12)
    doc = report(tmp_path, p, g, "--color", "y", "--metrics", "ssim,psnr", "--pool", "psnr=min")
    assert doc["config"]["pool"] == {"psnr": "min"}
    assert doc["items"][0]["scores"]["psnr"] == pytest.approx(frames[:, 1].min(), rel=1e-12)
    assert doc["items"][0]["scores"]["ssim"] == pytest.approx(frames[:, 0].mean(), rel=1e-12)
    for bad in ("p101", "geometric", "lpips=min"):
        assert run("compare", p, g, "--pool", bad).exit_code == 2


def test_one_video_split_across_threads_gives_identical_reports(tmp_path):
    gt = make_planes(12, "yuv420p", 0)
    pred = make_planes(12, "yuv420p", 1, noise=7.0)
    write_ffv1(tmp_path / "gt.mkv", gt, "yuv420p")
    write_ffv1(tmp_path / "pred.mkv", pred, "yuv420p")
    outputs = []
    for jobs in (1, 2, 4):
        for color in ("y", "rgb"):
            out = tmp_path / f"r{jobs}{color}.json"
            args = [str(tmp_path / "pred.mkv"), str(tmp_path / "gt.mkv"), "--jobs", str(jobs), "--color", color]
            assert run("compare", *args, "--json", str(out), "-q").exit_code == 0
            outputs.append((color, out.read_bytes()))
    by_color: dict[str, set[bytes]] = {}
    for color, text in outputs:
        by_color.setdefault(color, set()).add(text)
    assert all(len(texts) == 1 for texts in by_color.values())


def test_frame_threads_in_the_python_api(tmp_path):
    gt = make_planes(5, "yuv420p", 0)
    pred = make_planes(5, "yuv420p", 1, noise=7.0)
    write_ffv1(tmp_path / "gt.mkv", gt, "yuv420p")
    write_ffv1(tmp_path / "pred.mkv", pred, "yuv420p")
    config = CompareConfig(pred=tmp_path / "pred.mkv", gt=tmp_path / "gt.mkv", options=Options(color="y"), jobs=4)
    (result,) = run_config(config).items
    assert result.status == "ok" and result.frame_scores.shape == (5, 3)
    assert RawFormat.parse("96x72", "yuv420p").frame_bytes() == 96 * 72 * 3 // 2
    assert RawFormat.parse("96x72", "yuv444p10le").frame_bytes() == 96 * 72 * 3 * 2


def write_mp4(path: Path, n: int, seed: int) -> None:
    """An H.264 MP4 (its header states the frame count)."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for _ in range(n):
            image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_progress_counts_frames_as_they_are_scored(tmp_path):
    write_mp4(tmp_path / "gt.mp4", 7, 0)
    write_mp4(tmp_path / "pred.mp4", 7, 1)

    class Recorder:
        def __init__(self) -> None:
            self.total: int | None = -1
            self.ticks: list[tuple[str, int]] = []

        def begin_frames(self, total) -> None:
            self.total = total()  # a function: the headers are read only by a display that asks

        def frames(self, n: int) -> None:
            self.ticks.append(("frame", n))

        def __call__(self, done, total, result) -> None:
            self.ticks.append(("item", done))

    for jobs in (1, 2):
        rec = Recorder()
        config = CompareConfig(pred=tmp_path / "pred.mp4", gt=tmp_path / "gt.mp4", jobs=jobs)
        run_config(config, progress=rec)
        assert rec.total == 7
        assert rec.ticks == [("item", 0)] + [("frame", 1)] * 7 + [("item", 1)]


def test_a_bar_that_is_not_drawn_reads_no_header(monkeypatch):
    """--quiet, or stderr not a terminal: the frame total (a header read per video) is never asked for."""
    from iqeval.cli import _Bar

    def total() -> int:
        raise AssertionError("the frame total was read for a bar that is not drawn")

    for quiet, tty in ((True, True), (False, False)):
        monkeypatch.setattr("sys.stderr.isatty", lambda tty=tty: tty, raising=False)
        bar = _Bar(quiet)
        bar.begin_frames(total)
        bar(0, 1, None)
        bar.close()
        assert bar.shown() is False


def test_the_bar_shows_frames_per_second_on_a_narrow_terminal(tmp_path):
    import fcntl
    import os
    import pty
    import struct
    import subprocess
    import sys
    import termios

    write_mp4(tmp_path / "gt.mp4", 5, 0)
    write_mp4(tmp_path / "pred.mp4", 5, 1)
    write_ffv1(tmp_path / "gt.mkv", make_planes(5, "yuv420p", 0), "yuv420p")  # no frame count in its header
    write_ffv1(tmp_path / "pred.mkv", make_planes(5, "yuv420p", 1, noise=5.0), "yuv420p")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    for ext, columns, total in ((".mp4", 0, "5"), (".mp4", 24, "5"), (".mkv", 24, "?"), (".mp4", 120, "5")):
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        cmd = [sys.executable, "-m", "iqeval", "compare", str(tmp_path / f"pred{ext}"), str(tmp_path / f"gt{ext}")]
        proc = subprocess.run(cmd, stderr=follower, stdout=subprocess.PIPE, env=env, timeout=120)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        os.close(leader)
        assert proc.returncode == 0
        last = seen.decode().replace("\r\n", "\r").split("\r")[-2]  # the bar's final state
        assert f"5/{total}" in last and "frame/s" in last, (columns, last)


def test_a_raw_file_has_no_frame_rate_to_disagree_with(tmp_path):
    frames = make_planes(2, "yuv420p", 0)
    write_raw(tmp_path / "pred.yuv", frames)
    write_ffv1(tmp_path / "gt.mkv", frames, "yuv420p", rate=30)
    doc = report(
        tmp_path,
        str(tmp_path / "pred.yuv"),
        str(tmp_path / "gt.mkv"),
        "--video-size",
        f"{W}x{H}",
        "--pix-fmt",
        "yuv420p",
        "--color",
        "y",
        "--metrics",
        "psnr",
    )
    assert [r["psnr"] for r in frame_rows(doc)] == [math.inf, math.inf]


def test_yuv_planes_use_the_engine_asked_for(tmp_path, clip):
    _ = clip
    p, g = str(tmp_path / "pred.mkv"), str(tmp_path / "gt.mkv")
    fast = frame_rows(report(tmp_path, p, g, "--color", "yuv", "--metrics", "ssim,psnr"))
    reference = frame_rows(report(tmp_path, p, g, "--color", "yuv", "--metrics", "ssim,psnr", "--engine", "skimage"))
    for a, b in zip(fast, reference, strict=True):
        assert a["ssim"] == pytest.approx(b["ssim"], abs=1e-12)
        assert a["psnr"] == pytest.approx(b["psnr"], abs=1e-9)


def test_decoding_runs_ahead_by_a_memory_budget_not_a_frame_count():
    from iqeval.io import VideoFormat
    from iqeval.video import PREFETCH_BYTES, prefetch_depth

    def fmt(w: int, h: int, bits: int = 8) -> VideoFormat:
        return VideoFormat("yuv420p" if bits == 8 else "yuv420p10le", w, h, bits, True, 25.0)

    assert PREFETCH_BYTES == 64 << 20
    assert prefetch_depth(fmt(1920, 1080)) == (64 << 20) // (1920 * 1080 * 3) == 10
    assert prefetch_depth(fmt(3840, 2160)) == 2  # 24.9 MB a frame: the floor
    assert prefetch_depth(fmt(3840, 2160, 10)) == 2
    assert prefetch_depth(fmt(1280, 720)) == 16  # 2.8 MB a frame: the ceiling
    assert prefetch_depth(None) == 2  # a frame folder: sizes unknown before decoding


# ------------------------------------------------------------ start-up: opened once, both sides at once


def test_both_sides_start_decoding_before_either_is_read():
    """Each side's thread starts when it is made, not on its first ``next``: the second side used to
    open its file and decode its first frame only after the first side's first frame came."""
    import threading

    from iqeval.video import Prefetch

    started = {side: threading.Event() for side in ("pred", "gt", "dropped")}
    closed: list[str] = []

    def frames(side: str):
        started[side].set()
        try:
            yield from range(5)
        finally:
            closed.append(side)

    pred, gt = Prefetch(frames("pred"), 2), Prefetch(frames("gt"), 2)
    assert started["pred"].wait(5) and started["gt"].wait(5)  # nothing read yet
    assert next(pred) == 0 and list(gt) == [0, 1, 2, 3, 4]
    assert closed == ["gt"]  # read to its end: its frames closed, its thread gone
    pred.close()  # stopped midway: its thread closes its frames before close returns
    assert sorted(closed) == ["gt", "pred"]
    assert list(pred) == []

    def broken():
        yield 1
        raise ValueError("frame 1 is damaged")

    failing = Prefetch(broken(), 2)
    assert next(failing) == 1
    with pytest.raises(ValueError, match="frame 1 is damaged"):
        next(failing)

    # one dropped unread is deleted (its thread holds nothing of it), and its thread then stops
    dropped = Prefetch(frames("dropped"), 1)
    thread = dropped._thread
    del dropped
    thread.join(5)
    assert not thread.is_alive() and "dropped" in closed


def test_a_video_whose_format_was_read_is_decoded_without_opening_it_again(tmp_path, monkeypatch):
    import iqeval.io as io

    frames = make_planes(3, "yuv420p", 0)
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"v{i}.mkv")
        write_ffv1(paths[-1], frames, "yuv420p")
    opened: list[Path] = []
    real_open = io._open_video
    monkeypatch.setattr(io, "_open_video", lambda p, raw: opened.append(p) or real_open(p, raw))

    fmt = io.video_format(paths[0], keep_open=True)
    decoded = list(io.iter_frames(paths[0], planes="yuv"))
    assert opened == [paths[0]] and (fmt.width, fmt.height) == (W, H)
    for got, want in zip(decoded, frames, strict=True):  # FFV1 is lossless: the planes as written
        assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    list(io.iter_frames(paths[0], planes="y"))  # the kept container went to the first decoding only
    assert opened == [paths[0], paths[0]]

    # a few are kept at most, the oldest closed; a plain read keeps none
    for p in paths:
        io.video_format(p, keep_open=True)
    io.video_format(paths[0])
    assert [key[1] for key in io._OPEN] == paths[-io._OPEN_MAX :]
    # one kept by another process (a parent, before fork) is never read here
    monkeypatch.setattr(io.os, "getpid", lambda: -1)
    opened.clear()
    list(io.iter_frames(paths[-1], planes="y"))
    assert opened == [paths[-1]]
    monkeypatch.undo()
    for p in paths[-io._OPEN_MAX :]:
        io.release_kept(p)
    assert not io._OPEN

    # a run that stops between reading the formats and decoding (the rates differ) closes both
    write_ffv1(tmp_path / "fast.mkv", frames, "yuv420p", rate=30)
    for jobs in ("1", "2"):
        result = run("compare", str(paths[0]), str(tmp_path / "fast.mkv"), "--jobs", jobs)
        assert result.exit_code == 1 and "frame rates differ" in result.output
        assert not io._OPEN


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_when_both_videos_are_bad_the_prediction_is_named_as_before(tmp_path, jobs):
    # with frame threads both files are opened at once; the error is still the prediction's
    (tmp_path / "pred.mkv").write_bytes(b"not a video")
    (tmp_path / "gt.mkv").write_bytes(b"not one either")
    result = run("compare", str(tmp_path / "pred.mkv"), str(tmp_path / "gt.mkv"), "--jobs", jobs)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert f"{tmp_path / 'pred.mkv'}: cannot read video" in result.output
    assert str(tmp_path / "gt.mkv") + ":" not in result.output
