"""Batch evaluation: sequences, keys, failures that never lose good results."""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from iqeval.evaluate import CompareConfig, evaluate, item_keys

from .conftest import noisy


def _results(pred, gt, **kw):
    return {r.id: r for r in evaluate(CompareConfig(pred=pred, gt=gt, **kw))}


def test_images_match_skimage(tmp_path, write_png, rgb):
    refs = {}
    for name, sigma in (("a/one", 5), ("a/two", 15), ("b/three", 25)):
        pred = noisy(rgb, sigma, seed=sigma)
        write_png(f"gt/{name}.png", rgb)
        write_png(f"pred/{name}.png", pred)
        refs[name] = (
            structural_similarity(rgb, pred, data_range=255, channel_axis=-1),
            peak_signal_noise_ratio(rgb, pred, data_range=255),
            mean_squared_error(rgb, pred),
        )
    results = _results(tmp_path / "pred", tmp_path / "gt")
    assert sorted(results) == sorted(refs)
    for name, (s, p, m) in refs.items():
        r = results[name]
        assert r.ok and r.kind == "image"
        assert r.scores["ssim"] == pytest.approx(s, abs=1e-9)
        assert r.scores["psnr"] == pytest.approx(p, abs=1e-9)
        assert r.scores["mse"] == pytest.approx(m, rel=1e-12)
    assert results["a/one"].keys == {"group": "a"}


def _video(path, frames):
    iio.imwrite(path, np.stack(frames), plugin="pyav", codec="libx264", fps=5)


def test_video_against_frame_folder_matches_independent_decoding(tmp_path, write_png):
    rng = np.random.default_rng(0)
    gt_frames = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(5)]
    for i, f in enumerate(gt_frames):
        write_png(f"gt/clip/{i:03d}.png", f)
    (tmp_path / "pred").mkdir()
    _video(tmp_path / "pred" / "clip.mp4", gt_frames)
    (r,) = evaluate(CompareConfig(pred=tmp_path / "pred", gt=tmp_path / "gt"))
    assert r.ok, r.error
    assert r.kind == "sequence" and r.n_frames == 5
    decoded = list(iio.imiter(tmp_path / "pred" / "clip.mp4", plugin="pyav"))  # independent decoding
    expected = [
        (structural_similarity(g, p, data_range=255, channel_axis=-1), peak_signal_noise_ratio(g, p, data_range=255))
        for p, g in zip(decoded, gt_frames, strict=True)
    ]
    np.testing.assert_allclose(r.frame_scores[:, 0], [e[0] for e in expected], atol=1e-9)
    np.testing.assert_allclose(r.frame_scores[:, 1], [e[1] for e in expected], atol=1e-9)
    assert r.scores["ssim"] == pytest.approx(np.mean([e[0] for e in expected]), abs=1e-12)


def test_frame_count_mismatch_is_an_item_error_or_truncated(tmp_path, write_png):
    frame = np.full((16, 16), 50, np.uint8)
    for i in range(4):
        write_png(f"pred/clip/{i}.png", frame)
    for i in range(3):
        write_png(f"gt/clip/{i}.png", frame + 1)
    (r,) = evaluate(CompareConfig(pred=tmp_path / "pred", gt=tmp_path / "gt"))
    assert r.status == "error"
    assert (
        r.error
        == f"frame count mismatch: {tmp_path / 'pred' / 'clip'} has 4 frames but {tmp_path / 'gt' / 'clip'} has 3"
    )
    (t,) = evaluate(CompareConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", truncate_frames=True))
    assert t.ok and t.n_frames == 3 and t.scores["mse"] == 1.0
    assert t.warnings == (r.error + "; scored the first 3",)


def test_bad_frame_inside_sequence_names_the_frame(tmp_path, write_png):
    frame = np.full((16, 16), 50, np.uint8)
    for i in range(3):
        write_png(f"pred/clip/{i}.png", frame)
        write_png(f"gt/clip/{i}.png", frame if i != 1 else np.zeros((16, 20), np.uint8))
    # frames of two sizes are a sequence only when asked: --sequences always
    (r,) = evaluate(CompareConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", sequences="always"))
    assert (
        r.error == f"size mismatch: {tmp_path / 'pred/clip/1.png'} is 16x16 but {tmp_path / 'gt/clip/1.png'} is 20x16"
    )


def test_mixed_good_and_faulty_items_lose_no_good_result(tmp_path, write_png, rgb):
    write_png("gt/good1.png", rgb)
    write_png("pred/good1.png", noisy(rgb, 10))
    write_png("gt/good2.png", rgb)
    write_png("pred/good2.png", rgb)
    write_png("gt/small.png", rgb)
    write_png("pred/small.png", rgb[:50])
    write_png("gt/trunc.png", rgb)
    p = write_png("pred/trunc.png", rgb)
    p.write_bytes(p.read_bytes()[:200])
    write_png("gt/empty.png", rgb)
    (tmp_path / "pred" / "empty.png").write_bytes(b"")
    results = _results(tmp_path / "pred", tmp_path / "gt")
    assert {k: r.status for k, r in results.items()} == {
        "empty": "error",
        "good1": "ok",
        "good2": "ok",
        "small": "error",
        "trunc": "error",
    }
    assert results["good2"].scores["psnr"] == math.inf
    assert results["good1"].scores["mse"] == pytest.approx(mean_squared_error(rgb, noisy(rgb, 10)), rel=1e-12)
    assert results["empty"].error == f"{tmp_path / 'pred' / 'empty.png'}: file is empty"


def test_item_keys_default_and_regex():
    assert item_keys("faces/a/x", None) == {"group": "faces"}
    assert item_keys("x", None) == {"group": "."}
    rx = r"(?P<scene>[^/]+)/(?P<output>[^/.]+)"
    assert item_keys("s1/out_a", rx) == {"scene": "s1", "output": "out_a"}
    assert item_keys("loose", rx) is None


def _y4m(path, frames):
    """A yuv420p y4m file written by hand: the header, then FRAME and the three planes of each frame."""
    h, w = frames[0][0].shape
    data = f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n".encode()
    for y, u, v in frames:
        data += b"FRAME\n" + y.tobytes() + u.tobytes() + v.tobytes()
    path.write_bytes(data)


def test_y4m_is_a_video_and_frame_offset_aligns_a_shifted_clip(tmp_path):
    import av

    rng = np.random.default_rng(0)
    planes = [
        (
            rng.integers(16, 235, (24, 32), dtype=np.uint8),
            rng.integers(16, 240, (12, 16), dtype=np.uint8),
            rng.integers(16, 240, (12, 16), dtype=np.uint8),
        )
        for _ in range(6)
    ]
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    _y4m(tmp_path / "gt" / "clip.y4m", planes)
    _y4m(tmp_path / "pred" / "clip.y4m", planes[2:])  # starts two frames later
    with av.open(str(tmp_path / "gt" / "clip.y4m")) as c:  # decoded independently: PyAV to RGB
        theirs = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    from iqeval.sources import Source

    ours = [d.array for d in Source(tmp_path / "gt" / "clip.y4m", "video").decode()]
    assert len(ours) == 6 and all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    config = CompareConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", jobs=1)
    (plain,) = evaluate(config)
    assert plain.error is not None and "frame count mismatch" in plain.error
    (aligned,) = evaluate(CompareConfig(pred=tmp_path / "pred", gt=tmp_path / "gt", jobs=1, frame_offset=2))
    assert aligned.ok and aligned.n_frames == 4
    assert np.all(np.isinf(aligned.frame_scores[:, 1]))  # identical frames once aligned: PSNR inf
    (earlier,) = evaluate(CompareConfig(pred=tmp_path / "gt", gt=tmp_path / "pred", jobs=1, frame_offset=-2))
    assert earlier.ok and earlier.n_frames == 4 and np.all(earlier.frame_scores[:, 0] == 1.0)


def test_in_process_the_next_pair_decodes_while_this_one_is_scored(tmp_path, write_png, rgb, monkeypatch):
    import threading

    import iqeval.evaluate as ev

    for name, sigma in (("a", 5), ("b", 15), ("c", 25)):
        write_png(f"gt/{name}.png", rgb)
        write_png(f"pred/{name}.png", noisy(rgb, sigma, seed=sigma))
    (tmp_path / "pred" / "b.png").write_bytes(b"not a png")  # a decode error, met in the decoding thread
    started = {name: threading.Event() for name in "abc"}
    decode, score = ev._decode_pair, ev.score_arrays

    def recording_decode(pred, gt, max_pixels, gt_decoded):
        started[pred.path.stem].set()
        return decode(pred, gt, max_pixels, gt_decoded)

    overlapped = []

    def waiting_score(p, g, options, pred, gt, engine):
        nxt = {"a": "b", "c": None}[Path(pred).stem]
        # the next pair's decode has begun before this pair's scoring ends (a serial loop would time out)
        overlapped.append(nxt is None or started[nxt].wait(timeout=20))
        return score(p, g, options, pred, gt, engine)

    monkeypatch.setattr(ev, "_decode_pair", recording_decode)
    monkeypatch.setattr(ev, "score_arrays", waiting_score)
    results = _results(tmp_path / "pred", tmp_path / "gt", jobs=1)
    assert overlapped == [True, True]
    assert {k: r.status for k, r in results.items()} == {"a": "ok", "b": "error", "c": "ok"}
    assert results["b"].error.startswith(str(tmp_path / "pred" / "b.png"))
    for name, sigma in (("a", 5), ("c", 25)):
        expected = structural_similarity(rgb, noisy(rgb, sigma, seed=sigma), data_range=255, channel_axis=-1)
        assert results[name].scores["ssim"] == pytest.approx(expected, abs=1e-9)
