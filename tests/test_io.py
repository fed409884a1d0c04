"""Decoding: exact pixels, streamed video, and one-line errors for bad files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from iqeval.errors import LoadError
from iqeval.io import iter_frames, load_image, probe, read_image


def write_png16(path: Path, a: np.ndarray) -> None:
    """A 16-bit colour PNG written by hand (Pillow cannot write one)."""
    h, w, c = a.shape
    colour_type = {3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + a[i].astype(">u2").tobytes() for i in range(h))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
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
