"""Reading images and videos.

This is the only module that imports imageio (and PyAV, which imageio uses for
video). Every failure is turned into a :class:`~iqeval.errors.LoadError` whose
message names the file and the reason.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from .errors import LoadError

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm", ".pbm", ".tga"}
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".gif", ".m4v", ".y4m"})

# PNG colour types whose 16-bit variant Pillow silently reduces to 8 bits.
_PNG16_PYAV_FORMATS = {2: "rgb48le", 6: "rgba64le", 4: "ya16le"}


def _iio() -> Any:
    """imageio's v3 API, imported on first use: the PNG, TIFF and PNM readers here need none of its 50 ms."""
    import imageio.v3 as iio

    return iio


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


class _Corrupt(Exception):
    """A PNG that is certainly damaged: the reason, for the caller's one-line error."""


def _png_chunks(data: bytes | bytearray) -> Iterator[tuple[bytes, int, int, bool]]:
    """Each chunk of a PNG after its signature, as (type, body start, body end, whole): ``whole`` is
    False for a last chunk that the file cuts short (its body then ends where the file does)."""
    pos, n = 8, len(data)
    while pos + 12 <= n:
        end = pos + 12 + int.from_bytes(data[pos : pos + 4], "big")
        yield bytes(data[pos + 4 : pos + 8]), pos + 8, min(end - 4, n), end <= n
        pos = end


def _png_image_spans(data: bytearray, crc32: Callable[[Any, int], int]) -> list[tuple[int, int]] | None:
    """Where a PNG's image data lie (the bodies of its IDAT chunks, in order), or None where the other
    readers should judge the file.

    The CRCs of IHDR and the image data must hold (else :class:`_Corrupt`).
    None for a file cut short, IDAT chunks that do not follow one another, no
    IEND, a transparency chunk, or a critical chunk other than IHDR, PLTE, IDAT
    and IEND.
    """
    spans: list[tuple[int, int]] = []
    with memoryview(data) as view:
        for kind, start, stop, whole in _png_chunks(data):
            if not whole:
                return None
            if kind in (b"IHDR", b"IDAT"):
                with view[start:stop] as body:
                    crc = crc32(body, crc32(kind, 0))
                if crc != int.from_bytes(view[stop : stop + 4], "big"):
                    raise _Corrupt(f"corrupt data: the CRC of its {kind.decode()} chunk does not match")
                if kind == b"IDAT":
                    if spans and spans[-1][1] + 12 != start:
                        return None  # IDAT chunks must be consecutive
                    spans.append((start, stop))
            elif kind == b"IEND":
                return spans or None
            elif kind == b"tRNS" or (kind[0] < 97 and kind != b"PLTE"):
                return None  # transparency, or a critical chunk this reader does not know
    return None  # no IEND


_INFLATE_CHUNK = 1 << 18  # bytes fed to and taken from ISA-L's inflate a call: a chunk stays in the L2 cache


def _inflate(stream: memoryview, size: int) -> np.ndarray | None:
    """The zlib ``stream`` inflated into ``size`` bytes (its checksum checked): by ISA-L (python-isal)
    where it imports, else by libdeflate where imagecodecs is installed, else zlib. Fewer bytes
    when the stream ends early; None where it is damaged, cut short or holds more than ``size`` bytes.

    On the bench's 1080p photographs ISA-L inflates one in about 13 ms, libdeflate in 18-19 ms
    and zlib in 41 ms. Every one releases the GIL.
    """
    raw = np.empty(size, dtype=np.uint8)
    try:
        from isal import igzip_lib
    except ImportError:
        pass
    else:
        return _inflate_isal(igzip_lib, stream, raw)
    try:
        import imagecodecs
    except ImportError:
        import zlib

        inflater = zlib.decompressobj()
        try:
            got = inflater.decompress(stream, size + 1)  # never more than one byte past the promise
        except zlib.error:
            return None
        if len(got) > size or not inflater.eof:
            return None  # more data than promised, or a stream cut short
        raw[: len(got)] = np.frombuffer(got, dtype=np.uint8)
        return raw[: len(got)]
    try:
        written = imagecodecs.deflate_decode(stream, out=raw.data)  # type: ignore[arg-type]  # any buffer
    except Exception:  # bad data, a bad checksum, a stream cut short, or more data than promised
        return None
    return raw[: len(written)]


def _inflate_isal(igzip_lib: Any, stream: memoryview, raw: np.ndarray) -> np.ndarray | None:
    """:func:`_inflate` by ISA-L, into ``raw``: python-isal has no call that writes into a buffer, so
    the stream goes in and the bytes come out :data:`_INFLATE_CHUNK` at a time, each chunk copied
    while it is still in the cache (the copies cost about 0.3 ms of a 1080p RGB image's 13 ms)."""
    inflater = igzip_lib.IgzipDecompressor(flag=igzip_lib.DECOMP_ZLIB)
    size, done, fed = raw.size, 0, 0
    try:
        while not inflater.eof:
            piece = stream[fed : fed + _INFLATE_CHUNK] if inflater.needs_input else b""
            fed += len(piece)
            # never more than one byte past the promise
            got = inflater.decompress(piece, min(_INFLATE_CHUNK, size + 1 - done))
            if done + len(got) > size:
                return None  # more data than promised
            if not got and not inflater.eof and (fed >= len(stream) or not inflater.needs_input):
                return None  # a stream cut short (or one that stopped giving bytes)
            raw[done : done + len(got)] = np.frombuffer(got, dtype=np.uint8)
            done += len(got)
    except Exception:  # bad data or a bad checksum (python-isal raises its own error types)
        return None
    return raw[:done]


def _crc32() -> Callable[[Any, int], int]:
    """libdeflate's CRC-32 where imagecodecs is installed, else ISA-L's where python-isal is, else
    zlib's (0.14, 0.28 and 1.2 ms for 3 MB)."""
    try:
        from imagecodecs import deflate_crc32
    except ImportError:
        try:
            from isal.isal_zlib import crc32
        except ImportError:
            import zlib

            return zlib.crc32
        return cast(Callable[[Any, int], int], crc32)
    return cast(Callable[[Any, int], int], deflate_crc32)


_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # by colour type: gray, RGB, gray+alpha, RGBA
_PNG_CHANNELS_ALL = {**_PNG_CHANNELS, 3: 1}  # and palette indices


def _png_inflate_unfilter(data: bytearray) -> np.ndarray | None:
    """The pixels of a non-interlaced 8- or 16-bit PNG without a palette: its image data inflated
    (:func:`_inflate`), then unfiltered by :func:`iqeval._kernels.png_unfilter`. None where numba
    is missing or the other readers should judge the file; :class:`_Corrupt` where it is certainly
    damaged (a CRC that does not match, fewer rows than the header promises, an unknown filter).

    Once the chunks check out, the image data are gathered at the front of ``data`` and inflated
    from there, and ``data`` is emptied: the file and the pixels are the only two buffers alive.
    """
    from .fast import compiled_png_unfilter

    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, channels = data[24] // 8, _PNG_CHANNELS[data[25]]
    stride = width * channels * depth
    spans = _png_image_spans(data, _crc32())
    if spans is None or width == 0 or height == 0:
        return None
    buffer = np.frombuffer(data, dtype=np.uint8)
    total = 0
    for start, end in spans:  # leftwards, so no byte is overwritten before it is moved
        buffer[total : total + end - start] = buffer[start:end]
        total += end - start
    del buffer
    with memoryview(data) as view, view[:total] as stream:
        raw = _inflate(stream, height * (stride + 1))
    data.clear()
    if raw is None:
        return None
    if raw.size < height * (stride + 1):
        raise _Corrupt(
            f"corrupt or truncated data: its image data end after {raw.size // (stride + 1)} of {height} rows"
        )
    # the kernel is fetched only now: inflating needs no numba, so the first images inflate while
    # it loads (where numba is missing, the other readers read the file again)
    unfilter = compiled_png_unfilter()
    if unfilter is None:
        return None
    # in place: each row's pixels land their row number of bytes left of its filtered bytes,
    # over bytes already read, so the image needs no second buffer
    bad_row = unfilter(raw, raw, height, stride, channels * depth)
    if bad_row:
        kind = raw[(bad_row - 1) * (stride + 1)]
        raise _Corrupt(f"corrupt data: row {bad_row} has filter type {kind}; PNG's are 0 to 4")
    pixels = raw[: height * stride]
    if depth == 2:  # big-endian samples, swapped in place where the machine's order differs
        pixels = pixels.view(">u2")
        if not pixels.dtype.isnative:
            pixels.byteswap(inplace=True)
            pixels = pixels.view(pixels.dtype.newbyteorder())
    return pixels.reshape((height, width, channels) if channels > 1 else (height, width))


# Adam7's seven passes: (first row, first column, row step, column step)
_ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1))


def _png_data_size(width: int, height: int, bits: int, interlaced: bool) -> int:
    """The bytes of image data a PNG header promises: each row's filter byte and packed samples."""

    def size(w: int, h: int) -> int:
        return 0 if w <= 0 or h <= 0 else h * (1 + (w * bits + 7) // 8)

    if not interlaced:
        return size(width, height)
    return sum(size(-(-(width - c) // cs), -(-(height - r) // rs)) for r, c, rs, cs in _ADAM7)


def _png_rows_missing(data: bytes | bytearray) -> str | None:
    """Why a PNG's image data end before the rows its header promises, else None.

    Pillow fills such rows with zeros without a word, so every PNG the fast
    path does not take (palette, fewer than 8 bits, transparency, interlaced)
    is counted here first: its zlib stream is inflated a megabyte at a time,
    counting bytes. A stream that is cut short or damaged is left to Pillow,
    which names it.
    """
    import zlib

    if len(data) < 33 or data[12:16] != b"IHDR" or data[25] not in _PNG_CHANNELS_ALL or data[28] > 1:
        return None
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    promised = _png_data_size(width, height, data[24] * _PNG_CHANNELS_ALL[data[25]], data[28] == 1)
    parts = []
    for kind, start, stop, _ in _png_chunks(data):
        if kind == b"IEND":
            break
        if kind == b"IDAT":
            parts.append(data[start:stop])
    inflater = zlib.decompressobj()
    pending, total = b"".join(parts), 0
    try:
        while not inflater.eof and total <= promised:
            before = len(pending)
            got = len(inflater.decompress(pending, 1 << 20))
            pending = inflater.unconsumed_tail
            total += got
            if not got and len(pending) == before:
                break  # no progress: the stream is cut short
    except zlib.error:
        return None
    if inflater.eof and total < promised:
        return f"corrupt or truncated data: its image data end after {total:,} of the {promised:,} bytes its header promises"
    return None


def _read_bytes(path: Path) -> bytearray:
    """The whole file, in a buffer of its own that the readers may reuse."""
    with path.open("rb", buffering=0) as fh:
        data = bytearray(os.fstat(fh.fileno()).st_size)
        got = 0
        with memoryview(data) as view:
            while got < len(data):  # one read returns at most 2 GiB on Linux
                n = fh.readinto(view[got:])
                if not n:
                    break
                got += n
    del data[got:]
    return data


def _read_png_fast(path: Path) -> Decoded | None:
    """A plain PNG (8- or 16-bit gray, gray+alpha, RGB or RGBA, no transparency chunk) decoded fast;
    None: let the other readers take it (palette, low bit depths and tRNS keep Pillow's conversions).

    A non-interlaced file is inflated (:func:`_inflate`: by ISA-L, about 1.4 times libdeflate's
    speed and 3 times zlib's on photographs) and its rows unfiltered by a compiled kernel. An
    interlaced one goes to libpng (imagecodecs.png_decode) where ``iqeval[speed]`` installs it.
    """
    data = _read_bytes(path)
    plain = len(data) >= 33 and data[12:16] == b"IHDR" and data[24] in (8, 16) and data[25] in _PNG_CHANNELS
    if plain and data[26:29] == b"\x00\x00\x00":  # deflate, adaptive filters, not interlaced
        try:
            image = _png_inflate_unfilter(data)
        except _Corrupt as exc:
            raise LoadError(f"{path}: cannot read image: {exc}") from None
        if image is not None:
            return Decoded(image)
        if not data:  # the fast path gathered its image data in the buffer and gave up: read it again
            data = _read_bytes(path)
    if (missing := _png_rows_missing(data)) is not None:
        raise LoadError(f"{path}: cannot read image: {missing}")
    if not plain:
        return None
    try:
        import imagecodecs
    except ImportError:
        return None
    idat = data.find(b"IDAT")
    if idat < 0 or data.find(b"tRNS", 0, idat) >= 0:
        return None
    try:
        return Decoded(np.asarray(imagecodecs.png_decode(data)))
    except Exception:  # corrupt or truncated: Pillow decodes it again and names the reason
        return None


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
    # a video frame read as its planes (Y; or Y, U, V) at the file's bit depth; then array is the Y plane
    planes: tuple[np.ndarray, ...] = ()


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
        fast_png = _read_png_fast(p) if png_size is not None else None
        if fast_png is not None:
            decoded = fast_png
        elif png16 is not None:
            decoded = Decoded(np.asarray(_iio().imread(p, plugin="pyav", format=png16, index=0)))
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


def _rgb_format(stream: object) -> str:
    """Pick an RGB pixel format that keeps every bit of the stream."""
    pix_fmt = str(getattr(getattr(stream, "codec_context", None), "pix_fmt", "") or "")
    deep = any(tag in pix_fmt for tag in ("10", "12", "14", "16"))
    gray = pix_fmt.startswith("gray")
    if gray:
        return "gray16le" if deep else "gray"
    return "rgb48le" if deep else "rgb24"


RAW_EXTENSIONS = frozenset({".yuv"})

# planar YUV (and gray) pixel formats, whose planes are scored as decoded: name, bit depth, byte order
_PLANAR = re.compile(r"^(?:yuvj?4(?:44|22|20|11|10|40)p|gray)(?P<bits>9|10|12|14|16)?(?P<order>le|be)?$")


@dataclass(frozen=True)
class RawFormat:
    """How to read a headerless raw video file: FFmpeg's ``-video_size`` and ``-pix_fmt``."""

    width: int
    height: int
    pix_fmt: str
    rate: str = "25"

    @classmethod
    def parse(cls, video_size: str, pix_fmt: str) -> RawFormat:
        """``RawFormat.parse("1920x1080", "yuv420p")``; a ValueError names what is wrong."""
        m = re.fullmatch(r"(\d+)x(\d+)", video_size.strip())
        if m is None or int(m[1]) < 1 or int(m[2]) < 1:
            raise ValueError(f"video size {video_size!r} is not WIDTHxHEIGHT, e.g. 1920x1080")
        if _PLANAR.match(pix_fmt) is None:
            raise ValueError(
                f"pixel format {pix_fmt!r} is not a planar YUV or gray format (yuv420p, yuv420p10le, yuv444p, gray, ...)"
            )
        return cls(int(m[1]), int(m[2]), pix_fmt)

    def frame_bytes(self) -> int:
        """The size of one frame in the file."""
        import av

        fmt = av.VideoFormat(self.pix_fmt, self.width, self.height)
        sample = 1 if fmt.components[0].bits <= 8 else 2
        planes = 1 + max(c.plane for c in fmt.components)
        chroma = fmt.chroma_width() * fmt.chroma_height()
        return sample * (self.width * self.height + (planes - 1) * chroma)


@dataclass(frozen=True)
class VideoFormat:
    """What a video's header says: pixel format, bit depth, size, frame rate, frame count."""

    pix_fmt: str
    width: int
    height: int
    bits: int
    planar: bool  # planar YUV or gray: the planes can be scored as decoded
    rate: float | None
    frames: int | None = None  # None where the container does not say (Matroska, raw)

    def describe(self) -> str:
        return f"{self.pix_fmt}, {self.bits}-bit"


def _open_video(p: Path, raw: RawFormat | None) -> Any:
    """Open a video container with PyAV (a raw file with its stated format), after checking the file."""
    try:
        _check_file(p)
    except OSError as exc:
        raise LoadError(f"{p}: cannot read video: {_reason(exc)}") from exc
    import av  # PyAV, imageio's video backend; imported late to keep start-up fast

    if p.suffix.lower() in RAW_EXTENSIONS:
        if raw is None:
            raise LoadError(f"{p}: a raw video has no header; give its --video-size WxH and --pix-fmt")
        size, frame = p.stat().st_size, raw.frame_bytes()
        if size % frame:
            raise LoadError(
                f"{p}: {size} bytes is not a whole number of {raw.width}x{raw.height} {raw.pix_fmt} frames "
                f"({frame} bytes each; {size % frame} bytes left over)"
            )
        options = {"video_size": f"{raw.width}x{raw.height}", "pixel_format": raw.pix_fmt, "framerate": raw.rate}
        try:
            return av.open(str(p), format="rawvideo", options=options)
        except Exception as exc:
            raise LoadError(f"{p}: cannot read video: {_reason(exc)}") from exc
    try:
        return av.open(str(p))
    except Exception as exc:
        raise LoadError(f"{p}: cannot read video: {_reason(exc)}") from exc


def _format_of(stream: Any) -> VideoFormat:
    ctx = stream.codec_context
    pix_fmt = str(ctx.pix_fmt or "")
    m = _PLANAR.match(pix_fmt)
    bits = int(m["bits"]) if m is not None and m["bits"] else 8
    if m is None and ctx.format is not None and ctx.format.components:
        bits = int(ctx.format.components[0].bits)
    rate = stream.average_rate or stream.guessed_rate
    return VideoFormat(
        pix_fmt,
        int(ctx.width or 0),
        int(ctx.height or 0),
        bits,
        m is not None,
        float(rate) if rate else None,
        int(stream.frames) or None,
    )


_OPEN: dict[tuple[int, Path, RawFormat | None], Any] = {}  # (pid, path, raw): a container kept for decoding
_OPEN_LOCK = threading.Lock()
_OPEN_MAX = 4


def _keep_open(p: Path, raw: RawFormat | None, container: Any) -> None:
    """Keep a container whose format was just read for the decoding that follows (an open costs
    10-25 ms); beyond a few, the oldest is closed."""
    pid = os.getpid()
    stale = []
    with _OPEN_LOCK:
        for key in [k for k in _OPEN if k[0] != pid]:  # a parent's, inherited through fork: its own
            del _OPEN[key]
        old = _OPEN.pop((pid, p, raw), None)
        if old is not None:
            stale.append(old)
        _OPEN[(pid, p, raw)] = container
        while len(_OPEN) > _OPEN_MAX:
            stale.append(_OPEN.pop(next(iter(_OPEN))))
    for c in stale:
        c.close()


def _take_open(p: Path, raw: RawFormat | None) -> Any:
    """The container :func:`video_format` kept for ``p``, opened by this process; None if none."""
    with _OPEN_LOCK:
        return _OPEN.pop((os.getpid(), p, raw), None)


def release_kept(path: str | os.PathLike[str], raw: RawFormat | None = None) -> None:
    """Close the container :func:`video_format` kept for ``path``, if it is still kept."""
    container = _take_open(Path(path), raw)
    if container is not None:
        container.close()


def video_format(path: str | os.PathLike[str], raw: RawFormat | None = None, *, keep_open: bool = False) -> VideoFormat:
    """A video's format from its header, nothing decoded. With ``keep_open`` the container stays
    open for the next :func:`iter_frames` of the same file in this process, which then opens
    nothing."""
    p = Path(path)
    container = _open_video(p, raw)
    try:
        if not container.streams.video:
            raise LoadError(f"{p}: cannot read video: no video stream")
        fmt = _format_of(container.streams.video[0])
    except BaseException:
        container.close()
        raise
    if keep_open:
        _keep_open(p, raw, container)
    else:
        container.close()
    # a raw file has no frame rate of its own (the one given to the demuxer is a placeholder), and
    # its frame count is its size
    if raw is not None and p.suffix.lower() in RAW_EXTENSIONS:
        return replace(fmt, rate=None, frames=p.stat().st_size // raw.frame_bytes())
    return fmt


def _plane_array(plane: Any, dtype: np.dtype) -> np.ndarray:
    """One decoded plane as an array view (its line padding cut off); it keeps the frame alive."""
    a = np.frombuffer(plane, dtype=dtype)
    return a.reshape(plane.height, plane.line_size // dtype.itemsize)[:, : plane.width]


def iter_frames(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    planes: str = "rgb",
    raw: RawFormat | None = None,
    threads: int = 1,
) -> Iterator[Any]:
    """Stream the frames of a video or animated GIF, one at a time.

    ``planes="rgb"`` yields each frame as an RGB (or gray) array that keeps
    every bit of the stream. ``"y"`` and ``"yuv"`` yield a tuple of the
    decoded planes of a planar YUV video (Y; or Y, U and V) at the file's own
    bit depth, with no colour conversion. Only a few decoded frames are alive
    at a time, so memory stays bounded whatever the length of the video. The
    frame size is checked against ``max_pixels`` from the header, before any
    frame is decoded. ``threads`` is the decoder's thread count (frame and
    slice threads; 1 decodes in the calling thread, which is the cheapest
    where the caller runs its own threads).
    """
    p = Path(path)
    if p.suffix.lower() == ".gif":
        try:
            _check_file(p)
        except OSError as exc:
            raise LoadError(f"{p}: cannot read video: {_reason(exc)}") from exc
        size = image_size(p)
        if size is not None:
            check_pixels(p, *size, max_pixels, "GIF frame")
        try:
            frames = _iio().imiter(p)
            for frame in frames:
                yield _squeeze(np.asarray(frame))
        except Exception as exc:
            raise LoadError(f"{p}: cannot read video: {_reason(exc)}") from exc
        return
    with _take_open(p, raw) or _open_video(p, raw) as container:
        if not container.streams.video:
            raise LoadError(f"{p}: cannot read video: no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        check_pixels(p, int(ctx.width or 0), int(ctx.height or 0), max_pixels, "video frame")
        if threads > 1:  # frame- and slice-threaded decoding; output is bit-identical
            stream.thread_type = "AUTO"
            ctx.thread_count = threads
        else:
            stream.thread_type = "NONE"
        fmt = _rgb_format(stream)
        native = planes != "rgb"
        if native:
            vf = _format_of(stream)
            if not vf.planar:
                raise LoadError(f"{p}: pixel format {vf.pix_fmt} has no YUV planes to score as decoded")
            dtype = np.dtype(np.uint8) if vf.bits <= 8 else np.dtype(">u2" if vf.pix_fmt.endswith("be") else "<u2")
            count = 1 if planes == "y" else 3
        index = 0
        try:
            for decoded in container.decode(stream):
                # a stream may change size midway; check before converting the frame
                check_pixels(p, int(decoded.width), int(decoded.height), max_pixels, f"video frame {index}")
                if native:
                    yield tuple(_plane_array(pl, dtype) for pl in decoded.planes[:count])
                else:
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
        iio = _iio()
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
    _iio().imwrite(Path(path), image)


def encode_image(image: np.ndarray, extension: str = ".png") -> bytes:
    """Encode an image to bytes (for data URIs in the HTML report)."""
    return bytes(_iio().imwrite("<bytes>", image, extension=extension))
