"""A fast, memory-bounded engine that equals :mod:`skimage.metrics` to 1e-6.

Where skimage converts whole images to float64 and keeps some thirty full-size
temporaries per channel, this engine walks the image in horizontal bands:

* each band is converted to float64 once, scaled once, and all channels are
  filtered in one call;
* the five SSIM moments (x, y, x*x, y*y, x*y) are stacked and filtered
  together, with the same SciPy 1-D filters and border mode skimage uses, so
  every output pixel sees exactly the inputs it sees in skimage;
* MSE of integer images is summed in exact integer arithmetic.

Peak memory is the two decoded images plus a few bands, instead of dozens of
float64 copies. :mod:`iqeval.metrics` stays the reference, and the test suite
holds this engine to it for every option.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter1d, uniform_filter1d

from .metrics import TRUNCATE
from .prepare import Options, Prepared

BAND_ELEMENTS = 1 << 18  # about 2 MiB of float64 per moment and band


def _band_rows(width: int, channels: int, minimum: int) -> int:
    return max(minimum, BAND_ELEMENTS // max(1, width * channels))


def _to_float(a: np.ndarray, scale: float) -> np.ndarray:
    x = a.astype(np.float64)  # always a fresh array we may overwrite
    if scale != 1.0:
        x *= scale
    return x


def sum_squared_error(pred: np.ndarray, gt: np.ndarray, pred_scale: float, gt_scale: float) -> float:
    """Sum of squared differences, exact for integer inputs."""
    rows = _band_rows(pred.shape[1], 1 if pred.ndim == 2 else pred.shape[2], 8)
    integer = pred.dtype.kind == "u" and gt.dtype.kind == "u" and pred_scale == gt_scale == 1.0
    if integer:
        total = 0
        wide = np.int32 if max(pred.dtype.itemsize, gt.dtype.itemsize) <= 2 else np.int64
        for r0 in range(0, pred.shape[0], rows):
            diff = pred[r0 : r0 + rows].astype(wide) - gt[r0 : r0 + rows].astype(wide)
            flat = diff.astype(np.int64).ravel()
            total += int(np.dot(flat, flat))
        return float(total)
    acc = 0.0
    for r0 in range(0, pred.shape[0], rows):
        d = _to_float(pred[r0 : r0 + rows], pred_scale)
        d -= _to_float(gt[r0 : r0 + rows], gt_scale)
        flat = d.ravel()
        acc += float(np.dot(flat, flat))
    return acc


def mean_ssim(
    pred: np.ndarray,
    gt: np.ndarray,
    pred_scale: float,
    gt_scale: float,
    *,
    data_range: float,
    kernel: str,
    win_size: int | None,
    sigma: float,
) -> float:
    """Mean SSIM over channels and the cropped interior, as skimage defines it."""
    gaussian = kernel == "gaussian"
    if gaussian:
        radius = int(TRUNCATE * sigma + 0.5)
        win = win_size if win_size is not None else 2 * radius + 1
        cov_norm = 1.0
    else:
        win = win_size if win_size is not None else 7
        radius = win // 2
        np_ = win * win
        cov_norm = np_ / (np_ - 1)
    pad = (win - 1) // 2
    height, width = pred.shape[:2]
    channels = 1 if pred.ndim == 2 else pred.shape[2]
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2

    def filt(a: np.ndarray, axis: int) -> np.ndarray:
        if gaussian:
            return gaussian_filter1d(a, sigma, axis=axis, mode="reflect", truncate=TRUNCATE)
        return uniform_filter1d(a, win, axis=axis, mode="reflect")

    out_first, out_last = pad, height - pad  # skimage averages rows [pad, height - pad)
    rows = _band_rows(width, channels, 2 * radius + 1)
    total = 0.0
    count = 0
    for o0 in range(out_first, out_last, rows):
        o1 = min(o0 + rows, out_last)
        # input rows this band needs; where they would run past the image, the
        # slice ends at the image edge and 'reflect' mirrors exactly as in skimage
        i0, i1 = max(0, o0 - radius), min(height, o1 + radius)
        x = _to_float(pred[i0:i1], pred_scale)
        y = _to_float(gt[i0:i1], gt_scale)
        m = np.empty((5, *x.shape))
        m[0] = x
        m[1] = y
        np.multiply(x, x, out=m[2])
        np.multiply(y, y, out=m[3])
        np.multiply(x, y, out=m[4])
        m = filt(m, 1)[:, o0 - i0 : o1 - i0]
        m = filt(m, 2)[:, :, pad : width - pad]
        ux, uy, uxx, uyy, uxy = m
        # uxx, uyy, uxy become the (co)variances in place
        uxx -= ux * ux
        uyy -= uy * uy
        uxy -= ux * uy
        if cov_norm != 1.0:
            uxx *= cov_norm
            uyy *= cov_norm
            uxy *= cov_norm
        num = 2 * ux * uy + c1
        num *= 2 * uxy + c2
        ux *= ux
        uy *= uy
        ux += uy
        ux += c1  # B1
        uxx += uyy
        uxx += c2  # B2
        ux *= uxx
        num /= ux
        total += float(num.sum(dtype=np.float64))
        count += num.size
    return total / count


def score_fast(prep: Prepared, options: Options) -> dict[str, float]:
    """Compute the selected metrics of a prepared pair with the banded engine."""
    scores: dict[str, float] = {}
    data_range = prep.info.data_range
    if "psnr" in options.metrics or "mse" in options.metrics:
        n = prep.pred.size
        mse = sum_squared_error(prep.pred, prep.gt, prep.pred_scale, prep.gt_scale) / n
    for name in options.metrics:
        if name == "ssim":
            scores[name] = mean_ssim(
                prep.pred,
                prep.gt,
                prep.pred_scale,
                prep.gt_scale,
                data_range=data_range,
                kernel=options.ssim_kernel,
                win_size=options.win_size,
                sigma=options.sigma,
            )
        elif name == "psnr":
            scores[name] = math.inf if mse == 0.0 else 10.0 * math.log10(data_range * data_range / mse)
        else:
            scores[name] = mse
    return scores
