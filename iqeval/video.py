"""Scoring sequences: frame pairing, offsets, native YUV planes and several threads on one video.

:func:`score_sequence` streams the frames of both sides and scores them in
order. What makes video fast and exact lives here:

* **native planes**: with ``color="y"`` a pair of planar YUV videos is scored
  on the decoded Y planes, and with ``color="yuv"`` on Y, U and V weighted by
  their areas (FFmpeg's plane weighting), at the file's own bit depth (a
  10-bit video has data range 1023) and with no RGB round trip;
* **threads**: the frames of one video are scored on ``threads`` threads while
  the calling thread decodes (PyAV and the compiled kernels release the GIL).
  Frames are scored independently and pooled in frame order, so the numbers
  are the same bits for any thread count; at most ``2 * threads`` frame pairs
  are alive at a time, so memory stays bounded;
* **alignment**: ``align="auto"`` searches a window of offsets for the one
  whose first frames give the highest PSNR.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any, Literal, TypeVar, cast

import numpy as np

from .core import Engine, score_arrays
from .errors import ColorModeError, SequenceError
from .fast import warm_up
from .io import DEFAULT_MAX_PIXELS, Decoded, RawFormat, VideoFormat, release_kept
from .metrics import METRICS
from .prepare import Options, PairInfo
from .sources import Source

__all__ = ["ALIGN_FRAMES", "find_offset", "frame_listener", "ordered_map", "plane_mode", "score_sequence"]

PlaneMode = Literal["rgb", "y", "yuv"]

A = TypeVar("A")
R = TypeVar("R")

ALIGN_FRAMES = 8  # frames compared for each candidate offset by align="auto"

# told of every frame scored in this process (a progress bar); a forked worker never calls its parent's
_listeners: list[tuple[int, Callable[[int], None]]] = []


@contextmanager
def frame_listener(fn: Callable[[int], None]) -> Iterator[None]:
    """Within the block, ``fn(1)`` is called for each frame pair this process scores."""
    entry = (os.getpid(), fn)
    _listeners.append(entry)
    try:
        yield
    finally:
        _listeners.remove(entry)


def _frame_scored() -> None:
    pid = os.getpid()
    for owner, fn in _listeners:
        if owner == pid:
            fn(1)


def ordered_map(fn: Callable[[A], R], items: Iterable[A], threads: int) -> Iterator[R]:
    """``map(fn, items)`` on ``threads`` threads, in order, with at most ``2 * threads`` calls in flight.

    ``items`` is consumed in the calling thread (for video: decoding), so it
    overlaps the calls.
    """
    if threads <= 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="iqeval-frames")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)


_END = object()


def _close(frames: Iterator[Any]) -> None:
    """Close an iterator of frames that can be closed (a generator, a :class:`Prefetch`): its file with it."""
    close = getattr(frames, "close", None)
    if close is not None:
        close()


def _produce(items: Iterator[Any], q: queue.Queue[tuple[str, Any]], stop: threading.Event) -> None:
    """:class:`Prefetch`'s thread: ``items`` into ``q`` until they end, fail, or ``stop`` is set."""

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    try:
        for item in items:
            if not put(("item", item)):
                return
        put(("end", None))
    except BaseException as exc:  # handed to the consumer, which raises it
        put(("error", exc))
    finally:
        _close(items)


class Prefetch(Iterator[A]):
    """Iterate ``items`` in a thread of its own, at most ``depth`` items ahead (decoding runs
    while the caller scores). Its exceptions are raised here.

    The thread starts at once, not on the first ``next``: the two sides of a
    pair open their files and decode their first frames at the same time.
    ``close`` stops it and waits for it (it closes ``items``, and so the file);
    one dropped without ``close`` is told to stop, and stops by itself.
    """

    def __init__(self, items: Iterator[A], depth: int = 2) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
        self._stop = threading.Event()
        self._done = False
        # the thread holds the queue and the event, not this object, so that one dropped is deleted
        args = (items, self._queue, self._stop)
        self._thread = threading.Thread(target=_produce, args=args, name="iqeval-decode", daemon=True)
        self._thread.start()

    def __next__(self) -> A:
        if self._done:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            return cast(A, value)
        self.close()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the thread and wait for it to close ``items``."""
        self._done = True
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)  # None where __init__ failed before making it
        if stop is not None:
            stop.set()


PREFETCH_BYTES = 64 << 20
"""Per side of a pair: how far (in decoded frames) decoding may run ahead of the scoring."""


def prefetch_depth(fmt: VideoFormat | None) -> int:
    """How many frames one side decodes ahead: as many as :data:`PREFETCH_BYTES` holds, 2 to 16.

    Decoding ahead keeps both cores busy while the kernels load at the start
    and whenever scoring stalls (10 frames of 1080p, 2 of 4K). A frame counts
    as three full planes (RGB, or YUV up to 4:4:4: a Y plane keeps its whole
    frame alive); 2 where the size is not known before decoding (frame folders).
    """
    if fmt is None:
        return 2
    sample = 1 if fmt.bits <= 8 else 2
    frame = fmt.width * fmt.height * sample * 3
    return max(2, min(16, PREFETCH_BYTES // max(1, frame)))


def _video_format(source: Source, raw: RawFormat | None, keep_open: bool = False) -> VideoFormat | None:
    return source.video_format(raw, keep_open=keep_open) if source.kind == "video" else None


def _formats(
    pred: Source, gt: Source, raw: RawFormat | None, threads: int
) -> tuple[VideoFormat | None, VideoFormat | None]:
    """Both sides' formats, each file left open for its decoding; with threads, the two opened at
    once (an open is 10-30 ms). An error is the prediction's first, as if read one after the other."""
    if threads <= 1:
        return (_video_format(pred, raw, keep_open=True), _video_format(gt, raw, keep_open=True))
    with ThreadPoolExecutor(1, thread_name_prefix="iqeval-open") as pool:
        gt_format = pool.submit(_video_format, gt, raw, True)
        return (_video_format(pred, raw, keep_open=True), gt_format.result())


def plane_mode(
    pred: Source,
    gt: Source,
    options: Options,
    raw: RawFormat | None = None,
    formats: tuple[VideoFormat | None, VideoFormat | None] | None = None,
) -> tuple[PlaneMode, VideoFormat | None]:
    """How a pair of sequences is read: native planes (and their format) or RGB.

    ``color="y"`` reads the Y planes where both sides are planar YUV videos,
    else it computes Y from RGB as for images. ``color="yuv"`` needs two planar
    YUV videos of one bit depth and chroma layout. ``formats`` are the two
    sides' formats where the caller has them.
    """
    if options.color not in ("y", "yuv"):
        return "rgb", None
    pf, gf = formats if formats is not None else (_video_format(pred, raw), _video_format(gt, raw))
    if pf is not None and gf is not None and pf.planar and gf.planar:
        if pf.bits != gf.bits:
            raise ColorModeError(
                f"bit depths differ: {pred.path} is {pf.describe()} but {gt.path} is {gf.describe()}; "
                "their planes cannot be compared as decoded: pass color='rgb' to compare them as RGB"
            )
        if options.color == "yuv" and _chroma(pf.pix_fmt) != _chroma(gf.pix_fmt):
            raise ColorModeError(
                f"chroma layouts differ: {pred.path} is {pf.pix_fmt} but {gt.path} is {gf.pix_fmt}; "
                "pass color='y' to score luma only"
            )
        return ("y" if options.color == "y" else "yuv"), pf
    if options.color == "y":
        return "rgb", None
    bad, bad_format = (pred, pf) if pf is None or not pf.planar else (gt, gf)
    what = f"a {bad_format.pix_fmt} video" if bad_format is not None else f"a {Source.label_of(bad)}"
    raise ColorModeError(
        f"color='yuv' scores the planes of planar YUV videos, but {bad.path} is {what}; pass color='rgb' or color='y'"
    )


def _chroma(pix_fmt: str) -> str:
    return pix_fmt.replace("yuvj", "yuv").split("p")[0]


@dataclass(frozen=True)
class _FrameScorer:
    """Scores one frame pair; shared by the threads of one sequence."""

    options: Options
    engine: Engine
    mode: PlaneMode
    fmt: VideoFormat | None
    pred: Source
    gt: Source

    def plane_options(self) -> Options:
        """The options for native planes: each plane is scored as a gray image at the file's bit depth."""
        assert self.fmt is not None
        data_range = self.options.data_range
        if data_range is None and self.fmt.bits > 8:
            data_range = float((1 << self.fmt.bits) - 1)
        return replace(self.options, color="gray", data_range=data_range, psnr_color=None)

    def __call__(self, pair: tuple[int, int, int, Decoded, Decoded]) -> tuple[list[float], PairInfo]:
        _, pi, gi, p, g = pair
        pname, gname = self.pred.frame_name(pi), self.gt.frame_name(gi)
        if self.mode == "rgb":
            scores, info = score_arrays(p.array, g.array, self.options, pname, gname, self.engine)
            return [scores[m] for m in self.options.metrics], info
        opts = self.plane_options()
        if self.mode == "y":
            scores, info = score_arrays(p.planes[0], g.planes[0], opts, pname, gname, self.engine)
            return [scores[m] for m in self.options.metrics], info
        return self._yuv(p.planes, g.planes, opts, pname, gname)

    def _yuv(
        self, pp: tuple[np.ndarray, ...], gp: tuple[np.ndarray, ...], opts: Options, pname: str, gname: str
    ) -> tuple[list[float], PairInfo]:
        """Y, U and V scored as gray images, then pooled by plane area (FFmpeg's weighting)."""
        names = self.options.metrics
        wanted = names if "mse" in names or "psnr" not in names else (*names, "mse")
        per_plane = []
        info: PairInfo | None = None
        for k, (x, y) in enumerate(zip(pp, gp, strict=True)):
            scores, plane_info = score_arrays(
                x,
                y,
                replace(opts, metrics=wanted),
                f"{pname} plane {'YUV'[k]}",
                f"{gname} plane {'YUV'[k]}",
                self.engine,
            )
            info = info or plane_info
            per_plane.append(scores)
        assert info is not None
        areas = np.array([float(x.size) for x in pp])
        weights = areas / areas.sum()
        out = []
        for m in names:
            if METRICS[m].planes == "mse":  # PSNR of the area-weighted MSE, as FFmpeg's psnr filter
                mse = float(sum(w * s["mse"] for w, s in zip(weights, per_plane, strict=True)))
                out.append(math.inf if mse == 0 else 10.0 * math.log10(info.data_range**2 / mse))
            else:
                out.append(float(sum(w * s[m] for w, s in zip(weights, per_plane, strict=True))))
        return out, info


def _native_info(info: PairInfo, mode: PlaneMode, fmt: VideoFormat, areas: tuple[int, ...], explicit: bool) -> PairInfo:
    """The facts of a pair scored on its planes: colour mode, bit depth, how the planes were weighted."""
    source = None if explicit else f"bit depth {fmt.bits} ({fmt.pix_fmt})"
    if mode == "y":
        note = f"Y plane scored as decoded ({fmt.describe()}), no RGB conversion"
    else:
        unit = min(areas)
        ratio = ":".join(f"{a / unit:g}" for a in areas)
        note = f"Y, U and V planes scored as decoded ({fmt.describe()}) and pooled by area {ratio}"
    return replace(
        info,
        color=mode,
        channels=len(areas),
        data_range_source=source or info.data_range_source,
        conversions=(note, *info.conversions),
    )


def _pairs(
    pred: Source,
    gt: Source,
    pred_frames: Iterator[Decoded],
    gt_frames: Iterator[Decoded],
    offset: int,
    truncate: bool,
    warnings: list[str],
) -> Iterator[tuple[int, int, int, Decoded, Decoded]]:
    """(index, pred frame index, gt frame index, pred, gt) for each frame pair, after the offset.

    A frame-count mismatch raises :class:`SequenceError`, or with ``truncate``
    ends the pairs and leaves a warning.
    """
    skip_gt, skip_pred = max(offset, 0), max(-offset, 0)
    for _ in range(skip_gt):
        next(gt_frames, None)
    for _ in range(skip_pred):
        next(pred_frames, None)
    index = 0
    while True:
        p = next(pred_frames, None)
        g = next(gt_frames, None)
        if p is None or g is None:
            if p is None and g is None:
                return
            n_p = skip_pred + index + (0 if p is None else 1 + sum(1 for _ in pred_frames))
            n_g = skip_gt + index + (0 if g is None else 1 + sum(1 for _ in gt_frames))
            message = f"frame count mismatch: {pred.path} has {n_p} frames but {gt.path} has {n_g}"
            if not truncate:
                raise SequenceError(message)
            warnings.append(f"{message}; scored the first {index}")
            return
        yield index, index + skip_pred, index + skip_gt, p, g
        index += 1


def _check_rates(pred: Source, gt: Source, pf: VideoFormat | None, gf: VideoFormat | None) -> None:
    if pf is None or gf is None or pf.rate is None or gf.rate is None:
        return
    if abs(pf.rate - gf.rate) > 1e-3 * max(pf.rate, gf.rate):
        raise SequenceError(f"frame rates differ: {pred.path} is {pf.rate:g} fps but {gt.path} is {gf.rate:g} fps")


def _luma_small(d: Decoded, mode: PlaneMode) -> np.ndarray:
    """A quarter-size float32 luma of a frame, for the alignment search."""
    a = d.planes[0] if mode != "rgb" else d.array
    a = a[::2, ::2]
    if a.ndim == 3:
        a = a[..., :3].mean(axis=2, dtype=np.float32)
    return np.asarray(a, dtype=np.float32)


def find_offset(
    pred: Source,
    gt: Source,
    window: int,
    center: int = 0,
    frames: int = ALIGN_FRAMES,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    raw: RawFormat | None = None,
    mode: PlaneMode = "rgb",
) -> tuple[int, float]:
    """The frame offset in ``center - window .. center + window`` whose first ``frames`` frame pairs
    have the lowest mean squared error (the highest PSNR), and that PSNR-like score (mean MSE).

    Ties go to the offset nearest ``center``. Only the first ``frames + window
    + |center|`` frames of each side are decoded, at quarter size.
    """
    reach = frames + window + abs(center)
    planes = "y" if mode != "rgb" else "rgb"
    p = [_luma_small(d, mode) for d in islice(pred.decode(max_pixels, planes=planes, raw=raw), reach)]
    g = [_luma_small(d, mode) for d in islice(gt.decode(max_pixels, planes=planes, raw=raw), reach)]
    best: tuple[float, int, int] | None = None
    for offset in range(center - window, center + window + 1):
        sg, sp = max(offset, 0), max(-offset, 0)
        n = min(frames, len(p) - sp, len(g) - sg)
        if n < 1:
            continue
        if p[sp].shape != g[sg].shape:
            raise SequenceError(f"size mismatch: {pred.path} and {gt.path} have frames of different sizes")
        mse = float(np.mean([np.mean(np.square(p[sp + i] - g[sg + i], dtype=np.float64)) for i in range(n)]))
        key = (mse, abs(offset - center), offset)
        if best is None or key < best:
            best = key
    if best is None:
        raise SequenceError(f"no frames to align in {pred.path} and {gt.path}")
    return best[2], best[0]


def score_sequence(
    pred: Source,
    gt: Source,
    options: Options,
    engine: Engine,
    truncate: bool,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    frame_offset: int = 0,
    *,
    threads: int = 1,
    raw: RawFormat | None = None,
    align: int | None = None,
) -> tuple[np.ndarray, PairInfo, tuple[str, ...]]:
    """Score two sequences frame by frame, streaming both; returns (frame scores, info, warnings).

    ``frame_offset`` N > 0: the prediction starts N frames later (the first N
    ground-truth frames are skipped); N < 0: it starts earlier (its own first
    -N frames are skipped). ``align`` (a window) searches ``frame_offset ±
    align`` for the best offset first (:func:`find_offset`) and records it.
    """
    try:
        return _score_sequence(pred, gt, options, engine, truncate, max_pixels, frame_offset, threads, raw, align)
    finally:  # a file opened to read its format and then not decoded (an error between) is closed
        for source in (pred, gt):
            release_kept(source.path, raw)


def _score_sequence(
    pred: Source,
    gt: Source,
    options: Options,
    engine: Engine,
    truncate: bool,
    max_pixels: int | None,
    frame_offset: int,
    threads: int,
    raw: RawFormat | None,
    align: int | None,
) -> tuple[np.ndarray, PairInfo, tuple[str, ...]]:
    if threads > 1 and engine == "fast":  # the kernels load while the videos open
        threading.Thread(target=warm_up, name="iqeval-kernels", daemon=True).start()
    formats = _formats(pred, gt, raw, threads)
    _check_rates(pred, gt, *formats)
    mode, fmt = plane_mode(pred, gt, options, raw, formats)
    notes: set[str] = set()
    if align is not None:
        found, _ = find_offset(pred, gt, align, frame_offset, max_pixels=max_pixels, raw=raw, mode=mode)
        notes.add(f"frame offset {found:+d} found by align='auto' (searched {frame_offset:+d} ± {align})")
        frame_offset = found
    warnings: list[str] = []
    scorer = _FrameScorer(options, engine, mode, fmt, pred, gt)
    pred_frames = pred.decode(max_pixels, planes=mode, raw=raw, threads=threads)
    gt_frames = gt.decode(max_pixels, planes=mode, raw=raw, threads=threads)
    if threads > 1:  # each side decodes in its own thread, ahead of the scoring by a memory budget
        pred_frames = Prefetch(pred_frames, prefetch_depth(formats[0]))
        gt_frames = Prefetch(gt_frames, prefetch_depth(formats[1]))
    pairs = _pairs(pred, gt, pred_frames, gt_frames, frame_offset, truncate, warnings)
    rows: list[list[float]] = []
    info: PairInfo | None = None
    areas: tuple[int, ...] = ()  # the plane sizes of the first frame, for the report

    def scored(pair: tuple[int, int, int, Decoded, Decoded]) -> tuple[list[float], PairInfo, str | None, str | None]:
        values, frame_info = scorer(pair)
        return values, frame_info, pair[3].note, pair[4].note

    def remember(pairs: Iterator[tuple[int, int, int, Decoded, Decoded]]) -> Iterator[Any]:
        nonlocal areas
        for pair in pairs:
            if not areas:
                areas = tuple(p.size for p in pair[3].planes)
            yield pair

    try:
        for values, frame_info, pn, gn in ordered_map(scored, remember(pairs), threads):
            info = info or frame_info
            notes.update(n for n in (pn, gn) if n)
            rows.append(values)
            _frame_scored()
    finally:  # both files closed, whatever stopped the loop (an error on one side leaves the other unread)
        for frames in (pred_frames, gt_frames):
            _close(frames)
    if info is None:
        raise SequenceError(f"no frames to score in {pred.path} and {gt.path}")
    if fmt is not None and mode != "rgb":
        info = _native_info(info, mode, fmt, areas, options.data_range is not None)
    info = replace(info, frame_offset=frame_offset)
    if notes:
        info = replace(info, conversions=tuple(sorted(notes)) + info.conversions)
    return np.asarray(rows, dtype=np.float64), info, tuple(warnings)
