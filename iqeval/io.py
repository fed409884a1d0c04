"""Reading images and videos.

This is the only module that imports imageio (and PyAV, which imageio uses for
video). Every failure is turned into a :class:`~iqeval.errors.LoadError` whose
message names the file and the reason.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np

from .errors import LoadError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm", ".pbm", ".tga"}
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".gif", ".m4v", ".y4m"})

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
    if not path.exists() and not path.is_symlink():
        raise LoadError(f"{path}: no such file")
    if not path.exists():
        raise LoadError(f"{path}: broken symbolic link")
    if path.is_dir():
        raise LoadError(f"{path}: is a directory, not an image")
    if path.stat().st_size == 0:
        raise LoadError(f"{path}: file is empty")


def _reason(exc: BaseException) -> str:
    """A short, plain reason for a decoder's exception, without library internals."""
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    if "Could not find a backend" in first or "cannot identify image file" in first:
        return "not a recognised image format"
    if "Invalid data found" in first or "truncated" in first.lower():
        return "corrupt or truncated data"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    # anything else is a decoder's internal complaint ("need at least one array to
    # stack", "buffer is not large enough"): name the kind, not the internals
    return "corrupt data or an unsupported variant of the format"


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


def _png16(path: Path) -> tuple[str | None, tuple[int, int] | None]:
    """For a PNG: the PyAV pixel format if it is 16-bit colour (else None), and its size.

    Pillow, imageio's default PNG reader, reduces 16-bit colour PNGs to 8 bits
    without a word; FFmpeg's PNG decoder keeps every bit.
    """
    if path.suffix.lower() != ".png":
        return None, None
    with path.open("rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None, None
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    bit_depth, colour_type = head[24], head[25]
    fmt = _PNG16_PYAV_FORMATS.get(colour_type) if bit_depth == 16 else None
    return fmt, (width, height)


DEFAULT_MAX_PIXELS = 100_000_000
"""The largest image or video frame iqeval decodes, in pixels (width x height).

It protects a batch from one hostile or mistaken file (a 16000x16000 PNG of a
few kilobytes decodes to gigabytes). Every reader checks it from the file's
header, before decoding. Raise it with ``max_pixels=`` or ``--max-pixels``.
"""


def check_pixels(path: Path, width: int, height: int, max_pixels: int | None, what: str = "image") -> None:
    """Refuse a decode of more than ``max_pixels`` pixels, naming the file and the limit."""
    if max_pixels is not None and width * height > max_pixels:
        raise LoadError(
            f"{path}: {what} is {width}x{height} ({width * height:,} pixels), above the limit of "
            f"{max_pixels:,} pixels; raise max_pixels= to read it"
        )


# Pillow modes numpy views as they are, and modes converted with Pillow's own
# convert() into one of those (recorded in the pair's facts, never silent).
_PILLOW_DIRECT = frozenset({"L", "LA", "RGB", "RGBA", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_PILLOW_CONVERT = {
    "1": "L",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
    "RGBX": "RGB",
    "RGBa": "RGBA",
    "PA": "RGBA",
}
_PILLOW_LOCK = threading.Lock()


@dataclass(frozen=True)
class Decoded:
    """A decoded image and, when its stored colour mode was converted, how."""

    array: np.ndarray
    note: str | None = None


def _open_pillow(path: Path) -> Any:
    """Open an image with Pillow (header only), without Pillow's own decompression-bomb check.

    iqeval enforces its own documented limit from the header (check_pixels);
    Pillow's check would warn or refuse at other sizes.
    """
    from PIL import Image

    with _PILLOW_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _read_pillow(path: Path, max_pixels: int | None) -> Decoded:
    with _open_pillow(path) as im:
        check_pixels(path, im.width, im.height, max_pixels)
        mode = im.mode
        if mode in _PILLOW_DIRECT:
            im.load()
            return Decoded(np.asarray(im))
        if mode == "P":
            target = "RGBA" if "transparency" in im.info else "RGB"
        elif mode in _PILLOW_CONVERT:
            target = _PILLOW_CONVERT[mode]
        else:
            raise LoadError(
                f"{path}: cannot read image: colour mode {mode} is not supported; "
                "iqeval scores gray, RGB and their alpha variants at 8 or 16 bits, and float"
            )
        note = f"{path.name}: stored as {'palette' if mode in ('P', 'PA') else mode}, converted to {target} by Pillow"
        return Decoded(np.asarray(im.convert(target)), note)


_TIFF_PHOTOMETRIC = {
    0: "MINISWHITE (inverted gray)",
    3: "PALETTE",
    4: "MASK",
    5: "SEPARATED (CMYK)",
    6: "YCBCR",
    8: "CIELAB",
}


def _read_tiff(path: Path, max_pixels: int | None) -> Decoded:
    """TIFF through tifffile, which keeps 16-bit and float samples (Pillow reduces 16-bit RGB)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        check_pixels(path, int(page.imagewidth), int(page.imagelength), max_pixels)
        photometric = int(page.photometric)
        if photometric not in (1, 2):  # MINISBLACK, RGB
            name = _TIFF_PHOTOMETRIC.get(photometric, f"photometric {photometric}")
            raise LoadError(
                f"{path}: cannot read image: TIFF colour model {name} is not supported; convert it to RGB or gray"
            )
        image = page.asarray()
        if int(page.planarconfig) == 2 and image.ndim == 3 and int(page.samplesperpixel) > 1:
            image = np.moveaxis(image, 0, -1)  # separate planes: (C, H, W) -> (H, W, C)
    return Decoded(np.ascontiguousarray(image))


def _read_pnm16(path: Path, max_pixels: int | None) -> Decoded | None:
    """Binary PGM/PPM with more than 8 bits per sample, which Pillow reduces to 8 bits.

    Returns None for every other PNM file (Pillow reads those exactly).
    """
    with path.open("rb") as fh:
        data = fh.read(64)
    m = re.match(rb"P([56])\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+(\d+)\s", data)
    if m is None or int(m[4]) <= 255:
        return None
    width, height, maxval = int(m[2]), int(m[3]), int(m[4])
    check_pixels(path, width, height, max_pixels)
    channels = 3 if m[1] == b"6" else 1
    raw = np.fromfile(path, dtype=">u2", offset=m.end(), count=width * height * channels)
    if raw.size != width * height * channels:
        raise LoadError(f"{path}: cannot read image: corrupt or truncated data")
    image = raw.astype(np.uint16).reshape((height, width, channels) if channels == 3 else (height, width))
    note = (
        None
        if maxval == 65535
        else f"{path.name}: PNM maxval {maxval} stored in 16 bits (data range is the dtype's; see data_range=)"
    )
    return Decoded(image, note)


def load_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode one still image, with a note when its colour mode had to be converted.

    Raises
    ------
    LoadError
        When the file is missing, empty, unreadable, corrupt, truncated, not an
        image, in a colour model iqeval does not convert, or larger than
        ``max_pixels``.
    """
    p = Path(path)
    try:
        _check_file(p)
        if not _looks_like_image(p):
            raise LoadError(f"{p}: cannot read image: not a recognised image format")
        ext = p.suffix.lower()
        png16, png_size = _png16(p)
        if png_size is not None:
            check_pixels(p, *png_size, max_pixels)
        if png16 is not None:
            decoded = Decoded(np.asarray(iio.imread(p, plugin="pyav", format=png16, index=0)))
        elif ext in {".tif", ".tiff"}:
            decoded = _read_tiff(p, max_pixels)
        else:
            pnm = _read_pnm16(p, max_pixels) if ext in {".pgm", ".ppm", ".pnm"} else None
            decoded = pnm if pnm is not None else _read_pillow(p, max_pixels)
    except LoadError:
        raise
    except Exception as exc:  # decoders raise many unrelated types
        raise LoadError(f"{p}: cannot read image: {_reason(exc)}") from exc
    image = decoded.array
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or image.size == 0:
        raise LoadError(f"{p}: cannot read image: unexpected array shape {image.shape}")
    return Decoded(image, decoded.note)


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode one still image into an array of shape (H, W) or (H, W, C).

    Raises
    ------
    LoadError
        When the file is missing, empty, corrupt, truncated or not an image.
    """
    return load_image(path, max_pixels=max_pixels).array


def image_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) from the file's header without decoding, or None when unknown."""
    p = Path(path)
    try:
        _, png_size = _png16(p)
        if png_size is not None:
            return png_size
        if p.suffix.lower() in {".tif", ".tiff"}:
            import tifffile

            with tifffile.TiffFile(p) as tif:
                page = tif.pages[0]
                return int(page.imagewidth), int(page.imagelength)
        with _open_pillow(p) as im:
            return int(im.width), int(im.height)
    except Exception:  # unreadable here means unknown; decoding later names the reason
        return None


def _video_format(stream: object) -> str:
    """Pick an RGB pixel format that keeps every bit of the stream."""
    pix_fmt = str(getattr(getattr(stream, "codec_context", None), "pix_fmt", "") or "")
    deep = any(tag in pix_fmt for tag in ("10", "12", "14", "16"))
    gray = pix_fmt.startswith("gray")
    if gray:
        return "gray16le" if deep else "gray"
    return "rgb48le" if deep else "rgb24"


def iter_frames(path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator[np.ndarray]:
    """Stream the frames of a video or animated GIF, one array at a time.

    Only one decoded frame is alive at a time on our side, so memory stays
    bounded whatever the length of the video. The frame size is checked against
    ``max_pixels`` from the container's header, before any frame is decoded.
    """
    p = Path(path)
    try:
        _check_file(p)
    except OSError as exc:
        raise LoadError(f"{p}: cannot read video: {_reason(exc)}") from exc
    if p.suffix.lower() == ".gif":
        size = image_size(p)
        if size is not None:
            check_pixels(p, *size, max_pixels, "GIF frame")
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
        ctx = stream.codec_context
        check_pixels(p, int(ctx.width or 0), int(ctx.height or 0), max_pixels, "video frame")
        stream.thread_type = "AUTO"  # frame-threaded decoding; output is bit-identical
        fmt = _video_format(stream)
        index = 0
        try:
            for decoded in container.decode(stream):
                # a stream may change size midway; check before converting the frame
                check_pixels(p, int(decoded.width), int(decoded.height), max_pixels, f"video frame {index}")
                yield _squeeze(decoded.to_ndarray(format=fmt))
                index += 1
        except LoadError:
            raise
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
