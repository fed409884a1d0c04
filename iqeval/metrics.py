"""Metric functions over prepared float arrays, and the metric registry.

Each metric follows :mod:`skimage.metrics`: one public function with keyword-only
options. These are the reference implementations; :mod:`iqeval.fast` computes the
same numbers with less memory traffic and is tested against these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ConfigError

# skimage.metrics is imported inside the functions: it pulls in scipy.stats,
# a second of start-up that the fast engine and the command line never need.

TRUNCATE = 3.5  # skimage's Gaussian truncation for SSIM (radius = int(3.5 * sigma + 0.5))


@dataclass(frozen=True)
class Metric:
    """A metric's name, display label, unit and direction."""

    name: str
    label: str
    unit: str
    higher_is_better: bool


METRICS: dict[str, Metric] = {
    "ssim": Metric("ssim", "SSIM", "", True),
    "psnr": Metric("psnr", "PSNR", "dB", True),
    "mse": Metric("mse", "MSE", "", False),
}


def parse_metrics(names: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate metric names and return them in registry order, without repeats."""
    items = names.split(",") if isinstance(names, str) else list(names)
    wanted = [n.strip().lower() for n in items if n.strip()]
    unknown = [n for n in wanted if n not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    if not wanted:
        raise ConfigError("no metric selected; choose from " + ", ".join(METRICS))
    return tuple(n for n in METRICS if n in wanted)


def ssim_window(kernel: str, win_size: int | None, sigma: float) -> int:
    """Side of the SSIM window as skimage derives it."""
    if win_size is not None:
        return win_size
    if kernel == "gaussian":
        return 2 * int(TRUNCATE * sigma + 0.5) + 1
    return 7


def mse(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean squared error, in the squared units of the inputs.

    Examples
    --------
    >>> import numpy as np
    >>> mse(np.full((4, 4), 10.0), np.full((4, 4), 13.0))
    9.0
    """
    from skimage.metrics import mean_squared_error

    return float(mean_squared_error(gt, pred))


def psnr(pred: np.ndarray, gt: np.ndarray, *, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB; ``inf`` for identical inputs.

    Examples
    --------
    >>> import numpy as np
    >>> round(psnr(np.full((4, 4), 10.0), np.full((4, 4), 11.0), data_range=255), 6)
    48.130804
    >>> psnr(np.zeros((4, 4)), np.zeros((4, 4)), data_range=255)
    inf
    """
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio

    # skimage divides by zero (and warns) for identical images; the honest answer is inf
    if float(mean_squared_error(gt, pred)) == 0.0:
        return math.inf
    return float(peak_signal_noise_ratio(gt, pred, data_range=float(data_range)))


def ssim(
    pred: np.ndarray,
    gt: np.ndarray,
    *,
    data_range: float,
    kernel: str = "uniform",
    win_size: int | None = None,
    sigma: float = 1.5,
) -> float:
    """Mean structural similarity, averaged over channels as skimage does.

    ``kernel="uniform"`` is skimage's default (7x7 box, sample covariance);
    ``kernel="gaussian"`` is Wang et al. (2004): an 11x11 Gaussian window with
    sigma 1.5 and population covariance.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(100.0).reshape(10, 10)
    >>> ssim(x, x, data_range=255)
    1.0
    """
    from skimage.metrics import structural_similarity

    channel_axis = -1 if pred.ndim == 3 else None
    if kernel == "gaussian":
        value = structural_similarity(
            gt,
            pred,
            data_range=float(data_range),
            channel_axis=channel_axis,
            gaussian_weights=True,
            sigma=sigma,
            win_size=win_size,
            use_sample_covariance=False,
        )
    else:
        value = structural_similarity(
            gt, pred, data_range=float(data_range), channel_axis=channel_axis, win_size=win_size
        )
    return float(value)
