"""Pairing two trees: stems, extensions, hidden and non-image files, symlinks, frame folders."""

from __future__ import annotations

import os

import numpy as np
import pytest

from iqeval.discovery import find_pairs, natural_key

IMG = np.zeros((8, 8), np.uint8)


@pytest.fixture
def trees(tmp_path, write_png):
    def make(pred: list[str], gt: list[str]):
        for side, names in (("pred", pred), ("gt", gt)):
            (tmp_path / side).mkdir(exist_ok=True)
            for name in names:
                path = tmp_path / side / name
                if path.suffix in (".txt", ".mp4"):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text("x")
                else:
                    write_png(f"{side}/{name}", IMG)
        return tmp_path / "pred", tmp_path / "gt"

    return make


def test_pairs_by_stem_across_extensions(trees):
    pred, gt = trees(["a/x.png", "a/y.png", "b.png"], ["a/x.jpg".replace(".jpg", ".png"), "a/y.png", "b.png"])
    p = find_pairs(pred, gt)
    assert [i.id for i in p.items] == ["a/x", "a/y", "b"]
    assert p.pred_only == () and p.gt_only == ()


def test_png_pairs_with_jpg(tmp_path):
    import imageio.v3 as iio

    (tmp_path / "pred/a").mkdir(parents=True)
    (tmp_path / "gt/a").mkdir(parents=True)
    iio.imwrite(tmp_path / "pred/a/x.png", np.zeros((8, 8, 3), np.uint8))
    iio.imwrite(tmp_path / "gt/a/x.jpg", np.zeros((8, 8, 3), np.uint8))
    p = find_pairs(tmp_path / "pred", tmp_path / "gt")
    assert [(i.id, i.pred.path.name, i.gt.path.name) for i in p.items] == [("a/x", "x.png", "x.jpg")]


def test_one_sided_files_are_listed(trees):
    pred, gt = trees(["a.png", "only_pred.png"], ["a.png", "sub/only_gt.png"])
    p = find_pairs(pred, gt)
    assert [i.id for i in p.items] == ["a"]
    assert p.pred_only == ("only_pred.png",)
    assert p.gt_only == (os.path.join("sub", "only_gt.png"),)


def test_two_candidates_for_one_stem_is_an_item_error_naming_both(trees):
    pred, gt = trees(["x.png", "x.bmp", "y.png"], ["x.png", "y.png"])
    p = find_pairs(pred, gt)
    x = p.items[0]
    assert x.id == "x"
    assert x.error == f"ambiguous: {pred / 'x.bmp'} and {pred / 'x.png'} both match x"
    assert p.items[1].error is None


def test_hidden_files_skipped_and_non_images_counted(trees):
    pred, gt = trees([".hidden.png", ".cache/z.png", "a.png", "notes.txt"], ["a.png", "readme.txt"])
    p = find_pairs(pred, gt)
    assert [i.id for i in p.items] == ["a"]
    assert p.ignored == 2
    assert p.pred_only == ()


def test_symlink_loop_is_followed_once(trees):
    pred, gt = trees(["d/a.png"], ["d/a.png"])
    os.symlink(pred, pred / "d" / "loop")
    p = find_pairs(pred, gt)
    assert [i.id for i in p.items] == ["d/a"]


def test_symlinked_file_is_followed(trees, tmp_path, write_png):
    pred, gt = trees(["a.png"], ["a.png"])
    target = write_png("elsewhere/b.png", IMG)
    os.symlink(target, pred / "b.png")
    os.symlink(target, gt / "b.png")
    assert [i.id for i in find_pairs(pred, gt).items] == ["a", "b"]


def test_frame_folder_rule(trees):
    frames = [f"clip/f{i}.png" for i in (1, 2, 10)]
    pred, gt = trees(frames, frames)
    p = find_pairs(pred, gt, sequences="always")  # the 0.1 rule: names alone
    assert [(i.id, i.kind) for i in p.items] == [("clip", "sequence")]
    assert [f.name for f in p.items[0].pred.frames] == ["f1.png", "f2.png", "f10.png"]  # natural order


@pytest.mark.parametrize(
    "names",
    [
        ["clip/f1.png"],  # a single image is not a sequence
        ["clip/a1.png", "clip/b2.png"],  # different prefixes
        ["clip/f1.png", "clip/f2.jpg"],  # different extensions
        ["clip/f1.png", "clip/cover.png"],  # an unnumbered name
        ["clip/f1.png", "clip/f01.png"],  # the same number twice
    ],
)
def test_not_frame_folders(trees, names):
    pred, gt = trees(names, names)
    assert all(i.kind == "image" for i in find_pairs(pred, gt).items)


def test_root_is_never_a_frame_folder_and_switch_turns_detection_off(trees):
    names = ["0801.png", "0802.png", "set/0001.png", "set/0002.png"]
    pred, gt = trees(names, names)
    assert [i.id for i in find_pairs(pred, gt).items] == ["0801", "0802", "set"]
    off = find_pairs(pred, gt, sequences="never")
    assert [i.id for i in off.items] == ["0801", "0802", "set/0001", "set/0002"]


def test_video_pairs_with_frame_folder(trees):
    pred, gt = trees(["clips/pan.mp4"], ["clips/pan/0001.png", "clips/pan/0002.png"])
    p = find_pairs(pred, gt)
    assert [(i.id, i.pred.kind, i.gt.kind) for i in p.items] == [("clips/pan", "video", "frames")]


def test_video_against_still_is_an_item_error(trees):
    pred, gt = trees(["v.mp4"], ["v.png"])
    (item,) = find_pairs(pred, gt).items
    assert item.error == f"cannot pair {pred / 'v.mp4'} (video) with {gt / 'v.png'} (image)"


def test_natural_key():
    assert sorted(["f10", "f2", "F1"], key=natural_key) == ["F1", "f2", "f10"]
