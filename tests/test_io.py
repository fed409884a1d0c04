"""Decoding: exact pixels, streamed video, and one-line errors for bad files."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from iqeval.errors import LoadError
from iqeval.io import iter_frames, load_image, probe, read_image


def _chunk(tag: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body and CRC."""
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)


def write_png16(path: Path, a: np.ndarray) -> None:
    """A 16-bit colour PNG written by hand (Pillow cannot write one)."""
    h, w, c = a.shape
    colour_type = {3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + a[i].astype(">u2").tobytes() for i in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")
    )


def test_png_pixels_equal_imageio(write_png, rgb):
    path = write_png("a.png", rgb)
    out = read_image(path)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, iio.imread(path))
    np.testing.assert_array_equal(out, rgb)


def test_16_bit_gray_png_keeps_every_bit(write_png):
    img = np.random.default_rng(0).integers(0, 65536, (20, 30), dtype=np.uint16)
    out = read_image(write_png("g16.png", img))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png_keeps_every_bit(tmp_path, channels):
    # Pillow (imageio's default) would silently return 8 bits here
    img = np.random.default_rng(1).integers(0, 65536, (20, 30, channels), dtype=np.uint16)
    write_png16(tmp_path / "c16.png", img)
    out = read_image(tmp_path / "c16.png")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, img)


def test_missing_file(tmp_path):
    with pytest.raises(LoadError) as exc:
        read_image(tmp_path / "nope.png")
    assert str(exc.value) == f"{tmp_path / 'nope.png'}: no such file"


def test_empty_file(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(LoadError) as exc:
        read_image(tmp_path / "e.png")
    assert str(exc.value) == f"{tmp_path / 'e.png'}: file is empty"


def test_truncated_file(write_png, rgb):
    path = write_png("t.png", rgb)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError) as exc:
        read_image(path)
    assert str(exc.value) == f"{path}: cannot read image: corrupt or truncated data"


def test_corrupt_file(tmp_path):
    path = tmp_path / "c.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.raises(LoadError, match=r"c\.png: cannot read image: "):
        read_image(path)


def test_non_image_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    with pytest.raises(LoadError) as exc:
        read_image(path)
    assert str(exc.value) == f"{path}: cannot read image: not a recognised image format"


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(LoadError, match="is a directory"):
        read_image(tmp_path)


def test_video_frames_stream_and_equal_imageio(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (6, 32, 48, 3), dtype=np.uint8)
    path = tmp_path / "v.mp4"
    iio.imwrite(path, frames, plugin="pyav", codec="libx264", fps=5)
    ours = iter_frames(path)
    assert next(ours).shape == (32, 48, 3)  # a generator: frames come one at a time
    ours_all = list(iter_frames(path))
    theirs = list(iio.imiter(path, plugin="pyav"))
    assert len(ours_all) == len(theirs) == 6
    for a, b in zip(ours_all, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert probe(path).n_frames == 6


def test_gif_frames(tmp_path):
    frames = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "a.gif", frames)
    out = list(iter_frames(tmp_path / "a.gif"))
    assert len(out) == 3
    np.testing.assert_array_equal(out[1], iio.imread(tmp_path / "a.gif", index=1))


def test_corrupt_video(tmp_path):
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 50)
    with pytest.raises(LoadError, match=r"bad\.mp4: cannot read video"):
        list(iter_frames(path))


def test_png_fast_reader_gives_the_same_pixels_as_pillow_and_keeps_16_bits(tmp_path):
    # imagecodecs (the speed extra) decodes plain PNGs; the file is written by Pillow, an
    # independent encoder, and the reference is Pillow's decode (PyAV's for 16-bit colour)
    import imagecodecs  # noqa: F401  (the dev extra installs it: this test must not skip)
    from PIL import Image

    from iqeval.io import _read_png_fast

    rng = np.random.default_rng(0)
    cases = {
        "L": rng.integers(0, 256, (13, 17), dtype=np.uint8),
        "RGB": rng.integers(0, 256, (13, 17, 3), dtype=np.uint8),
        "RGBA": rng.integers(0, 256, (13, 17, 4), dtype=np.uint8),
        "LA": rng.integers(0, 256, (13, 17, 2), dtype=np.uint8),
        "I;16": rng.integers(0, 65536, (13, 17), dtype=np.uint16),
    }
    for mode, a in cases.items():
        path = tmp_path / f"{mode.replace(';', '')}.png"
        image = Image.fromarray(a)
        assert image.mode == mode
        image.save(path)
        assert _read_png_fast(path) is not None, mode
        with Image.open(path) as im:
            ref = np.asarray(im)
        assert np.array_equal(load_image(path).array, ref), mode
        assert np.array_equal(ref, a), mode
    for channels in (3, 4):
        colour16 = rng.integers(0, 65536, (13, 17, channels), dtype=np.uint16)
        write_png16(tmp_path / "c16.png", colour16)
        assert _read_png_fast(tmp_path / "c16.png") is not None
        assert np.array_equal(load_image(tmp_path / "c16.png").array, colour16)
    # palette and transparency keep Pillow's conversions (and their notes)
    Image.fromarray(cases["RGB"]).convert("P").save(tmp_path / "p.png")
    assert _read_png_fast(tmp_path / "p.png") is None
    Image.fromarray(cases["RGB"]).save(tmp_path / "t.png", transparency=(0, 0, 0))
    assert _read_png_fast(tmp_path / "t.png") is None
    assert load_image(tmp_path / "p.png").note is not None


# Adam7's passes (the PNG specification, section 8.2): first row, first column, row step, column step
ADAM7 = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)]


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The PNG specification's Paeth predictor (section 9.4), element by element."""
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filtered(a: np.ndarray, filters: list[int]) -> bytes:
    """The image data of ``a`` (uint8 or uint16; 2-D gray or H x W x 1-4 channels) before
    compression, row ``i`` filtered with type ``filters[i % len(filters)]`` as the PNG
    specification writes it (section 9.2)."""
    h = a.shape[0]
    channels = 1 if a.ndim == 2 else a.shape[2]
    rows = a.astype(">u2" if a.dtype.itemsize == 2 else np.uint8).reshape(h, -1).view(np.uint8).astype(np.int64)
    bpp = channels * a.dtype.itemsize
    out = []
    for i in range(h):
        x = rows[i]
        prior = rows[i - 1] if i else np.zeros_like(x)
        left = np.concatenate([np.zeros(bpp, np.int64), x[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), prior[:-bpp]])
        f = filters[i % len(filters)]
        pred = [0 * x, left, prior, (left + prior) // 2, _paeth(left, prior, upleft)][f]
        out.append(bytes([f]) + ((x - pred) % 256).astype(np.uint8).tobytes())
    return b"".join(out)


def _png_by_spec(
    a: np.ndarray, filters: list[int], *, idat_chunks: int = 1, extra: bytes = b"", data: bytes | None = None
) -> bytes:
    """A PNG of ``a`` (see :func:`_filtered`), its zlib stream split over ``idat_chunks`` IDAT
    chunks; ``extra`` chunks go before the first IDAT; ``data`` replaces the image data."""
    h, w = a.shape[:2]
    channels = 1 if a.ndim == 2 else a.shape[2]
    stream = zlib.compress(_filtered(a, filters) if data is None else data)
    cuts = np.linspace(0, len(stream), idat_chunks + 1).astype(int)
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, a.dtype.itemsize * 8, colour, 0, 0, 0))
    idat = b"".join(_chunk(b"IDAT", stream[cuts[k] : cuts[k + 1]]) for k in range(idat_chunks))
    return b"\x89PNG\r\n\x1a\n" + ihdr + extra + idat + _chunk(b"IEND", b"")


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("filters", [[0], [1], [2], [3], [4], [4, 3, 2, 1, 0, 2, 4]])
def test_png_fast_path_undoes_every_filter_type(tmp_path, channels, dtype, filters):
    # the file is written from the specification in this test; Pillow's decode is the second witness
    from PIL import Image

    from iqeval.io import _png_inflate_unfilter

    top = np.iinfo(dtype).max
    rng = np.random.default_rng(channels)
    shape = (23, 19) if channels == 1 else (23, 19, channels)
    a = rng.integers(0, top + 1, shape, dtype=dtype)
    a[5:9] = top  # flat runs and extremes: Paeth's ties and the byte wrap-around
    a[12:14] = 0
    path = tmp_path / "f.png"
    path.write_bytes(_png_by_spec(a, filters, idat_chunks=3))
    assert _png_inflate_unfilter(bytearray(path.read_bytes())) is not None  # the fast path, not a fall-back
    out = load_image(path).array
    assert out.dtype == dtype
    assert np.array_equal(out, a)
    if dtype == np.uint8:
        with Image.open(path) as im:
            assert np.array_equal(np.asarray(im), a)


def test_png_without_the_compiled_unfilter_is_read_by_the_other_readers(tmp_path, monkeypatch):
    # the kernel is fetched after inflating (which empties the file's buffer); without it the file is
    # read again by libpng or Pillow, with the same pixels
    from PIL import Image

    from iqeval import fast

    rgb = np.random.default_rng(8).integers(0, 256, (21, 17, 3), dtype=np.uint8)
    path = tmp_path / "f.png"
    path.write_bytes(_png_by_spec(rgb, [4, 1, 2]))
    monkeypatch.setattr(fast, "compiled_png_unfilter", lambda: None)  # as where numba is missing
    assert np.array_equal(load_image(path).array, rgb)
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im), rgb)


def _use_inflater(monkeypatch: pytest.MonkeyPatch, inflater: str) -> None:
    """Make :func:`iqeval.io._inflate` and :func:`iqeval.io._crc32` take ``inflater``'s library, as
    each install would: "isal" the default install (python-isal, no imagecodecs), "libdeflate"
    one with imagecodecs and without python-isal, "zlib" one with neither. The dev extra installs
    both, so none of these skips."""
    import imagecodecs  # noqa: F401
    import isal  # noqa: F401

    hidden = {"isal": ["imagecodecs"], "libdeflate": ["isal"], "zlib": ["isal", "imagecodecs"]}[inflater]
    for module in hidden:
        monkeypatch.setitem(sys.modules, module, None)


INFLATERS = ["isal", "libdeflate", "zlib"]


@pytest.mark.parametrize("inflater", INFLATERS)
def test_inflate_checks_the_stream_and_its_promised_size(monkeypatch, inflater):
    # against zlib's own compressor and the bytes given to it, in chunks that span the inflaters' buffers
    from iqeval import io

    _use_inflater(monkeypatch, inflater)
    rng = np.random.default_rng(11)
    payload = (rng.integers(0, 4, 700_001, dtype=np.uint8) * 60).tobytes()  # compresses, but not to nothing
    stream = zlib.compress(payload, 6)
    n = len(payload)
    for chunk in (1 << 12, 1 << 18):  # ISA-L's chunk: smaller than, and near the size of, the payload
        monkeypatch.setattr(io, "_INFLATE_CHUNK", chunk)
        got = io._inflate(memoryview(stream), n)
        assert got is not None and got.tobytes() == payload
        short = io._inflate(memoryview(zlib.compress(payload[:1000])), n)  # a whole stream, fewer bytes
        assert short is not None and short.tobytes() == payload[:1000]
        assert io._inflate(memoryview(stream), n - 1) is None  # more than promised
        assert io._inflate(memoryview(stream[: len(stream) // 2]), n) is None  # cut short
        assert io._inflate(memoryview(stream[:-4]), n) is None  # its checksum missing
        bad = bytearray(stream)
        bad[-1] ^= 1  # the checksum wrong
        assert io._inflate(memoryview(bytes(bad)), n) is None
        assert io._inflate(memoryview(b"\x78\x9c" + bytes(range(256)) * 8), n) is None  # not deflate data
    crc = io._crc32()
    assert crc(payload, 0) == zlib.crc32(payload)
    assert crc(payload[7:], crc(payload[:7], 0)) == zlib.crc32(payload)  # a running CRC, as the chunk walk uses


@pytest.mark.parametrize("inflater", INFLATERS)
def test_png_fast_path_names_damage_and_leaves_the_rest_to_the_other_readers(tmp_path, monkeypatch, inflater):
    from iqeval.io import _png_inflate_unfilter

    _use_inflater(monkeypatch, inflater)
    rgb = np.random.default_rng(5).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    good = _png_by_spec(rgb, [4])
    assert np.array_equal(_png_inflate_unfilter(bytearray(good)), rgb)
    idat = good.index(b"IDAT")
    bad_filter = bytearray(_filtered(rgb, [4]))
    bad_filter[5 * 49] = 7  # row 6's filter-type byte (1 + 16 * 3 bytes a row)
    damaged = {
        "corrupt data: the CRC of its IDAT chunk does not match": good[: idat + 10]
        + bytes([good[idat + 10] ^ 0xFF])
        + good[idat + 11 :],
        "corrupt data: row 6 has filter type 7; PNG's are 0 to 4": _png_by_spec(rgb, [4], data=bytes(bad_filter)),
        "corrupt or truncated data: its image data end after 8 of 16 rows": _png_by_spec(
            rgb, [4], data=_filtered(rgb[:8], [4])
        ),
    }
    path = tmp_path / "d.png"
    for reason, data in damaged.items():
        path.write_bytes(data)
        with pytest.raises(LoadError) as exc:
            load_image(path)
        assert str(exc.value) == f"{path}: cannot read image: {reason}"
    # what libpng and Pillow accept, they judge: here, the same pixels
    others = {
        "no IEND": good[: good.index(b"IEND") - 4],
        "more image data than rows": _png_by_spec(rgb, [4], data=_filtered(np.concatenate([rgb, rgb]), [4])),
        "a transparency chunk": _png_by_spec(rgb, [4], extra=_chunk(b"tRNS", b"\x00\x00\x00\x00\x00\x00")),
    }
    for what, data in others.items():
        assert _png_inflate_unfilter(bytearray(data)) is None, what
        path.write_bytes(data)
        assert np.array_equal(load_image(path).array, rgb), what
    # IDAT chunks with another chunk between them break the specification: libpng and Pillow refuse too
    two = _png_by_spec(rgb, [4], idat_chunks=2)
    second = two.index(b"IDAT", idat + 4) - 4
    path.write_bytes(two[:second] + _chunk(b"tEXt", b"a\x00b") + two[second:])
    assert _png_inflate_unfilter(bytearray(path.read_bytes())) is None
    with pytest.raises(LoadError, match=r"d\.png: cannot read image: corrupt or truncated data"):
        load_image(path)


def test_interlaced_png_goes_to_libpng(tmp_path):
    # Adam7 written out from the specification: seven sub-images, rows unfiltered
    pytest.importorskip("imagecodecs")
    from PIL import Image

    rgb = np.random.default_rng(6).integers(0, 256, (20, 23, 3), dtype=np.uint8)
    data = b""
    for row0, col0, row_step, col_step in ADAM7:
        sub = rgb[row0::row_step, col0::col_step]
        if sub.size:
            data += b"".join(b"\x00" + r.tobytes() for r in sub)
    png = bytearray(_png_by_spec(rgb, [0], data=data))
    png[28] = 1  # interlace method: Adam7
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])) & 0xFFFFFFFF)
    path = tmp_path / "i.png"
    path.write_bytes(bytes(png))
    with Image.open(path) as im:
        assert np.array_equal(np.asarray(im), rgb)  # Pillow agrees the file is what it should be
    assert np.array_equal(load_image(path).array, rgb)


def test_png_rows_missing_are_named_for_every_reader(tmp_path):
    # palette, 1-bit and interlaced files go to Pillow or libpng; Pillow would fill missing rows with zeros
    from PIL import Image

    def png(ihdr: tuple[int, ...], data: bytes, extra: bytes = b"") -> bytes:
        header = _chunk(b"IHDR", struct.pack(">IIBBBBB", *ihdr))
        idat = _chunk(b"IDAT", zlib.compress(data))
        return b"\x89PNG\r\n\x1a\n" + header + extra + idat + _chunk(b"IEND", b"")

    index = np.random.default_rng(7).integers(0, 16, (10, 12), dtype=np.uint8)
    rows = [b"\x00" + r.tobytes() for r in index]
    bits = np.random.default_rng(8).integers(0, 2, (10, 16), dtype=np.uint8)
    packed = [b"\x00" + np.packbits(r).tobytes() for r in bits]
    adam7 = b"".join(b"\x00" + r.tobytes() for p in ADAM7 for r in index[p[0] :: p[2], p[1] :: p[3]] if r.size)
    plte = _chunk(b"PLTE", bytes(range(48)))  # 16 colours
    cases = {  # (header, whole data, data cut short, the pixels, the bytes promised)
        "palette": ((12, 10, 8, 3, 0, 0, 0), rows, rows[:6], index, 10 * 13),
        "1-bit gray": ((16, 10, 1, 0, 0, 0, 0), packed, packed[:6], bits * 255, 10 * 3),
        "interlaced": ((12, 10, 8, 0, 0, 0, 1), [adam7], [adam7[:50]], index, len(adam7)),
    }
    path = tmp_path / "m.png"
    for what, (ihdr, whole, cut, pixels, size) in cases.items():
        extra = plte if what == "palette" else b""
        path.write_bytes(png(ihdr, b"".join(whole), extra))
        with Image.open(path) as im:  # the whole file is what it should be
            assert np.array_equal(np.asarray(im.convert("L") if what == "1-bit gray" else im), pixels), what
        load_image(path)  # and iqeval reads it
        path.write_bytes(png(ihdr, b"".join(cut), extra))
        with pytest.raises(LoadError) as exc:
            load_image(path)
        reason = f"its image data end after {len(b''.join(cut)):,} of the {size:,} bytes its header promises"
        assert str(exc.value) == f"{path}: cannot read image: corrupt or truncated data: {reason}", what
