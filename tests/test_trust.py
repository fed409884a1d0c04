"""Fault injection: hostile inputs and outputs, checked for exact one-line errors,
exit codes, and the good items' values against skimage called directly."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from xml.etree import ElementTree as ET

import imageio.v3 as iio
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage import data
from skimage.metrics import mean_squared_error, structural_similarity

from iqeval import compare_images
from iqeval.cli import cli
from iqeval.discovery import find_pairs
from iqeval.errors import LoadError
from iqeval.fast import integer_accumulator
from iqeval.io import load_image, read_image
from iqeval.parallel import process_map

from .conftest import noisy

ROOT = os.geteuid() == 0


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def strict_json(text: str):
    def reject(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=reject)


# ------------------------------------------------------------ silent wrong numbers


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("win", range(3, 23, 2))
def test_every_uniform_window_equals_skimage(dtype, win):
    # 0.1 overflowed int32 from win 13 on 8-bit images (SSIM -7.29 against 0.883)
    gt = data.astronaut()[:48, :64]
    pred = noisy(gt, 12)
    if dtype is np.uint16:
        gt, pred = gt.astype(np.uint16) * 257, pred.astype(np.uint16) * 257
    top = float(np.iinfo(dtype).max)
    expected = structural_similarity(gt, pred, win_size=win, channel_axis=-1, data_range=top)
    got = compare_images(pred, gt, win_size=win, metrics="ssim")["ssim"]
    assert got == pytest.approx(expected, abs=1e-9)


def test_accumulator_width_follows_the_bound():
    # 2 N^2 v^2 must fit: N = win^2
    assert integer_accumulator(255, 11) is np.int32  # 2 * 121^2 * 255^2 = 1.9e9
    assert integer_accumulator(255, 13) is np.int64  # 2 * 169^2 * 255^2 = 3.7e9 > 2^31
    assert integer_accumulator(65535, 21) is np.int64
    assert integer_accumulator(65535, 201) is None  # beyond int64: the float path


def test_float_mse_is_independent_of_blas_threads(tmp_path):
    # np.dot went to OpenBLAS's threaded ddot, whose last digits follow the thread count
    script = (
        "import numpy as np; from iqeval import compare_images;"
        "r = np.random.default_rng(0); x = r.random((540, 960, 3)).astype(np.float32);"
        "y = r.random((540, 960, 3)).astype(np.float32);"
        "print(repr(compare_images(x, y, metrics='mse')['mse']))"
    )
    outs = set()
    for threads in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads}
        outs.add(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True).stdout)
    assert len(outs) == 1
    r = np.random.default_rng(0)
    x = r.random((540, 960, 3)).astype(np.float32)
    y = r.random((540, 960, 3)).astype(np.float32)
    assert float(outs.pop()) == pytest.approx(mean_squared_error(x.astype(float), y.astype(float)), rel=1e-12)


def test_cmyk_jpeg_is_converted_and_says_so(tmp_path):
    rgb = data.astronaut()[:96, :128]
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "pred.jpg", quality=95)
    Image.fromarray(rgb).save(tmp_path / "gt.png")
    decoded = load_image(tmp_path / "pred.jpg")
    with Image.open(tmp_path / "pred.jpg") as im:
        assert im.mode == "CMYK"
        expected = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(decoded.array, expected)
    assert decoded.note == "pred.jpg: stored as CMYK, converted to RGB by Pillow"
    result = run("compare", tmp_path / "pred.jpg", tmp_path / "gt.png", "--json", "-")
    assert result.exit_code == 0, result.output
    doc = strict_json(result.stdout)
    (item,) = doc["items"]
    assert item["info"]["conversions"] == ["pred.jpg: stored as CMYK, converted to RGB by Pillow"]
    assert item["scores"]["ssim"] == pytest.approx(
        structural_similarity(rgb, expected, channel_axis=-1, data_range=255), abs=1e-9
    )
    assert item["scores"]["ssim"] > 0.8  # 0.1 scored C, M, Y as RGB (SSIM -0.42)


@pytest.mark.parametrize(("mode", "target"), [("P", "RGB"), ("PT", "RGBA"), ("1", "L")])
def test_other_pillow_modes_are_converted_as_pillow_does(tmp_path, mode, target):
    rgb = data.astronaut()[:32, :40]
    im = Image.fromarray(rgb).convert("P" if mode == "PT" else mode)
    path = tmp_path / "x.png"
    if mode == "PT":
        im.info["transparency"] = 0
        im.save(path, transparency=0)
    else:
        im.save(path)
    decoded = load_image(path)
    with Image.open(path) as again:
        np.testing.assert_array_equal(decoded.array, np.asarray(again.convert(target)))
    assert decoded.note is not None and f"converted to {target} by Pillow" in decoded.note


@pytest.mark.parametrize(("photometric", "name"), [("separated", "SEPARATED (CMYK)"), ("minisblack", None)])
def test_tiff_colour_model_is_checked(tmp_path, photometric, name):
    import tifffile

    a = np.arange(8 * 8 * 4, dtype=np.uint8).reshape(8, 8, 4)
    tifffile.imwrite(tmp_path / "c.tif", a if name else a[..., 0], photometric=photometric)
    if name is None:
        np.testing.assert_array_equal(read_image(tmp_path / "c.tif"), a[..., 0])
        return
    with pytest.raises(LoadError) as exc:
        read_image(tmp_path / "c.tif")
    assert str(exc.value) == (
        f"{tmp_path / 'c.tif'}: cannot read image: TIFF colour model {name} is not supported; convert it to RGB or gray"
    )


def test_16_bit_ppm_keeps_every_bit(tmp_path):
    a = np.random.default_rng(0).integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    (tmp_path / "a.ppm").write_bytes(b"P6\n5 6\n65535\n" + a.astype(">u2").tobytes())
    out = read_image(tmp_path / "a.ppm")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, a)  # Pillow reduces this to 8 bits


def test_mixed_dtypes_with_data_range_are_rescaled(write_png):
    gt = data.astronaut()[:64, :64]
    pred8 = noisy(gt, 10)
    pred12 = pred8.astype(np.uint16) * 16  # 12-bit data in a 16-bit file, range 0-4080
    got = compare_images(pred12, gt, data_range=4095)
    x, y = pred12 / 4095.0, gt / 255.0
    assert got["ssim"] == pytest.approx(structural_similarity(y, x, channel_axis=-1, data_range=1.0), abs=1e-9)
    assert got["mse"] == pytest.approx(mean_squared_error(y, x), rel=1e-12)
    assert got.info.data_range == 1.0
    assert got.info.data_range_source == (
        "mixed dtypes uint16/uint8, rescaled to [0, 1] (divided by 4095 and 255, from the data_range)"
    )
    # 0.1 compared raw codes here: SSIM about 0.04
    with pytest.raises(Exception) as exc:
        compare_images(pred12, gt, data_range=255)
    assert str(exc.value) == f"pred: values reach {pred12.max()}, above data_range=255"


@pytest.fixture
def numbered(tmp_path):
    """Folders of numbered images on both sides."""

    def make(folder: str, names_sizes: list[tuple[str, tuple[int, int]]]) -> None:
        for side in ("pred", "gt"):
            for name, (h, w) in names_sizes:
                path = tmp_path / side / folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                img = data.camera()[:h, :w]
                iio.imwrite(path, img if side == "gt" else noisy(img, 5))

    return make


def test_div2k_like_folder_of_different_sizes_is_images(tmp_path, numbered):
    numbered("DIV2K", [("0801.png", (40, 48)), ("0802.png", (48, 40)), ("0803.png", (40, 40))])
    p = find_pairs(tmp_path / "pred", tmp_path / "gt")
    assert [(i.id, i.kind) for i in p.items] == [
        ("DIV2K/0801", "image"),
        ("DIV2K/0802", "image"),
        ("DIV2K/0803", "image"),
    ]
    assert p.items[0].decision == (
        "image; folder DIV2K/ is not a sequence: its images differ in size (40x40, 40x48, 48x40)"
    )
    assert (p.sequence_folders, p.rejected_folders) == (0, 1)


def test_steps_of_five_are_images_and_contiguous_frames_a_sequence(tmp_path, numbered):
    numbered("cats", [(f"img_{i:04d}.png", (32, 32)) for i in (0, 5, 10)])
    numbered("clip", [(f"f{i}.png", (32, 32)) for i in (1, 2, 3)])
    p = find_pairs(tmp_path / "pred", tmp_path / "gt")
    kinds = {i.id: (i.kind, i.decision) for i in p.items}
    assert kinds["cats/img_0005"] == (
        "image",
        "image; folder cats/ is not a sequence: its numbers are not contiguous (steps of 5 after 0)",
    )
    assert kinds["clip"] == ("sequence", "frame folder: 3 frames numbered 1-3 without gaps, all 32x32")
    always = find_pairs(tmp_path / "pred", tmp_path / "gt", sequences="always")
    assert [i.id for i in always.items] == ["cats", "clip"]


def test_gaps_are_a_sequence_when_the_other_side_is_a_video(tmp_path):
    frames = np.stack([data.camera()[:32, :32]] * 3)
    (tmp_path / "gt").mkdir()
    iio.imwrite(
        tmp_path / "gt" / "v.mp4", np.stack([np.stack([f] * 3, -1) for f in frames]), plugin="pyav", codec="libx264"
    )
    for n in (0, 5, 10):
        iio.imwrite(
            tmp_path / "pred" / "v" / f"{n}.png"
            if (tmp_path / "pred" / "v").exists()
            else _mk(tmp_path / "pred" / "v", n),
            frames[0],
        )
    (item,) = find_pairs(tmp_path / "pred", tmp_path / "gt").items
    assert (item.kind, item.decision) == (
        "sequence",
        "frame folder: 3 frames, all 32x32, paired with a video of the same name",
    )


def _mk(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{n}.png"


def test_read_as_is_in_every_report(tmp_path, numbered):
    numbered("cats", [(f"img_{i}.png", (32, 32)) for i in (0, 5)])
    out = tmp_path / "out"
    result = run(
        "compare",
        tmp_path / "pred",
        tmp_path / "gt",
        "--json",
        out / "r.json",
        "--csv",
        out / "r.csv",
        "--markdown",
        out / "r.md",
        "--html",
        out / "r.html",
    )
    assert result.exit_code == 0, result.output
    assert "Note: 0 folders of numbered images scored as frame sequences, 1 as separate images" in result.stderr
    why = "image; folder cats/ is not a sequence: its numbers are not contiguous (steps of 5 after 0)"
    doc = strict_json((out / "r.json").read_text())
    assert {i["read_as"] for i in doc["items"]} == {why}
    assert doc["config"]["sequences"] == "auto"
    rows = list(csv.DictReader(io.StringIO((out / "r.csv").read_text())))
    assert {r["read_as"] for r in rows} == {why}
    assert "not a sequence: its numbers are not contiguous" in (out / "r.md").read_text()
    assert "not a sequence: its numbers are not contiguous" in (out / "r.html").read_text()


def test_a_01_baseline_with_frame_folders_is_refused(tmp_path, write_png, rgb):
    write_png("pred/a.png", rgb)
    write_png("gt/a.png", rgb)
    base = tmp_path / "base.json"
    assert run("compare", tmp_path / "pred", tmp_path / "gt", "--json", base).exit_code == 0
    doc = json.loads(base.read_text())
    del doc["config"]["sequences"]
    doc["config"]["frame_folders"] = True
    base.write_text(json.dumps(doc))
    result = run("compare", tmp_path / "pred", tmp_path / "gt", "--baseline", base)
    assert result.exit_code == 2
    assert "other settings (sequences='always' vs 'auto')" in result.output


@pytest.fixture
def scored(tmp_path, write_png):
    """Three scored items and their report; the hardest one is c."""
    img = data.astronaut()[:64, :64]
    for name, sigma in (("g/a", 3), ("g/b", 5), ("g/c", 40)):
        write_png(f"gt/{name}.png", img)
        write_png(f"pred/{name}.png", noisy(img, sigma))
    base = tmp_path / "base.json"
    assert run("compare", tmp_path / "pred", tmp_path / "gt", "--json", base).exit_code == 0
    return tmp_path / "pred", tmp_path / "gt", base


def test_a_missing_prediction_fails_the_baseline_gate(scored, tmp_path):
    pred, gt, base = scored
    (pred / "g" / "c.png").unlink()
    result = run("compare", pred, gt, "--baseline", base, "--max-drop", "psnr=0.1", "--json", tmp_path / "new.json")
    assert result.exit_code == 4
    assert "Gate failed: every baseline item is scored: 1 missing (g/c)" in result.stderr
    allowed = run("compare", pred, gt, "--baseline", base, "--max-drop", "psnr=0.1", "--allow-missing")
    assert allowed.exit_code == 0, allowed.output
    d = CliRunner().invoke(cli, ["diff", str(base), str(tmp_path / "new.json")])
    assert d.exit_code == 4
    assert "1 item in the baseline, missing now:\n  g/c\n" in d.stdout
    assert "(n 3 -> 2: not the same items)" in d.stdout  # the "improvement" is over fewer items


def test_a_failed_item_fails_the_baseline_gate(scored):
    pred, gt, base = scored
    (pred / "g" / "b.png").write_bytes(b"")
    result = run("compare", pred, gt, "--baseline", base)
    assert result.exit_code == 1  # the item error comes first
    assert "Gate failed: every baseline item is scored: 1 failed now (g/b)" in result.stderr


def test_item_order_is_total_for_names_differing_in_case(tmp_path, write_png, rgb):
    for name in ("b.png", "B.png", "a.png", "A.png"):
        write_png(f"pred/{name}", rgb[:16, :16])
        write_png(f"gt/{name}", rgb[:16, :16])
    assert [i.id for i in find_pairs(tmp_path / "pred", tmp_path / "gt").items] == ["A", "a", "B", "b"]


# ------------------------------------------------------------ outputs


def test_fifo_and_device_are_written_through_not_replaced(scored, tmp_path):
    pred, gt, _ = scored
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    result = run("compare", pred, gt, "--json", fifo, "-q")
    reader.join(10)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert strict_json(got[0])["counts"]["ok"] == 3
    if ROOT:  # a character device like /dev/null, made here, never the system's own
        null = tmp_path / "null"
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        assert run("compare", pred, gt, "--json", null, "-q").exit_code == 0
        assert stat.S_ISCHR(os.stat(null).st_mode)


@pytest.mark.skipif(not ROOT, reason="mknod needs root")
def test_full_disk_is_one_line_exit_5(scored, tmp_path):
    pred, gt, _ = scored
    full = tmp_path / "full"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # writes fail with ENOSPC, like /dev/full
    result = run("compare", pred, gt, "--json", full, "-q")
    assert result.exit_code == 5
    assert result.output == f"Error: {full}: cannot write (No space left on device); no report was replaced\n"


def test_a_failed_write_replaces_no_report(scored, tmp_path, monkeypatch):
    pred, gt, _ = scored
    a, b = tmp_path / "a.json", tmp_path / "b.csv"
    a.write_text("old a")
    b.write_text("old b")
    from iqeval import outputs

    real = outputs._stage_file

    def fail_second(path, data):
        if path.name == "b.csv":
            raise OSError(28, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(outputs, "_stage_file", fail_second)
    result = run("compare", pred, gt, "--json", a, "--csv", b)
    assert result.exit_code == 5
    assert result.stderr == f"Error: --csv {b}: cannot write (No space left on device); no report was replaced\n"
    assert (a.read_text(), b.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: t / "adir", "--json {p}: is a folder; give a file name"),
        (lambda t: t / "afile" / "r.json", "--json {p}: {t}/afile is a file, not a folder"),
        (lambda t: "", "--json: the path is empty"),
    ],
)
def test_bad_output_paths_are_refused_before_scoring(scored, tmp_path, make, message):
    pred, gt, _ = scored
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    (pred / "g" / "a.png").write_bytes(b"")  # would be an item error (exit 1) if scoring ran
    p = make(tmp_path)
    result = run("compare", pred, gt, "--json", p)
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == "Error: " + message.format(p=p, t=tmp_path)


def test_two_options_naming_one_file_are_refused(scored, tmp_path):
    pred, gt, _ = scored
    result = run("compare", pred, gt, "--json", tmp_path / "r.txt", "--csv", tmp_path / "r.txt")
    assert result.exit_code == 2
    assert f"--json and --csv both write to {tmp_path / 'r.txt'}; give each its own" in result.output


def test_a_report_link_keeps_its_link(scored, tmp_path):
    pred, gt, _ = scored
    target = tmp_path / "real.json"
    target.write_text("old")
    (tmp_path / "link.json").symlink_to(target)
    assert run("compare", pred, gt, "--json", tmp_path / "link.json", "-q").exit_code == 0
    assert (tmp_path / "link.json").is_symlink()
    assert strict_json(target.read_text())["counts"]["ok"] == 3


def test_maps_never_follow_planted_links_and_never_collide(tmp_path, write_png):
    img = data.astronaut()[:32, :32]
    for name in ("a/b", "a__b"):
        write_png(f"gt/{name}.png", img)
        write_png(f"pred/{name}.png", noisy(img, 9))
    maps = tmp_path / "maps"
    maps.mkdir()
    outside = tmp_path / "outside.png"
    outside.write_text("keep me")
    (maps / "a__b.ssim.png").symlink_to(outside)
    result = run("compare", tmp_path / "pred", tmp_path / "gt", "--maps", maps, "-q")
    assert result.exit_code == 0, result.output
    assert outside.read_text() == "keep me"
    files = sorted(p.name for p in maps.iterdir() if p.name.endswith(".ssim.png"))
    # a/b keeps the readable name (replacing the planted link); a__b, which it could be confused with, gets a hash
    assert len(files) == 2 and "a__b.ssim.png" in files
    assert not (maps / "a__b.ssim.png").is_symlink()


def test_bad_gate_baseline_and_weights_are_refused_before_scoring(scored, tmp_path):
    pred, gt, base = scored
    (pred / "g" / "a.png").write_bytes(b"")  # an item error if scoring ran
    cases = [
        (["--metrics", "ssim", "--fail-under", "psnr=30"], "a gate checks psnr, which this run does not compute"),
        (["--fail-under", "psnr[scene=x]=30"], "a gate scopes key 'scene', but the keys are: group"),
        (["--group-by", "(?P<ssim>[^/]+)/"], "--group-by names a key 'ssim', which is also a report column"),
        (["--group-by", "(?P<status>[^/]+)/"], "--group-by names a key 'status', which is also a report column"),
        (["--color", "y", "--baseline", str(base)], "other settings (color='rgb' vs 'y')"),
        (["--scheduler", "not an address"], "is not a scheduler address like tcp://HOST:8786"),
        (["--sigma", "inf"], "SSIM sigma must be positive and finite, got inf"),
    ]
    for args, message in cases:
        result = run("compare", pred, gt, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, args


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\xff\xfe binary", "not a UTF-8 text file"),
        ('{"group": {"g": 1}}'.encode("utf-16"), "not a UTF-8 text file"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"group": [1, 2]}', 'expected {"KEY": {"VALUE": WEIGHT, ...}}'),
        (b'{"group": {"g": true}}', "weight for group='g' must be a non-negative number"),
        (b'{"group": {"other": 1}}', "--weights gives no weight for group='g'"),
    ],
)
def test_malformed_weights_are_one_line_exit_2(scored, tmp_path, content, message):
    pred, gt, _ = scored
    (tmp_path / "w.json").write_bytes(content)
    result = run("compare", pred, gt, "--weights", tmp_path / "w.json")
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\x00\x01\xff\xfe binary", "not a UTF-8 text file"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"schema_version": 1}', "'config' is missing or not an object"),
        (
            b'{"schema_version": 1, "config": {"metrics": "psnr"}, "summary": {}, "keys": {}, "items": []}',
            "config.metrics is not a list of names",
        ),
        (
            b'{"schema_version": 1, "config": {"metrics": ["psnr"]}, "summary": {"micro": {"psnr": {"mean": "x", "n": 1}}}, "keys": {}, "items": []}',
            "summary.micro.psnr.mean is not a number",
        ),
        (
            b'{"schema_version": 1, "config": {"metrics": ["psnr"]}, "summary": {"micro": {"psnr": {"mean": 1, "n": 1}}}, "keys": {}, "items": [{"id": "a", "status": "ok", "scores": {}}]}',
            "items[0] (a) score psnr is not a number",
        ),
    ],
)
def test_malformed_reports_are_one_line_exit_2(scored, tmp_path, content, message):
    pred, gt, base = scored
    (tmp_path / "bad.json").write_bytes(content)
    for args in (["compare", pred, gt, "--baseline", tmp_path / "bad.json"], ["diff", tmp_path / "bad.json", base]):
        result = run(*args)
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert "Traceback" not in result.output


def test_psnr_and_mse_on_images_smaller_than_the_ssim_window(write_png):
    a = write_png("a.png", np.full((4, 5), 10, np.uint8))
    b = write_png("b.png", np.full((4, 5), 13, np.uint8))
    result = run("compare", a, b, "--metrics", "psnr,mse")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "MSE         9"


def test_image_against_video_as_one_pair_is_one_line(tmp_path, write_png):
    img = write_png("a.png", np.zeros((16, 16, 3), np.uint8))
    iio.imwrite(tmp_path / "v.mp4", np.zeros((2, 16, 16, 3), np.uint8), plugin="pyav", codec="libx264")
    result = run("compare", tmp_path / "v.mp4", img)
    assert result.exit_code == 1
    assert result.output == f"Error: cannot pair {tmp_path / 'v.mp4'} (video) with {img} (image)\n"


@pytest.mark.parametrize("ext", [".tga", ".bmp", ".tif"])
def test_garbage_files_name_no_library_internals(tmp_path, ext):
    head = {".tga": b"\x00\x00\x02", ".bmp": b"BM", ".tif": b"II*\x00"}[ext]
    path = tmp_path / f"g{ext}"
    path.write_bytes(head + bytes(range(256)) * 3)
    with pytest.raises(LoadError) as exc:
        read_image(path)
    reason = str(exc.value).split(": cannot read image: ")[1]
    assert reason in (
        "corrupt data or an unsupported variant of the format",
        "corrupt or truncated data",
        "not a recognised image format",
    )


# ------------------------------------------------------------ one bad input never loses the others


def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path):
    import struct
    import zlib

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    # a 16000x16000 16-bit PNG header over a few bytes of data: 0.1 tried to decode 1.5 GB
    ihdr = struct.pack(">IIBBBBB", 16000, 16000, 16, 2, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 99)) + chunk(b"IEND", b"")
    )
    with pytest.raises(LoadError) as exc:
        read_image(path)
    assert str(exc.value) == (
        f"{path}: image is 16000x16000 (256,000,000 pixels), above the limit of 100,000,000 pixels; "
        "raise max_pixels= to read it"
    )


@pytest.mark.parametrize("kind", ["png", "tif", "ppm16", "mp4", "gif"])
def test_pixel_limit_applies_to_every_reader(tmp_path, kind):
    img = np.zeros((20, 30, 3), np.uint8)
    if kind == "ppm16":
        path = tmp_path / "a.ppm"
        path.write_bytes(b"P6\n30 20\n65535\n" + img.astype(">u2").tobytes())
    elif kind == "mp4":
        path = tmp_path / "a.mp4"
        iio.imwrite(path, np.stack([img] * 2), plugin="pyav", codec="libx264")
    elif kind == "gif":
        path = tmp_path / "a.gif"
        iio.imwrite(path, np.stack([img] * 2))
    else:
        path = tmp_path / f"a.{kind}"
        iio.imwrite(path, img)
    from iqeval.discovery import Source

    source = Source(path, "video" if kind in ("mp4", "gif") else "image")
    with pytest.raises(LoadError, match=r"is 30x20 \(600 pixels\), above the limit of 599 pixels"):
        list(source.decode(599))
    assert len(list(source.decode(600))) >= 1


def _kill_on_three(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's out-of-memory killer does
    return x * 10


def test_a_killed_worker_loses_only_its_item():
    mapper = process_map(2, lambda item, reason: -item)
    assert list(mapper(_kill_on_three, range(8))) == [0, 10, 20, -3, 40, 50, 60, 70]


def test_an_unexpected_exception_is_an_item_error(scored, monkeypatch):
    pred, gt, _ = scored
    import iqeval.evaluate as ev

    real = ev.score_arrays

    def boom(p, g, options, pred_name, gt_name, engine):
        if pred_name.endswith("b.png"):
            raise RuntimeError("a bug")
        return real(p, g, options, pred_name, gt_name, engine)

    monkeypatch.setattr(ev, "score_arrays", boom)
    result = run("compare", pred, gt, "-j", "1", "--json", "-")
    assert result.exit_code == 1
    doc = strict_json(result.stdout)
    assert [(i["id"], i["status"]) for i in doc["items"]] == [("g/a", "ok"), ("g/b", "error"), ("g/c", "ok")]
    assert doc["items"][1]["error"] == "unexpected error (RuntimeError: a bug)"


def test_unreadable_folder_is_noted_not_skipped_in_silence(scored, monkeypatch, write_png, rgb):
    pred, gt, _ = scored
    write_png("pred/top.png", rgb[:16, :16])
    write_png("gt/top.png", rgb[:16, :16])
    real = os.scandir

    def scandir(path):
        if str(path).endswith(os.sep + "g") and str(path).startswith(str(gt)):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = run("compare", pred, gt, "--strict")
    assert f"Warning: cannot read folder {gt / 'g'}: Permission denied" in result.stderr
    assert result.exit_code == 3


def test_a_link_to_an_ancestor_is_not_walked(scored):
    pred, gt, _ = scored
    (pred / "g" / "up").symlink_to("/")
    result = run("compare", pred, gt)
    assert result.exit_code == 0
    assert f"Warning: not following link {pred / 'g' / 'up'} -> /: it contains the tree itself" in result.stderr


def test_a_very_deep_tree(tmp_path, write_png, rgb):
    deep = tmp_path / "pred"
    deep.mkdir()
    here = os.getcwd()
    try:
        os.chdir(deep)
        for _ in range(1100):  # deeper than Python's recursion limit
            os.mkdir("d")
            os.chdir("d")
    finally:
        os.chdir(here)
    write_png("pred/a.png", rgb[:16, :16])
    write_png("gt/a.png", rgb[:16, :16])
    try:
        result = run("compare", tmp_path / "pred", tmp_path / "gt", "-q")
        assert result.exit_code == 0, result.output
    finally:
        # shutil.rmtree (and pytest's clean-up) recurse: take the chain apart from the bottom
        os.chdir(deep)
        depth = 0
        while os.path.isdir("d"):
            os.chdir("d")
            depth += 1
        for _ in range(depth):
            os.chdir("..")
            os.rmdir("d")
        os.chdir(here)


def _children_alive(marker: str) -> list[str]:
    """Command lines of running processes that mention ``marker`` (the run's own folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(cmdline)
    return found


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_run_keeps_the_old_report_and_leaves_no_worker(tmp_path, write_png, sig, code):
    img = np.tile(data.astronaut(), (2, 2, 1))  # 1024x1024: long enough to be interrupted mid-run
    for i in range(40):
        write_png(f"gt/{i}.png", img)
        write_png(f"pred/{i}.png", noisy(img, 10, seed=i))
    report = tmp_path / "report.json"
    report.write_text("the previous report")
    iqeval = Path(sys.executable).with_name("iqeval")
    proc = subprocess.Popen(
        [str(iqeval), "compare", str(tmp_path / "pred"), str(tmp_path / "gt"), "-j", "2", "--json", str(report)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(_children_alive(str(tmp_path))) < 3:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the signal could be sent"
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip().splitlines()[-1] == "Interrupted: no report written."
    assert report.read_text() == "the previous report"
    time.sleep(0.5)
    assert _children_alive(str(tmp_path)) == []


# ------------------------------------------------------------ every text a report writes is safe


HOSTILE = [
    "<!--<script>",
    "</script><script>alert(1)</script>",
    "evil\n### iqeval: passed",
    "tick`s </details> | pipe",
    "=cmd|' /C calc'!A0",
    "esc\x1b[31mred",
    "ctl\x01\x02\x7f",
]


def _hostile_tree(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    img = data.astronaut()[:24, :24]
    for i, name in enumerate(names):
        for side in ("pred", "gt"):
            path = tmp_path / side / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            iio.imwrite(path, img if side == "gt" else noisy(img, 3 + i))
    return tmp_path / "pred", tmp_path / "gt"


def _all_reports(pred: Path, gt: Path, out: Path):
    result = run(
        "compare",
        pred,
        gt,
        "--json",
        out / "r.json",
        "--csv",
        out / "r.csv",
        "--frames-csv",
        out / "f.csv",
        "--junit",
        out / "r.xml",
        "--markdown",
        out / "r.md",
        "--html",
        out / "r.html",
        "--items",
    )
    return result


def _check_reports(out: Path, n: int) -> None:
    doc = strict_json((out / "r.json").read_text(encoding="utf-8"))
    assert doc["counts"]["ok"] == n
    rows = list(csv.DictReader(io.StringIO((out / "r.csv").read_text(encoding="utf-8"))))
    assert len(rows) == n
    for r in rows:
        assert r["id"][:1] not in ("=", "+", "-", "@")
        assert all(c.isprintable() for c in r["id"])
    ET.fromstring((out / "r.xml").read_bytes())  # parses: no control characters
    md = (out / "r.md").read_text(encoding="utf-8")
    assert [line for line in md.splitlines() if line.startswith("#")] == ["### iqeval: passed"]
    assert md.count("</details>") == md.count("<details>")
    html = (out / "r.html").read_text(encoding="utf-8")
    embedded = html.split('id="items-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in embedded and ">" not in embedded
    assert json.loads(embedded)["rows"]


def test_hostile_names_in_every_writer(tmp_path):
    pred, gt = _hostile_tree(tmp_path, HOSTILE)
    out = tmp_path / "out"
    result = _all_reports(pred, gt, out)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x01" not in result.output
    assert "esc\\x1b[31mred" in result.output
    _check_reports(out, len(HOSTILE))


def test_non_utf8_names_in_every_writer(tmp_path):
    img = data.astronaut()[:24, :24]
    for side in (b"pred", b"gt"):
        os.makedirs(os.path.join(os.fsencode(tmp_path), side), exist_ok=True)
        iio.imwrite(os.fsdecode(os.path.join(os.fsencode(tmp_path), side, b"caf\xe9.png")), img)
    out = tmp_path / "out"
    result = _all_reports(tmp_path / "pred", tmp_path / "gt", out)
    assert result.exit_code == 0, result.output
    assert "caf\\xe9" in result.output
    _check_reports(out, 1)
    assert "caf\\xe9" in (out / "r.csv").read_text()


def test_markdown_append_appends(scored, tmp_path):
    pred, gt, _ = scored
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n")
    assert run("compare", pred, gt, "--markdown-append", summary, "-q").exit_code == 0
    text = summary.read_text()
    assert text.startswith("# earlier step\n### iqeval: passed\n")


# ------------------------------------------------------------ property-based: any name, every writer parses

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from iqeval.aggregate import summarize_run  # noqa: E402
from iqeval.discovery import Item, Source  # noqa: E402
from iqeval.evaluate import item_result  # noqa: E402
from iqeval.html import html_report  # noqa: E402
from iqeval.prepare import Options  # noqa: E402
from iqeval.report import dumps, items_csv, junit_xml, markdown_summary  # noqa: E402
from iqeval.results import Run  # noqa: E402

NAMES = st.text(
    st.characters(blacklist_categories=("Cs",)) | st.sampled_from(["\udcff", "\udc80"]), min_size=1, max_size=20
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(NAMES, min_size=1, max_size=4, unique=True), st.lists(NAMES, min_size=1, max_size=4))
def test_every_writer_output_parses_whatever_the_names(ids, errors):
    options = Options(metrics=("ssim", "psnr"))
    results = []
    for n, item_id in enumerate(ids):
        item = Item(
            item_id, Source(Path(item_id + ".png"), "image"), Source(Path(item_id + ".png"), "image"), decision="image"
        )
        if n % 2:
            results.append(item_result(item, options, None, {}, error=errors[n % len(errors)]))
        else:
            results.append(item_result(item, options, None, {"ssim": 0.5, "psnr": float("inf")}))
    summary = summarize_run(results, options.metrics, ("group",))
    run_ = Run({"metrics": ["ssim", "psnr"]}, tuple(results), summary, version="t")
    doc = run_.to_doc()
    assert json.loads(dumps(doc))["counts"]["items"] == len(ids)
    assert [r.id for r in Run.from_doc(json.loads(dumps(doc))).items] == ids  # names round-trip exactly
    rows = list(csv.reader(io.StringIO(items_csv(run_))))
    assert len(rows) == len(ids) + 1
    ET.fromstring(junit_xml(run_).encode("utf-8"))
    md = markdown_summary(run_)
    md.encode("utf-8")
    assert [line for line in md.splitlines() if line.startswith("#")] == [md.splitlines()[0]]
    page = html_report(run_)
    page.encode("utf-8")
    embedded = page.split('id="items-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in embedded
    assert [r[0] for r in json.loads(embedded)["rows"]] == [printable(i) for i in ids]


from iqeval.report import printable  # noqa: E402


def test_a_tree_of_every_bad_case_beside_good_items(tmp_path, write_png):
    """One run over good items and every kind of bad input: exact one-line errors, exit 1, good values exact."""
    import struct
    import zlib

    img = data.astronaut()[:48, :64]
    good = {"g/noisy": noisy(img, 9), "g/same": img}
    for name, pred in good.items():
        write_png(f"gt/{name}.png", img)
        write_png(f"pred/{name}.png", pred)
    Image.fromarray(noisy(img, 4)).convert("CMYK").save(tmp_path / "pred/g/cmyk.jpg", quality=95)
    write_png("gt/g/cmyk.png", img)
    pred16 = noisy(img, 6).astype(np.uint16) * 257
    write_png("pred/g/deep.png", pred16[..., 0])
    write_png("gt/g/deep.png", img[..., 0])

    bad = tmp_path / "pred" / "bad"
    for name in ("empty", "trunc", "text", "size", "small", "bomb", "tga"):
        write_png(f"gt/bad/{name}.png", img if name != "small" else img[:3, :3])
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    full = (tmp_path / "gt/bad/trunc.png").read_bytes()
    (bad / "trunc.png").write_bytes(full[: len(full) // 2])
    (bad / "text.png").write_text("not an image\n")
    write_png("pred/bad/size.png", img[:40])
    write_png("pred/bad/small.png", img[:3, :3])

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    (bad / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 16000, 16000, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    (bad / "tga.tga").write_bytes(b"\x00\x00\x02" + bytes(range(256)) * 2)

    result = run("compare", tmp_path / "pred", tmp_path / "gt", "--json", "-", "-j", "2")
    assert result.exit_code == 1
    p, g = tmp_path / "pred", tmp_path / "gt"
    errors = sorted(line for line in result.stderr.splitlines() if line.startswith("Error: "))
    assert errors == sorted(
        [
            f"Error: bad/bomb: {p}/bad/bomb.png: image is 16000x16000 (256,000,000 pixels), above the limit of "
            "100,000,000 pixels; raise --max-pixels to read it",
            f"Error: bad/empty: {p}/bad/empty.png: file is empty",
            f"Error: bad/size: size mismatch: {p}/bad/size.png is 64x40 but {g}/bad/size.png is 64x48",
            f"Error: bad/small: {p}/bad/small.png: 3x3 is smaller than the 7x7 SSIM window; pass an odd --win-size of at most 3",
            f"Error: bad/text: {p}/bad/text.png: cannot read image: not a recognised image format",
            f"Error: bad/tga: {p}/bad/tga.tga: cannot read image: not a recognised image format",
            f"Error: bad/trunc: {p}/bad/trunc.png: cannot read image: corrupt or truncated data",
        ]
    )
    assert "Traceback" not in result.output
    doc = strict_json(result.stdout)
    items = {i["id"]: i for i in doc["items"]}
    assert doc["counts"]["ok"] == 4 and doc["counts"]["failed"] == 7
    for name, pred in good.items():
        expected = structural_similarity(img, pred, channel_axis=-1, data_range=255)
        assert items[name]["scores"]["ssim"] == pytest.approx(expected, abs=1e-9)
    with Image.open(p / "g" / "cmyk.jpg") as im:
        as_rgb = np.asarray(im.convert("RGB"))
    assert items["g/cmyk"]["scores"]["ssim"] == pytest.approx(
        structural_similarity(img, as_rgb, channel_axis=-1, data_range=255), abs=1e-9
    )
    assert items["g/cmyk"]["info"]["conversions"] == ["cmyk.jpg: stored as CMYK, converted to RGB by Pillow"]
    deep = structural_similarity(img[..., 0] / 255.0, pred16[..., 0] / 65535.0, data_range=1.0)
    assert items["g/deep"]["scores"]["ssim"] == pytest.approx(deep, abs=1e-9)


def test_a_folder_that_cannot_be_written_is_refused_before_scoring(scored, tmp_path, monkeypatch):
    # as root, permission bits do not stop a write; iqeval tries to create a file where the report goes
    pred, gt, _ = scored
    import tempfile as tf

    real = tf.mkstemp

    def mkstemp(*args, **kwargs):
        if str(kwargs.get("dir", "")).endswith("readonly"):
            raise PermissionError(13, "Permission denied")
        return real(*args, **kwargs)

    (tmp_path / "readonly").mkdir()
    monkeypatch.setattr(tf, "mkstemp", mkstemp)
    result = run("compare", pred, gt, "--csv", tmp_path / "readonly" / "r.csv")
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        f"Error: --csv {tmp_path / 'readonly' / 'r.csv'}: cannot write in {tmp_path / 'readonly'} (Permission denied)"
    )


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.update(counts="many"),
        lambda d: d.update(checks=[{"name": "x"}]),
        lambda d: d.update(paired=[{"a": "x"}]),
        lambda d: d["items"][0].update(frames={"ssim": [1.0], "psnr": [1.0, 2.0], "mse": [1.0]}),
        lambda d: d.update(tool="iqeval"),
    ],
)
def test_damaged_optional_fields_are_one_line_exit_2(scored, tmp_path, damage):
    base = scored[2]
    doc = json.loads(base.read_text())
    damage(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = run("diff", bad, base)
    assert result.exit_code == 2, result.output
    assert "not an iqeval batch report" in result.output and "Traceback" not in result.output
