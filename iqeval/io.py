"""Reading images and videos.

This is the only module that imports imageio (and PyAV, which imageio uses for
video). Every failure is turned into a :class:`~iqeval.errors.LoadError` whose
message names the file and the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from .errors import LoadError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm", ".pbm", ".tga"}
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".gif", ".m4v"})

# PNG colour types whose 16-bit variant Pillow silently reduces to 8 bits.
_PNG16_PYAV_FORMATS = {2: "rgb48le", 6: "rgba64le", 4: "ya16le"}


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """Return True when the extension is one iqeval reads as a still image."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """Return True when the extension is one iqeval reads as a frame sequence."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class Probe:
    """Shape and dtype of a file, read from its header where the format allows."""

    shape: tuple[int, ...]
    dtype: np.dtype
    n_frames: int | None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise LoadError(f"{path}: no such file")
    if path.is_dir():
        raise LoadError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise LoadError(f"{path}: file is empty")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if "Could not find a backend" in first:
        return "not a recognised image format"
    if "Invalid data found" in first or "truncated" in first:
        return "corrupt or truncated data"
    return re.sub(r"^\[Errno -?\d+\]\s*", "", first).rstrip(".")


_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"MM\x00+",
)


def _looks_like_image(path: Path) -> bool:
    """Check the file's magic bytes, so that a text file is named as such."""
    if path.suffix.lower() == ".tga":  # TGA has no signature
        return True
    with path.open("rb") as fh:
        head = fh.read(12)
    if head.startswith(_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return len(head) >= 2 and head[0:1] == b"P" and head[1:2] in b"1234567"


def _png16_format(path: Path) -> str | None:
    """Return the PyAV pixel format for a 16-bit colour PNG, else None.

    Pillow, imageio's default PNG reader, reduces 16-bit colour PNGs to 8 bits
    without a word; FFmpeg's PNG decoder keeps every bit.
    """
    if path.suffix.lower() != ".png":
        return None
    with path.open("rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    bit_depth, colour_type = head[24], head[25]
    if bit_depth != 16:
        return None
    return _PNG16_PYAV_FORMATS.get(colour_type)


# Formats read with Pillow directly, skipping imageio's plugin machinery; only
# for modes where numpy's view of the Pillow image is exactly what imageio returns.
_PILLOW_DIRECT = frozenset({".png", ".jpg", ".jpeg"})
_PILLOW_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I;16"})


def _read_pillow(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if im.mode in _PILLOW_MODES and getattr(im, "n_frames", 1) == 1:
            im.load()
            return np.asarray(im)
    return np.asarray(iio.imread(path))


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode one still image into an array of shape (H, W) or (H, W, C).

    Raises
    ------
    LoadError
        When the file is missing, empty, corrupt, truncated or not an image.
    """
    p = Path(path)
    _check_file(p)
    if not _looks_like_image(p):
        raise LoadError(f"{p}: cannot read image: not a recognised image format")
    try:
        fmt = _png16_format(p)
        if fmt is not None:
            image = iio.imread(p, plugin="pyav", format=fmt, index=0)
        elif p.suffix.lower() in _PILLOW_DIRECT:
            image = _read_pillow(p)
        else:
            image = iio.imread(p, index=0) if p.suffix.lower() in {".gif", ".tif", ".tiff"} else iio.imread(p)
    except Exception as exc:  # imageio and its plugins raise many unrelated types
        raise LoadError(f"{p}: cannot read image: {_reason(exc)}") from exc
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or image.size == 0:
        raise LoadError(f"{p}: cannot read image: unexpected array shape {image.shape}")
    return image


def _video_format(stream: object) -> str:
    """Pick an RGB pixel format that keeps every bit of the stream."""
    pix_fmt = str(getattr(getattr(stream, "codec_context", None), "pix_fmt", "") or "")
    deep = any(tag in pix_fmt for tag in ("10", "12", "14", "16"))
    gray = pix_fmt.startswith("gray")
    if gray:
        return "gray16le" if deep else "gray"
    return "rgb48le" if deep else "rgb24"


def iter_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Stream the frames of a video or animated GIF, one array at a time.

    Only one decoded frame is alive at a time on our side, so memory stays
    bounded whatever the length of the video.
    """
    p = Path(path)
    _check_file(p)
    if p.suffix.lower() == ".gif":
        try:
            frames = iio.imiter(p)
            for frame in frames:
                yield _squeeze(np.asarray(frame))
        except Exception as exc:
            raise LoadError(f"{p}: cannot read video: {_reason(exc)}") from exc
        return
    import av  # PyAV, imageio's video backend; imported late to keep start-up fast

    try:
        container = av.open(str(p))
    except Exception as exc:
        raise LoadError(f"{p}: cannot read video: {_reason(exc)}") from exc
    with container:
        if not container.streams.video:
            raise LoadError(f"{p}: cannot read video: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame-threaded decoding; output is bit-identical
        fmt = _video_format(stream)
        index = 0
        try:
            for decoded in container.decode(stream):
                yield _squeeze(decoded.to_ndarray(format=fmt))
                index += 1
        except Exception as exc:
            raise LoadError(f"{p}: cannot read video frame {index}: {_reason(exc)}") from exc
        if index == 0:
            raise LoadError(f"{p}: cannot read video: no frames")


def _squeeze(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 3 and frame.shape[-1] == 1:
        return frame[..., 0]
    return frame


def probe(path: str | os.PathLike[str]) -> Probe:
    """Return shape and dtype without decoding pixel data where possible."""
    p = Path(path)
    _check_file(p)
    try:
        props = iio.improps(p, plugin="pyav") if is_video_path(p) and p.suffix.lower() != ".gif" else iio.improps(p)
    except Exception as exc:
        raise LoadError(f"{p}: cannot read: {_reason(exc)}") from exc
    shape = tuple(int(s) for s in props.shape)
    n = int(props.n_images) if props.n_images is not None else None
    if props.is_batch:
        shape = shape[1:]
    return Probe(shape=shape, dtype=np.dtype(props.dtype), n_frames=n)


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an image file (PNG for the maps); the folder must exist."""
    iio.imwrite(Path(path), image)


def encode_image(image: np.ndarray, extension: str = ".png") -> bytes:
    """Encode an image to bytes (for data URIs in the HTML report)."""
    return bytes(iio.imwrite("<bytes>", image, extension=extension))
