"""The kernels loaded as machine code (iqeval._native) compute what numba's dispatcher computes, bit for bit,
and a command that finds them cached never imports numba."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from iqeval import _native, fast

from .test_fast import _quick_reference

pytest.importorskip("numba")


def _both(monkeypatch: pytest.MonkeyPatch, name: str, *args: object) -> tuple[object, object, tuple[str, ...] | None]:
    """The kernel's result through its machine code and through numba's dispatcher, and the variant used."""
    kernel = fast._compiled(name)
    variant = _native.variant_of(name, args)
    monkeypatch.setenv("IQEVAL_NATIVE", "1")
    native = kernel(*args)
    direct = kernel.dispatcher()(*args)
    return native, direct, variant


def _pair(shape: tuple[int, ...], dtype: type, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    top = 1.0 if np.dtype(dtype).kind == "f" else np.iinfo(dtype).max
    x = (rng.random(shape) * top).astype(dtype)
    y = np.clip(x.astype(np.float64) + rng.normal(0, top / 16, shape), 0, top).astype(dtype)
    return x, y


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("layout", ["contiguous", "padded rows", "interleaved"])
def test_box_and_sse_kernels_equal_the_dispatcher(monkeypatch, dtype, layout):
    x, y = _pair((40, 57, 3), dtype)
    if layout == "contiguous":
        x, y = np.ascontiguousarray(x[..., 0]), np.ascontiguousarray(y[..., 0])
        step = 1
    elif layout == "padded rows":  # a decoded video plane: rows longer than the image
        x, y = x[:, :50, 0].copy(order="C")[:, :45], y[:, :50, 0].copy(order="C")[:, :45]
        step = 1
    else:
        x, y, step = x.reshape(40, 57 * 3), y.reshape(40, 57 * 3), 3
    wide = fast.integer_accumulator(int(np.iinfo(dtype).max), 7)
    out = x.shape[1] - 6 * step
    c1n, c2n = (0.01 * 255) ** 2 * 49 * 49, (0.03 * 255) ** 2 * 49 * 49

    def scratch() -> tuple[np.ndarray, ...]:
        return np.zeros((4, x.shape[1]), dtype=wide), np.empty((4, out), dtype=wide), np.empty(out)

    kernel = fast._compiled("box_int")
    native = kernel(x, y, 7, step, c1n, c2n, 49 / 48, *scratch())
    direct = kernel.dispatcher()(x, y, 7, step, c1n, c2n, 49 / 48, *scratch())
    assert native == direct
    assert _native.variant_of("box_int", (x, y, 7, step, c1n, c2n, 1.0, *scratch())) == (
        np.dtype(dtype).str[1:],
        np.dtype(dtype).str[1:],
        np.dtype(wide).str[1:],
        np.dtype(wide).str[1:],
        "a" if layout == "padded rows" else "c",
    )
    native, direct, _ = _both(monkeypatch, "sse_int", x, y)
    d = x.astype(np.int64) - y.astype(np.int64)
    assert native == direct == int((d * d).sum())  # the exact integer


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_gaussian_sums_equal_the_dispatcher_on_planes_and_strided_channels(monkeypatch, dtype):
    x, y = _pair((37, 44, 3), dtype, seed=1)
    w, r = fast._kernel(True, 0, 1.5)
    for px, py in ((np.ascontiguousarray(x[..., 1]), np.ascontiguousarray(y[..., 1])), (x[..., 1], y[..., 1])):
        h, wd = px.shape
        scratch = (np.empty((4, wd - 2 * r + len(w) - 1)), np.empty((len(w) + 1, 4, wd - 2 * r)))
        scratch += (np.empty((8, wd - 2 * r)), np.empty((2, wd - 2 * r)))
        for mode in (0, 1, 2):  # plain, pyiqa's clipping, the SSIM sum alone
            args = (px, py, 1.0, 0.5, w, r, h - r, r, wd - r, 1e-4, 9e-4, 1.0, mode, *scratch)
            native, direct, variant = _both(monkeypatch, "sums", *args)
            assert native == direct and (native[1] == 0.0) == (mode == 2)
            assert variant is not None and variant[-1] == ("c" if px.flags.c_contiguous else "a")
    assert 0.2 < native[0] / ((h - 2 * r) * (wd - 2 * r)) < 1.0  # a real comparison


def test_ffmpeg_luma_halve_and_png_kernels_equal_the_dispatcher(monkeypatch):
    x, y = _pair((36, 52, 3), np.uint8, seed=2)
    prev, cur = np.zeros((4, 13), dtype=np.int64), np.zeros((4, 13), dtype=np.int64)
    native, direct, _ = _both(monkeypatch, "ffmpeg", x[..., 0], y[..., 0], 6, 58, prev, cur, np.empty(12))
    assert native == direct and direct[1] == 8 * 12
    kernel = fast._compiled("luma")
    planar = np.ascontiguousarray(x.transpose(2, 0, 1)).transpose(1, 2, 0)
    for image in (x, x[3:-2, 4:-1], planar):  # RGB packed, cropped (rows spaced wider) and in channel planes
        out_n, out_d = np.empty(image.shape[:2]), np.empty(image.shape[:2])
        span, (rows, pixels, channels) = fast.strided_span(image)
        kernel(span, rows, pixels, channels, 0.299, 0.587, 0.114, 16.0, out_n)
        kernel.dispatcher()(span, rows, pixels, channels, 0.299, 0.587, 0.114, 16.0, out_d)
        assert np.array_equal(out_n, out_d)
        expected = ((image[..., 0] * 0.299) + (image[..., 1] * 0.587) + (image[..., 2] * 0.114)) + 16.0
        assert np.array_equal(out_n, expected)
    kernel = fast._compiled("halve")
    half_n, half_d = np.empty((18, 26)), np.empty((18, 26))
    kernel(x[..., 2], 0.5, half_n)
    kernel.dispatcher()(x[..., 2], 0.5, half_d)
    assert np.array_equal(half_n, half_d)
    a = x[..., 2].astype(np.float64) * 0.5
    assert np.array_equal(half_n, (((a[0::2, 0::2] + a[0::2, 1::2]) + a[1::2, 0::2]) + a[1::2, 1::2]) * 0.25)
    # PNG's Sub filter on 2 rows of 3 RGB pixels: each byte is the sum of itself and the one a pixel left
    rows = np.array([[1, 10, 20, 30, 1, 2, 3, 5, 6, 7], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]], dtype=np.uint8)
    raw_n, raw_d = rows.ravel().copy(), rows.ravel().copy()
    kernel = fast._compiled("png_unfilter")
    assert kernel(raw_n, raw_n, 2, 9, 3) == kernel.dispatcher()(raw_d, raw_d, 2, 9, 3) == 0
    assert np.array_equal(raw_n, raw_d)
    assert raw_n[:9].tolist() == [10, 20, 30, 11, 22, 33, 16, 28, 40]  # the pixels, packed at the front


def test_arrays_no_wrapper_fits_go_to_the_dispatcher(monkeypatch):
    x, y = _pair((30, 40), np.uint8, seed=3)
    flipped_x, flipped_y = x[:, ::-1], y[:, ::-1]  # negative strides
    assert _native.run("sse_int", (flipped_x, flipped_y)) is NotImplemented
    assert _native.variant_of("sse_int", (x.astype(np.int16), y.astype(np.int16))) is None  # no int16 wrapper
    d = x.astype(np.int64) - y.astype(np.int64)
    assert fast._compiled("sse_int")(flipped_x, flipped_y) == int((d * d).sum())
    assert fast._compiled("sse_int")(x.astype(np.int16), y.astype(np.int16)) == int((d * d).sum())


_SCRIPT = """
import json, sys
import numpy as np
from iqeval import fast, metrics
fast.QUICK_START = True  # as the command line sets it
r = np.random.default_rng(5)
x = r.integers(0, 256, (64, 80, 3), dtype=np.uint8)
y = np.clip(x + r.normal(0, 12, x.shape), 0, 255).astype(np.uint8)
kw = dict(data_range=255.0, win_size=None, sigma=1.5)
out = {}
if sys.argv[1] in ("8", "all"):
    out["sse"] = fast.sum_squared_error(x, y, 1.0, 1.0)
    out["uniform"] = fast.mean_ssim(x, y, 1.0, 1.0, kernel="uniform", **kw)
    out["gaussian"] = fast.mean_ssim(x, y, 1.0, 1.0, kernel="gaussian", **kw)
if sys.argv[1] in ("16", "all"):  # the same kernels on 16-bit samples: other variants of each
    x16, y16 = x.astype(np.uint16) * 257, y.astype(np.uint16) * 257
    out["sse16"] = fast.sum_squared_error(x16, y16, 1.0, 1.0)
    out["uniform16"] = fast.mean_ssim(x16, y16, 1.0, 1.0, kernel="uniform", **{**kw, "data_range": 65535.0})
out["numba"] = "numba" in sys.modules
print(json.dumps(out))
"""


def _run(env: dict[str, str], which: str = "all") -> dict:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, which], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _check(got: dict) -> None:
    ref = _quick_reference()  # the same pair: skimage called directly, and the exact integer SSE
    assert got["sse16"] == ref["sse"] * 257**2
    assert got["uniform16"] == pytest.approx(ref["uniform"], abs=1e-12)  # SSIM does not see the scale
    assert got["sse"] == ref["sse"]
    assert got["uniform"] == pytest.approx(ref["uniform"], abs=1e-12)
    assert got["gaussian"] == pytest.approx(ref["gaussian"], abs=1e-12)
    assert 0.3 < ref["gaussian"] < 0.99


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A cache built by one run from empty (numba's own cache and iqeval's machine code), and that run's output."""
    root = tmp_path_factory.mktemp("cache")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(root), "IQEVAL_NATIVE": "1"}
    # two processes build the 8- and the 16-bit variants of the same kernels, each its own, as pool
    # workers or separate runs do; a later process loads both
    first = _run(env, "8")
    return root, {**first, **_run(env, "16")}


def _copy(built: tuple[Path, dict], tmp_path: Path) -> dict[str, str]:
    shutil.copytree(built[0], tmp_path / "cache")
    return {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "IQEVAL_NATIVE": "1"}


def test_a_process_that_finds_the_kernels_cached_never_imports_numba(built, tmp_path):
    first = built[1]  # an empty cache: built with numba, and kept
    assert first["numba"] is True
    env = _copy(built, tmp_path)
    files = sorted(p.name for p in (tmp_path / "cache" / "iqeval-native").glob("*.kernel"))
    assert any(f.startswith("iqeval-box_int-u1-u1-f4-f4-") for f in files)  # 8-bit: float32 window sums
    assert any(f.startswith("iqeval-sums-u1-u1-a-") for f in files)  # the channels of an RGB image
    second = _run(env)
    assert second["numba"] is False  # about 0.3 s of start-up, and of each pool worker's
    _check(first)
    _check(second)
    off = _run({**env, "IQEVAL_NATIVE": "0"})  # numba's dispatcher: the same numbers
    assert off["numba"] is True
    assert {k: off[k] for k in ("sse", "uniform", "gaussian")} == {k: second[k] for k in ("sse", "uniform", "gaussian")}


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing symbol", "foreign key"])
def test_a_damaged_cache_file_is_built_again_not_loaded(built, tmp_path, damage):
    env = _copy(built, tmp_path)
    files = sorted((tmp_path / "cache" / "iqeval-native").glob("iqeval-box_int-*.kernel"))
    assert files
    for path in files:
        data = path.read_bytes()
        header, code = data.split(b"\n", 1)
        if damage == "truncated":  # a write cut short, with its old checksum
            path.write_bytes(header + b"\n" + code[: len(code) // 2])
        elif damage == "garbage":
            path.write_bytes(b"not a kernel")
        elif damage == "missing symbol":  # code that needs what this process cannot find
            meta = json.loads(header)
            meta["needed"].append("iqeval_no_such_symbol")
            path.write_bytes(json.dumps(meta).encode() + b"\n" + code)
        else:  # valid JSON, wrong types
            path.write_bytes(b'{"symbol": 1, "needed": [], "sha256": "x"}\n' + code)
    got = _run(env)
    _check(got)
    assert got["numba"] is True  # the box kernel was built again
    for path in files:  # and kept, whole, for the next process
        header, code = path.read_bytes().split(b"\n", 1)
        assert "iqeval_no_such_symbol" not in json.loads(header)["needed"]
    assert _run(env)["numba"] is False


def test_a_file_holding_another_variants_code_is_never_run_for_it(built, tmp_path):
    # the 16-bit SSE's file overwritten with the 8-bit one's (valid, checksummed, but its code reads
    # bytes): the process that loads the 8-bit code first must not run it again for 16-bit samples
    env = _copy(built, tmp_path)
    folder = tmp_path / "cache" / "iqeval-native"
    (eight,) = folder.glob("iqeval-sse_int-u1-u1-c-*.kernel")
    (sixteen,) = folder.glob("iqeval-sse_int-u2-u2-c-*.kernel")
    sixteen.write_bytes(eight.read_bytes())
    got = _run(env)
    _check(got)  # the 16-bit SSE built again, right
    assert got["numba"] is True


def test_a_numba_that_cannot_be_imported_leaves_the_numpy_paths(tmp_path):
    # a package named numba that fails to import, found first: no machine code (its helper libraries
    # are missing), no dispatcher, so every kernel is None and the numpy paths give the numbers
    (tmp_path / "numba").mkdir()
    (tmp_path / "numba" / "__init__.py").write_text('raise ImportError("a broken numba")\n')
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    got = _run({**os.environ, "PYTHONPATH": path, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}, "8")
    ref = _quick_reference()
    assert got["sse"] == ref["sse"]
    assert got["uniform"] == pytest.approx(ref["uniform"], abs=1e-12)
    assert got["gaussian"] == pytest.approx(ref["gaussian"], abs=1e-12)
    assert not (tmp_path / "cache").exists()  # nothing was built
