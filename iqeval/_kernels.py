"""Compiled SSIM kernels (numba), used by :mod:`iqeval.fast` when numba is installed.

One fused pass per band of rows: each input row is scaled to float64 once, the
five moments (x, y, x*x, y*y, x*y) are filtered horizontally with the window's
weights, then vertically, and the SSIM formula is summed over the band; no
full-size temporary is ever made. The arithmetic is skimage's: the same
weights (a box of 1/k, or the truncated Gaussian), the same covariance
normalisation and constants, in float64. Compiled once per machine and cached
(numba's ``cache=True``); every function releases the GIL, so threads scale.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_BAND = 32  # output rows per band: the moments of a band stay in cache


@njit(cache=True, nogil=True)
def ssim_sum(x, y, xs, ys, w, row0, row1, col0, col1, c1, c2, cov):  # type: ignore[no-untyped-def]
    """Sum of the SSIM map over output rows [row0, row1) and columns [col0, col1) of one plane.

    ``x`` and ``y`` are 2-D (any dtype, any strides), multiplied by ``xs`` and
    ``ys``; ``w`` are the 1-D weights (odd length); every input the window
    needs must lie inside the arrays.
    """
    return ssim_cs_sums(x, y, xs, ys, w, row0, row1, col0, col1, c1, c2, cov, False)[0]


@njit(cache=True, nogil=True)
def ssim_cs_sums(x, y, xs, ys, w, row0, row1, col0, col1, c1, c2, cov, cs_relu):  # type: ignore[no-untyped-def]
    """(sum of the SSIM map, sum of the contrast-structure map) over the same window as :func:`ssim_sum`.

    With ``cs_relu`` a negative contrast-structure value counts as 0 in both
    (pyiqa's clipping).
    """
    k = w.shape[0]
    r = k // 2
    ncols = col1 - col0
    width = ncols + 2 * r
    xr = np.empty(width)
    yr = np.empty(width)
    h = np.zeros((5, _BAND + 2 * r, ncols))
    u = np.empty((5, ncols))
    total = 0.0
    total_cs = 0.0
    for b0 in range(row0, row1, _BAND):
        b1 = min(b0 + _BAND, row1)
        nrows = b1 - b0 + 2 * r
        for ii in range(nrows):
            i = b0 - r + ii
            for j in range(width):
                xr[j] = x[i, col0 - r + j] * xs
                yr[j] = y[i, col0 - r + j] * ys
            for m in range(5):
                for jj in range(ncols):
                    h[m, ii, jj] = 0.0
            for t in range(k):
                wt = w[t]
                for jj in range(ncols):
                    a = xr[jj + t]
                    b = yr[jj + t]
                    h[0, ii, jj] += wt * a
                    h[1, ii, jj] += wt * b
                    h[2, ii, jj] += wt * (a * a)
                    h[3, ii, jj] += wt * (b * b)
                    h[4, ii, jj] += wt * (a * b)
        for oi in range(b1 - b0):
            for m in range(5):
                for jj in range(ncols):
                    u[m, jj] = 0.0
            for t in range(k):
                wt = w[t]
                for m in range(5):
                    for jj in range(ncols):
                        u[m, jj] += wt * h[m, oi + t, jj]
            for jj in range(ncols):
                ux = u[0, jj]
                uy = u[1, jj]
                vx = cov * (u[2, jj] - ux * ux)
                vy = cov * (u[3, jj] - uy * uy)
                vxy = cov * (u[4, jj] - ux * uy)
                cs = (2.0 * vxy + c2) / (vx + vy + c2)
                if cs_relu and cs < 0.0:
                    cs = 0.0
                total += (2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1) * cs
                total_cs += cs
    return total, total_cs
