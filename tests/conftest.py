from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from skimage import data


def noisy(img: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """``img`` plus clipped Gaussian noise, same dtype."""
    rng = np.random.default_rng(seed)
    hi = np.iinfo(img.dtype).max if img.dtype.kind == "u" else 1.0
    out = np.clip(img.astype(np.float64) + rng.normal(0, sigma, img.shape), 0, hi)
    return np.rint(out).astype(img.dtype) if img.dtype.kind == "u" else out.astype(img.dtype)


@pytest.fixture
def rgb() -> np.ndarray:
    return data.astronaut()[100:196, 150:262]  # 112x96 RGB uint8


@pytest.fixture
def write_png(tmp_path: Path):
    def write(name: str, img: np.ndarray) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        iio.imwrite(path, img)
        return path

    return write
