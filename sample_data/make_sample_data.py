"""Regenerate sample_data/ (run from the repository root):

    .venv/bin/python sample_data/make_sample_data.py

Ground truth comes from images bundled with scikit-image; predictions are the
ground truth after a blur and noise, as a mediocre restoration model would give.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from scipy.ndimage import gaussian_filter
from skimage import data, transform

ROOT = Path(__file__).resolve().parent
rng = np.random.default_rng(2026)


def degrade(img: np.ndarray, blur: float, noise: float) -> np.ndarray:
    x = img.astype(np.float64)
    sigma = (blur, blur, 0) if x.ndim == 3 else blur
    x = gaussian_filter(x, sigma) + rng.normal(0, noise, x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def small(img: np.ndarray, size: int) -> np.ndarray:
    out = transform.resize(img, (size, size), anti_aliasing=True, preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def main() -> None:
    for side in ("pred", "gt"):
        shutil.rmtree(ROOT / side, ignore_errors=True)
        (ROOT / side).mkdir()
    stills = {
        "faces/astronaut": (small(data.astronaut(), 128), 0.8, 3.0, ".png"),
        "faces/portrait": (small(data.camera(), 128), 1.0, 4.0, ".png"),
        "nature/cat": (small(data.chelsea()[:, 75:375], 128), 0.6, 2.0, ".png"),
        "nature/coffee": (small(data.coffee()[:, 50:450], 128), 1.2, 5.0, ".jpg"),
    }
    for stem, (gt, blur, noise, pred_ext) in stills.items():
        for side in ("pred", "gt"):
            (ROOT / side / stem).parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(ROOT / "gt" / f"{stem}.png", gt)
        pred = degrade(gt, blur, noise)
        if pred_ext == ".jpg":
            iio.imwrite(ROOT / "pred" / f"{stem}.jpg", pred, quality=90)
        else:
            iio.imwrite(ROOT / "pred" / f"{stem}.png", pred)

    # a panning shot: frame folders on both sides for "walk", and for "pan" a
    # lossy H.264 video on the prediction side against lossless frames
    scene = data.astronaut()[100:260, 100:420]
    frames = [small(scene[:, 16 * i : 16 * i + 160], 64) for i in range(8)]
    for name in ("walk", "pan"):
        (ROOT / "gt" / "clips" / name).mkdir(parents=True)
        for i, frame in enumerate(frames):
            iio.imwrite(ROOT / "gt" / "clips" / name / f"frame_{i + 1:04d}.png", frame)
    (ROOT / "pred" / "clips" / "walk").mkdir(parents=True)
    for i, frame in enumerate(frames):
        iio.imwrite(ROOT / "pred" / "clips" / "walk" / f"frame_{i + 1:04d}.png", degrade(frame, 0.7, 2.0))
    iio.imwrite(
        ROOT / "pred" / "clips" / "pan.mp4",
        np.stack([degrade(f, 0.5, 1.0) for f in frames]),
        plugin="pyav",
        codec="libx264",
        fps=8,
    )


if __name__ == "__main__":
    main()
