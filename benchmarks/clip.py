"""A 1080p clip of real content for the video benchmark: a slow pan and zoom over
scikit-image's photographs, encoded twice with x264 (PyAV): a high-quality
ground truth and a compressed prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import data, transform


def canvas() -> np.ndarray:
    """A 2400x4000 RGB mosaic of natural photographs."""
    tiles = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry(), data.retina()]
    rows = []
    for r in range(2):
        row = [transform.resize(t, (1200, 1333), anti_aliasing=True) for t in tiles[3 * r : 3 * r + 3]]
        rows.append(np.concatenate(row, axis=1))
    return (np.concatenate(rows, axis=0)[:, :3999] * 255).astype(np.uint8)


def frames(n: int, size: tuple[int, int] = (1080, 1920)):  # type: ignore[no-untyped-def]
    big = canvas()
    h, w = size
    rng = np.random.default_rng(0)
    for i in range(n):
        t = i / max(1, n - 1)
        y = int(t * (big.shape[0] - h))
        x = int(t * (big.shape[1] - w))
        frame = big[y : y + h, x : x + w].astype(np.int16)
        frame += rng.integers(-1, 2, frame.shape, dtype=np.int16)  # grain, so the codec has work
        yield np.clip(frame, 0, 255).astype(np.uint8)


def encode(path: Path, n: int, crf: int, pix_fmt: str = "yuv420p", size: tuple[int, int] = (1080, 1920)) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height = size[1], size[0]
        stream.pix_fmt = pix_fmt
        stream.options = {"crf": str(crf), "preset": "veryfast"}
        for f in frames(n, size):
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def make_clip(root: Path, n: int) -> tuple[Path, Path]:
    root.mkdir(parents=True, exist_ok=True)
    pred, gt = root / "pred.mp4", root / "gt.mp4"
    if not gt.exists():
        encode(gt, n, 16)
    if not pred.exists():
        encode(pred, n, 32)
    return pred, gt


def ffmpeg_filter_frames(pred: Path, gt: Path, threaded: bool = False):  # type: ignore[no-untyped-def]
    """FFmpeg's ssim and psnr filters on two videos, through the FFmpeg bundled in PyAV: yields each
    frame's metadata (``lavfi.ssim.All``, ``lavfi.psnr.psnr_avg``, ... as FFmpeg prints them)."""
    import av

    with av.open(str(pred)) as c0, av.open(str(gt)) as c1:
        s0, s1 = c0.streams.video[0], c1.streams.video[0]
        if threaded:
            s0.thread_type = s1.thread_type = "AUTO"
        graph = av.filter.Graph()
        b0, b1 = graph.add_buffer(template=s0), graph.add_buffer(template=s1)
        split0, split1 = graph.add("split"), graph.add("split")
        ssim, psnr = graph.add("ssim"), graph.add("psnr")
        sink_s, sink_p = graph.add("buffersink"), graph.add("buffersink")
        b0.link_to(split0)
        b1.link_to(split1)
        split0.link_to(ssim, 0, 0)
        split1.link_to(ssim, 0, 1)
        split0.link_to(psnr, 1, 0)
        split1.link_to(psnr, 1, 1)
        ssim.link_to(sink_s)
        psnr.link_to(sink_p)
        graph.configure()
        for f0, f1 in zip(c0.decode(s0), c1.decode(s1), strict=True):
            b0.push(f0)
            b1.push(f1)
            yield {**sink_s.pull().metadata, **sink_p.pull().metadata}
