"""Sources: one side of an item, and the only place that knows how each kind gives frames.

A :class:`Source` is a still image, a video or a folder of numbered frames.
Each kind is one subclass that says which file extensions it reads (for the
classifier, :func:`kind_of`), how to stream its frames (:meth:`Source.decode`),
how to fetch one frame (:meth:`Source.frame`) and its facts. ``Source(path,
kind)`` builds the subclass for ``kind``, so code that only names a kind never
needs the classes. A new input kind is one subclass here.

The frames of a frame folder are its ``frames`` attribute (the files, in
order); the decoded frames of any source come from ``decode()``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from .errors import LoadError, SequenceError
from .io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    RAW_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Decoded,
    RawFormat,
    VideoFormat,
    iter_frames,
    load_image,
    probe,
    video_format,
)

SourceKind = Literal["image", "video", "frames"]

_KINDS: dict[str, type[Source]] = {}


@dataclass(frozen=True)
class Source:
    """One side of an item. ``Source(path, "video")`` is a :class:`VideoSource`."""

    path: Path
    kind: str  # one of SourceKind, or a kind a subclass registers
    frames: tuple[Path, ...] = ()

    extensions: ClassVar[frozenset[str]] = frozenset()
    label: ClassVar[str] = ""

    def __init_subclass__(cls, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind:
            _KINDS[kind] = cls

    def __new__(cls, *args: Any, **kwargs: Any) -> Source:
        if cls is Source:
            kind = kwargs.get("kind", args[1] if len(args) > 1 else None)
            if kind not in _KINDS:
                raise ValueError(f"unknown source kind {kind!r}; choose from {', '.join(_KINDS)}")
            cls = _KINDS[kind]
        return object.__new__(cls)

    def __getnewargs__(self) -> tuple[Any, ...]:
        return (self.path, self.kind, self.frames)

    @property
    def is_sequence(self) -> bool:
        return self.kind != "image"

    def decode(
        self,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        *,
        planes: str = "rgb",
        raw: RawFormat | None = None,
        threads: int = 1,
    ) -> Iterator[Decoded]:
        """Stream the decoded frames, one at a time (a still image is one frame).

        ``planes`` ("y", "yuv"), ``raw`` (the format of a headerless file) and
        ``threads`` (the decoder's) concern videos only; other kinds always
        give RGB or gray arrays.
        """
        raise NotImplementedError

    def video_format(self, raw: RawFormat | None = None, *, keep_open: bool = False) -> VideoFormat | None:
        """The pixel format of a video from its header; None for other kinds. ``keep_open``: the
        file stays open for the decoding that follows (:func:`iqeval.io.video_format`)."""
        return None

    @staticmethod
    def label_of(source: Source) -> str:
        """What a source is, in words ('image', 'video', 'frame folder')."""
        return source.label or source.kind

    def frame(self, index: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
        """One decoded frame."""
        for i, decoded in enumerate(self.decode(max_pixels)):
            if i == index:
                return decoded.array
        raise SequenceError(f"{self.path}: has no frame {index}")

    def frame_name(self, index: int) -> str:
        """How errors name frame ``index`` of this source."""
        return f"{self.path} frame {index}"

    def describe(self) -> str:
        """The path as people read it (a folder ends in '/')."""
        return str(self.path)

    def facts(self) -> dict[str, Any]:
        """What is known without decoding: kind, path and, where cheap, the frame count."""
        return {"kind": self.kind, "path": str(self.path), "n_frames": None}


@dataclass(frozen=True)
class ImageSource(Source, kind="image"):
    """A still image file."""

    extensions: ClassVar[frozenset[str]] = IMAGE_EXTENSIONS
    label: ClassVar[str] = "image"

    def decode(
        self,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        *,
        planes: str = "rgb",
        raw: RawFormat | None = None,
        threads: int = 1,
    ) -> Iterator[Decoded]:
        yield load_image(self.path, max_pixels=max_pixels)

    def frame_name(self, index: int) -> str:
        return str(self.path)

    def facts(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "n_frames": 1}


@dataclass(frozen=True)
class VideoSource(Source, kind="video"):
    """A video file (or an animated GIF, or a headerless .yuv file), streamed with PyAV."""

    extensions: ClassVar[frozenset[str]] = VIDEO_EXTENSIONS | RAW_EXTENSIONS
    label: ClassVar[str] = "video"

    def decode(
        self,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        *,
        planes: str = "rgb",
        raw: RawFormat | None = None,
        threads: int = 1,
    ) -> Iterator[Decoded]:
        frames = iter_frames(self.path, max_pixels=max_pixels, planes=planes, raw=raw, threads=threads)
        if planes == "rgb":
            return (Decoded(f) for f in frames)
        return (Decoded(f[0], planes=f) for f in frames)

    def video_format(self, raw: RawFormat | None = None, *, keep_open: bool = False) -> VideoFormat | None:
        if self.path.suffix.lower() == ".gif":
            return None
        return video_format(self.path, raw, keep_open=keep_open)

    def facts(self) -> dict[str, Any]:
        if self.path.suffix.lower() in RAW_EXTENSIONS:  # no header to read
            return {"kind": self.kind, "path": str(self.path), "n_frames": None}
        try:  # the container's header: frame count and size, nothing decoded
            if self.path.suffix.lower() == ".gif":
                p = probe(self.path)
                return {"kind": self.kind, "path": str(self.path), "n_frames": p.n_frames, "shape": list(p.shape)}
            f = video_format(self.path)  # PyAV directly: imageio's plugin costs a sixth of a second to import
        except LoadError:
            return {"kind": self.kind, "path": str(self.path), "n_frames": None}
        return {"kind": self.kind, "path": str(self.path), "n_frames": f.frames, "shape": [f.height, f.width]}


@dataclass(frozen=True)
class FrameFolderSource(Source, kind="frames"):
    """A folder of numbered frame images; ``frames`` holds the files in order."""

    label: ClassVar[str] = "frame folder"

    def decode(
        self,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        *,
        planes: str = "rgb",
        raw: RawFormat | None = None,
        threads: int = 1,
    ) -> Iterator[Decoded]:
        return (load_image(p, max_pixels=max_pixels) for p in self.frames)

    def frame(self, index: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
        return load_image(self.frames[index], max_pixels=max_pixels).array

    def frame_name(self, index: int) -> str:
        return str(self.frames[index])

    def describe(self) -> str:
        return f"{self.path}/"

    def facts(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path), "n_frames": len(self.frames)}


def kind_of(path: str | os.PathLike[str]) -> str | None:
    """The classifier: the kind of source a file is, by its extension (None: not read)."""
    ext = Path(path).suffix.lower()
    for kind, cls in _KINDS.items():
        if ext in cls.extensions:
            return kind
    return None


def source_of(path: str | os.PathLike[str]) -> Source:
    """A source for one file given on the command line (unknown extensions are tried as images)."""
    return Source(Path(path), kind_of(path) or "image")
