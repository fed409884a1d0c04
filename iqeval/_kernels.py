"""Compiled SSIM kernels (numba), used by :mod:`iqeval.fast` when numba is installed.

One pass down the image: each input row is scaled to float64 once, its four
moments (x, y, x*x + y*y, x*y) are filtered along the row into a ring of
filtered rows as tall as the window, each output row is filtered down the
ring, and the SSIM formula is summed row by row; no full-size temporary is
ever made. The uniform window on integer images has its own kernel of exact
running integer sums. The kernels allocate nothing: their callers
(:mod:`iqeval.fast`) hand them their scratch rows. numba implements
``np.empty`` in a module of its own (``numba.np.arrayobj``), which a kernel
that calls it imports when it loads from the cache: about 60 ms of every
command's start-up. The arithmetic is skimage's: the same
weights (a box of 1/k, or the truncated Gaussian), the same covariance
normalisation and constants, in float64 (filtering x*x + y*y once instead of
each square differs from skimage only by rounding, about 1e-16). Compiled once per machine and cached
(numba's ``cache=True``, and as C-callable machine code that loads without
importing numba: :mod:`iqeval._native`); every function releases the GIL, so
threads scale.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(inline="always")
def _down11(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, wr, w4, w3, w2, w1, w0, j):  # type: ignore[no-untyped-def]
    """Column ``j`` of eleven rows weighted by the symmetric taps (``wr`` the centre's), in one fixed order."""
    return (wr * a5[j] + w4 * (a4[j] + a6[j])) + (
        (w3 * (a3[j] + a7[j]) + w2 * (a2[j] + a8[j])) + (w1 * (a1[j] + a9[j]) + w0 * (a0[j] + a10[j]))
    )


@njit(inline="always")
def _ring_rows(ring, base, n, m):  # type: ignore[no-untyped-def]
    """Moment ``m`` of input rows ``base`` .. ``base + 7`` in the ring (a row's slot is its index modulo ``n``)."""
    return (
        ring[base % n, m],
        ring[(base + 1) % n, m],
        ring[(base + 2) % n, m],
        ring[(base + 3) % n, m],
        ring[(base + 4) % n, m],
        ring[(base + 5) % n, m],
        ring[(base + 6) % n, m],
        ring[(base + 7) % n, m],
    )


@njit(inline="always")
def _down7(a0, a1, a2, a3, a4, a5, a6, wr, w0, w1, w2, j):  # type: ignore[no-untyped-def]
    """Column ``j`` of seven rows weighted by the symmetric taps: the general pass's order, in one expression."""
    return ((wr * a3[j] + w0 * (a0[j] + a6[j])) + w1 * (a1[j] + a5[j])) + w2 * (a2[j] + a4[j])


@njit(inline="always")
def _ssim_row(u, o, ncols, c1, c2, cov, cs_relu, row, row_cs):  # type: ignore[no-untyped-def]
    """One output row of the SSIM and contrast-structure maps from its filtered moments ``u[o:o + 4]``
    (``cs_relu`` 2: the SSIM map alone, as skimage writes it, one division a pixel)."""
    if cs_relu == 2:
        for jj in range(ncols):
            ux = u[o, jj]
            uy = u[o + 1, jj]
            a2 = 2.0 * (cov * (u[o + 3, jj] - ux * uy)) + c2
            b2 = cov * (u[o + 2, jj] - ux * ux - uy * uy) + c2
            row[jj] = ((2.0 * ux * uy + c1) * a2) / ((ux * ux + uy * uy + c1) * b2)
        return
    for jj in range(ncols):
        ux = u[o, jj]
        uy = u[o + 1, jj]
        vxy = cov * (u[o + 3, jj] - ux * uy)
        cs = (2.0 * vxy + c2) / (cov * (u[o + 2, jj] - ux * ux - uy * uy) + c2)
        if cs_relu and cs < 0.0:
            cs = 0.0
        row[jj] = (2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1) * cs
        row_cs[jj] = cs


@njit(cache=True, nogil=True, error_model="numpy")  # numpy's error model: the loops vectorise
def ssim_cs_sums(x, y, xs, ys, w, row0, row1, col0, col1, c1, c2, cov, cs_relu, moments, ring, u, rows):  # type: ignore[no-untyped-def]
    """(sum of the SSIM map, sum of the contrast-structure map) over output rows [row0, row1) and columns [col0, col1) of one plane.

    ``x`` and ``y`` are 2-D (any dtype, any strides), multiplied by ``xs`` and
    ``ys``; ``w`` are the 1-D weights (odd length); every input the window
    needs must lie inside the arrays. ``moments`` (4, ncols + len(w) - 1),
    ``ring`` (len(w) + 1, 4, ncols), ``u`` (8, ncols) and ``rows`` (2, ncols)
    are float64 scratch (:func:`iqeval.fast.compiled_kernel` makes them).

    Each input row is scaled to float64 once and its four moments (x, y,
    x*x + y*y, x*y: the formula needs the two variances only as their sum, so
    one filtered moment serves both) are filtered along the row once, into a
    ring of filtered rows; each output row is then the weighted sum of the
    ring down the columns. The weights are symmetric, so each pair of taps
    costs one multiplication. With eleven taps (every Gaussian convention)
    or seven (skimage's default uniform window, on float, gray and Y planes)
    each pass is one expression a sample, and two output rows are made in one
    pass down the ring, from twelve (eight) rows: reading the ring is what
    that pass spends its time on, and the two share all but two of them
    (eleven taps: about 15% less time a plane; seven taps, against a pass a
    tap: 1.85x). Each output value is the same expression, in the general
    passes' order for seven taps, and the rows are added in order, so the
    sums are the same bits either way. ``cs_relu`` 1: a negative contrast-structure value counts
    as 0 in both (pyiqa's clipping); 2: only the SSIM sum is wanted (single-
    scale SSIM), so each pixel's SSIM is skimage's own expression,
    (A1 * A2) / (B1 * B2), one division where the two maps take two (3-6%
    less time a plane), and the contrast-structure sum is returned as 0.
    """
    k = w.shape[0]
    r = k // 2
    n = k + 1  # ring slots: the input rows of two output rows
    ncols = col1 - col0
    width = ncols + 2 * r
    row = rows[0]
    row_cs = rows[1]
    total = 0.0
    total_cs = 0.0
    first = row0 - r
    outputs = row1 - row0
    wr = w[r]
    # the outer taps of a 7- or 11-tap window, named for the unrolled passes (unused otherwise)
    w0, w1, w2 = (w[0], w[1], w[2]) if k in (7, 11) else (0.0, 0.0, 0.0)
    w3, w4 = (w[3], w[4]) if k == 11 else (0.0, 0.0)
    unrolled = k in (7, 11)  # two output rows a pass down the ring (its k + 1 slots hold their input rows)
    done = 0  # output rows added so far; output row o reads input rows first + o .. first + o + k - 1
    for i in range(first, row1 + r):
        for j in range(width):
            a = x[i, col0 - r + j] * xs
            b = y[i, col0 - r + j] * ys
            moments[0, j] = a
            moments[1, j] = b
            moments[2, j] = a * a + b * b
            moments[3, j] = a * b
        slot = (i - first) % n
        for m in range(4):
            h = ring[slot, m]
            src = moments[m]
            if k == 11:  # every Gaussian convention (sigma 1.5): all eleven taps in one pass
                for jj in range(ncols):
                    h[jj] = (wr * src[jj + 5] + w4 * (src[jj + 4] + src[jj + 6])) + (
                        (w3 * (src[jj + 3] + src[jj + 7]) + w2 * (src[jj + 2] + src[jj + 8]))
                        + (w1 * (src[jj + 1] + src[jj + 9]) + w0 * (src[jj] + src[jj + 10]))
                    )
                continue
            if k == 7:  # skimage's default window (uniform 7x7, on float, gray and Y planes): one pass
                for jj in range(ncols):
                    h[jj] = (
                        (wr * src[jj + 3] + w0 * (src[jj] + src[jj + 6])) + w1 * (src[jj + 1] + src[jj + 5])
                    ) + w2 * (src[jj + 2] + src[jj + 4])
                continue
            for jj in range(ncols):
                h[jj] = wr * src[jj + r]
            for t in range(r):
                wt = w[t]
                s0 = src[t : t + ncols]
                s1 = src[k - 1 - t : k - 1 - t + ncols]
                for jj in range(ncols):
                    h[jj] += wt * (s0[jj] + s1[jj])
        ready = i - first - (k - 1) + 1  # output rows whose input rows are all in the ring
        if ready - done < (2 if unrolled else 1) and ready < outputs:
            continue
        while done < ready:
            base = done
            pair = unrolled and ready - done >= 2
            if k == 11:
                for m in range(4):
                    a0, a1, a2, a3, a4, a5, a6, a7 = _ring_rows(ring, base, n, m)
                    a8, a9, a10, a11 = _ring_rows(ring, base + 8, n, m)[:4]
                    um, vm = u[m], u[4 + m]
                    if pair:
                        for jj in range(ncols):
                            um[jj] = _down11(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, wr, w4, w3, w2, w1, w0, jj)
                            vm[jj] = _down11(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, wr, w4, w3, w2, w1, w0, jj)
                    else:
                        for jj in range(ncols):
                            um[jj] = _down11(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, wr, w4, w3, w2, w1, w0, jj)
            elif k == 7:
                for m in range(4):
                    a0, a1, a2, a3, a4, a5, a6, a7 = _ring_rows(ring, base, n, m)
                    um, vm = u[m], u[4 + m]
                    if pair:
                        for jj in range(ncols):
                            um[jj] = _down7(a0, a1, a2, a3, a4, a5, a6, wr, w0, w1, w2, jj)
                            vm[jj] = _down7(a1, a2, a3, a4, a5, a6, a7, wr, w0, w1, w2, jj)
                    else:
                        for jj in range(ncols):
                            um[jj] = _down7(a0, a1, a2, a3, a4, a5, a6, wr, w0, w1, w2, jj)
            else:
                for m in range(4):
                    um = u[m]
                    c = ring[(base + r) % n, m]
                    for jj in range(ncols):
                        um[jj] = wr * c[jj]
                    for t in range(r):
                        lo = ring[(base + t) % n, m]
                        hi = ring[(base + k - 1 - t) % n, m]
                        wt = w[t]
                        for jj in range(ncols):
                            um[jj] += wt * (lo[jj] + hi[jj])
            for b in range(2 if pair else 1):
                _ssim_row(u, 4 * b, ncols, c1, c2, cov, cs_relu, row, row_cs)
                total += _sum(row)
                if cs_relu != 2:
                    total_cs += _sum(row_cs)
            done += 2 if pair else 1
    return total, total_cs


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _sum(a):  # type: ignore[no-untyped-def]
    """The sum of a 1-D float64 array, reassociated so that it vectorises (only this sum may be).

    Indexed, not iterated: LLVM vectorises an indexed loop, and not numba's
    array iterator (2.1 ms against 0.25 ms for the rows of a 1080p plane).
    """
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i]
    return total


@njit(inline="always")
def _taps7(c, h, out, step):  # type: ignore[no-untyped-def]
    """``h[j]`` = the sum of ``c[j + t * step]`` for t in 0..6: a 7-wide window every ``step`` columns.

    Inlined, so that a constant ``step`` reaches LLVM as one (with a runtime
    one the seven loads need runtime overlap checks it gives up on, and the
    loop stops vectorising: three times slower).
    """
    s1, s2, s3, s4, s5, s6 = step, 2 * step, 3 * step, 4 * step, 5 * step, 6 * step
    for j in range(out):
        h[j] = (c[j] + c[j + s1] + c[j + s2] + c[j + s3]) + (c[j + s4] + c[j + s5] + c[j + s6])


@njit(inline="always")
def _taps(c, h, out, step, win):  # type: ignore[no-untyped-def]
    """``h[j]`` = the sum of ``c[j + t * step]`` for t in 0..win-1, a tap a pass over 1-D views.

    On one plane (a constant ``step`` of 1) these passes vectorise: the
    kernel scores a 1024x1024 plane with an 11x11 window in 5 ms, where the
    same sums through 2-D indexing took 45 ms. With channels interleaved
    they still do not, so :func:`iqeval.fast.mean_ssim` sends windows other
    than 7 one contiguous plane at a time.
    """
    for j in range(out):
        h[j] = c[j]
    for t in range(1, win):
        o = t * step
        for j in range(out):
            h[j] += c[j + o]


@njit(cache=True, nogil=True, error_model="numpy")  # numpy's error model: the loops vectorise
def ssim_box_int(x, y, win, step, c1n, c2n, cn, col, hs, row):  # type: ignore[no-untyped-def]
    """Sum of the uniform-window SSIM map of two unsigned-integer planes, from exact window sums.

    ``x`` and ``y`` are 2-D (any unsigned dtype up to 16 bits, any strides):
    one plane, or the rows of an image whose ``step`` channels are interleaved
    (an (H, W, C) image seen as (H, W * C)). A window then sums every
    ``step``-th column, so each channel is scored in the same pass, in place,
    and the sum covers every channel.
    ``col`` is a zeroed (4, width) array of the accumulator type
    (:func:`iqeval.fast.window_sum_type`: float32 for 8-bit data and windows up
    to 11, whose every sum is an integer under 2**24 and so exact in float32,
    and whose loops vectorise 8 wide, the sums down the image included, where
    int32's products widen to int64; else int32 or int64). It holds the column sums of four moments,
    x, y, x*x + y*y and x*y (the formula needs the squares only as their sum,
    so one moment serves both), as running sums down the image (one row in,
    one row out, in one pass; the squares' change as (a - a0) * (a + a0), exact
    in integers); each output row then sums ``win`` of them along
    the row (unrolled for the default 7) into ``hs`` (4, width - (win - 1) *
    step, the accumulator type), and the SSIM map's row goes to ``row``
    (float64, as long). The float formula after them is
    :func:`iqeval.fast._mean_ssim_uniform_int`'s, on the same exact integers.
    Returns the sum over the pixels at least ``win // 2`` from every edge,
    added row by row.
    """
    height, width = x.shape
    pad = win // 2
    nf = float(win * win)
    tcn = 2.0 * cn
    out = width - (win - 1) * step
    total = 0.0
    for i in range(win):  # the first window
        for j in range(width):
            a = col.dtype.type(x[i, j])
            b = col.dtype.type(y[i, j])
            col[0, j] += a
            col[1, j] += b
            col[2, j] += a * a + b * b
            col[3, j] += a * b
    for o in range(pad, height - pad):
        if o > pad:  # slide the window down one row: one row in, one row out
            new, old = o + pad, o - pad - 1
            for j in range(width):
                a = col.dtype.type(x[new, j])
                b = col.dtype.type(y[new, j])
                a0 = col.dtype.type(x[old, j])
                b0 = col.dtype.type(y[old, j])
                col[0, j] += a - a0
                col[1, j] += b - b0
                col[2, j] += (a - a0) * (a + a0) + (b - b0) * (b + b0)  # two products, not four: 11% less time
                col[3, j] += a * b - a0 * b0
        for m in range(4):
            if win == 7:  # the tap spacing a constant in each branch, so that the sums vectorise
                if step == 1:
                    _taps7(col[m], hs[m], out, 1)
                elif step == 3:
                    _taps7(col[m], hs[m], out, 3)
                elif step == 4:
                    _taps7(col[m], hs[m], out, 4)
                else:
                    _taps7(col[m], hs[m], out, step)
                continue
            if step == 1:  # any other window, on one plane: a tap a pass, the spacing a constant
                _taps(col[m], hs[m], out, 1, win)
                continue
            for j in range(out):
                hs[m, j] = col[m, j]
            for t in range(1, win):
                for j in range(out):
                    hs[m, j] += col[m, j + t * step]
        # every product and difference of window sums below is an integer, under 2**53 for the
        # windows and depths the caller sends here, so float64 holds it exactly
        for j in range(out):
            sx = np.float64(hs[0, j])  # np.float64, not float: float() of a float32 stays float32 in numba
            sy = np.float64(hs[1, j])
            p = sx * sy
            q = sx * sx + sy * sy
            num = p * 2.0 + c1n
            a2 = (nf * np.float64(hs[3, j]) - p) * tcn + c2n
            den = q + c1n
            b2 = (nf * np.float64(hs[2, j]) - q) * cn + c2n
            row[j] = (num * a2) / (den * b2)
        total += _sum(row)
    return total


@njit(cache=True, nogil=True)
def halve(a, scale, out):  # type: ignore[no-untyped-def]
    """``out`` = the 2x2 block means of ``a`` (any dtype, any strides) times ``scale``, in float64.

    The operations and their order are :func:`iqeval.metrics._average_pool`'s
    on ``a * scale`` (each sample scaled, the four added left to right, then
    times 0.25), so the result is the same bits; rows and columns past
    ``2 * out.shape`` are not read.
    """
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            v = float(a[2 * i, 2 * j]) * scale + float(a[2 * i, 2 * j + 1]) * scale
            v = v + float(a[2 * i + 1, 2 * j]) * scale
            v = v + float(a[2 * i + 1, 2 * j + 1]) * scale
            out[i, j] = v * 0.25


@njit(inline="always")
def _paeth(a, b, c):  # type: ignore[no-untyped-def]
    """PNG's Paeth predictor of a byte from its left (a), upper (b) and upper-left (c) neighbours,
    with libpng's ties: the one nearest to a + b - c, preferring a, then b."""
    p = b - c
    pq = a - c
    pa = abs(p)  # |(a + b - c) - a|
    pb = abs(pq)  # |(a + b - c) - b|
    pc = abs(p + pq)  # |(a + b - c) - c|
    if pb < pa:
        pa = pb
        a = b
    if pc < pa:
        a = c
    return a


@njit(inline="always")
def _sub_byte(raw, out, r, w, a):  # type: ignore[no-untyped-def]
    """Sub: the byte at ``raw[r]`` plus ``a``, the byte a pixel to its left, stored at ``out[w]``
    and returned (the next pixel's left byte)."""
    a = (np.int32(raw[r]) + a) & 255
    out[w] = a
    return a


@njit(inline="always")
def _paeth_byte(raw, out, r, w, up, a, c):  # type: ignore[no-untyped-def]
    """Paeth: the byte at ``raw[r]`` plus the prediction from ``a`` (left), ``out[up]`` (above) and
    ``c`` (upper left), stored at ``out[w]``; returns (this byte, the byte above), the next pixel's
    left and upper-left bytes."""
    b = np.int32(out[up])
    a = (np.int32(raw[r]) + _paeth(a, b, c)) & 255
    out[w] = a
    return a, b


@njit(inline="always")
def _sub_row(raw, out, s, o, st, bpp):  # type: ignore[no-untyped-def]
    """One Sub-filtered row of 1- to 4-byte pixels (``bpp`` a constant where inlined): each channel's
    running value stays in a register, so no byte waits on the store of the byte ``bpp`` before it."""
    a0 = a1 = a2 = a3 = np.int32(0)  # the left pixel's bytes
    bp = np.uint64(bpp)
    one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
    for p in range(st // bp):
        r, w = s + np.uint64(p) * bp, o + np.uint64(p) * bp
        a0 = _sub_byte(raw, out, r, w, a0)
        if bpp > 1:
            a1 = _sub_byte(raw, out, r + one, w + one, a1)
        if bpp > 2:
            a2 = _sub_byte(raw, out, r + two, w + two, a2)
        if bpp > 3:
            a3 = _sub_byte(raw, out, r + three, w + three, a3)


@njit(inline="always")
def _paeth_row(raw, out, s, o, q, st, bpp):  # type: ignore[no-untyped-def]
    """One Paeth-filtered row (not the first) of 1- to 4-byte pixels, as :func:`_sub_row`: the left
    and upper-left pixels carried in registers. Before the first pixel both are 0 (Paeth predicts b)."""
    a0 = a1 = a2 = a3 = np.int32(0)  # the left pixel's bytes
    c0 = c1 = c2 = c3 = np.int32(0)  # the upper-left pixel's
    bp = np.uint64(bpp)
    one, two, three = np.uint64(1), np.uint64(2), np.uint64(3)
    for p in range(st // bp):
        r, w, up = s + np.uint64(p) * bp, o + np.uint64(p) * bp, q + np.uint64(p) * bp
        a0, c0 = _paeth_byte(raw, out, r, w, up, a0, c0)
        if bpp > 1:
            a1, c1 = _paeth_byte(raw, out, r + one, w + one, up + one, a1, c1)
        if bpp > 2:
            a2, c2 = _paeth_byte(raw, out, r + two, w + two, up + two, a2, c2)
        if bpp > 3:
            a3, c3 = _paeth_byte(raw, out, r + three, w + three, up + three, a3, c3)


@njit(cache=True, nogil=True)
def png_unfilter(raw, out, height, stride, bpp):  # type: ignore[no-untyped-def]
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth; the PNG specification, section 9).

    ``raw`` is the inflated image data: ``height`` rows of a filter-type byte
    and ``stride`` filtered bytes; ``out`` (``height * stride`` bytes)
    receives the pixels, and may be ``raw`` itself (each output byte lies
    before the input byte it comes from, and after every input byte already
    read); ``bpp`` is the bytes per complete pixel. Returns 0,
    or the 1-based number of the first row whose filter type is not 0-4.
    Paeth's choice is made as libpng makes it, with its ties: the predictor
    nearest to a + b - c, preferring a, then b.
    """
    st = np.uint64(stride)
    bp = np.uint64(bpp)
    one = np.uint64(1)
    for y in range(height):
        s = np.uint64(y) * (st + one)
        f = raw[s]
        s += one
        o = np.uint64(y) * st
        q = o - st  # the row above (unused on the first row, whose row above is zeros)
        if y == 0 and f == 2:  # Up from zeros is None
            f = 0
        if f == 0:
            for i in range(st):
                out[o + i] = raw[s + i]
        elif (f == 1 or (f == 4 and y == 0)) and bpp <= 4:  # Paeth with b = c = 0 predicts a: Sub
            # the left pixel carried in registers, not reloaded from the row just written; one
            # branch for each pixel size, so that each inlined copy has its own constant
            if bpp == 1:
                _sub_row(raw, out, s, o, st, 1)
            elif bpp == 2:
                _sub_row(raw, out, s, o, st, 2)
            elif bpp == 3:
                _sub_row(raw, out, s, o, st, 3)
            else:
                _sub_row(raw, out, s, o, st, 4)
        elif f == 4 and bpp <= 4:
            if bpp == 1:
                _paeth_row(raw, out, s, o, q, st, 1)
            elif bpp == 2:
                _paeth_row(raw, out, s, o, q, st, 2)
            elif bpp == 3:
                _paeth_row(raw, out, s, o, q, st, 3)
            else:
                _paeth_row(raw, out, s, o, q, st, 4)
        elif f == 1 or (f == 4 and y == 0):
            for i in range(bp):
                out[o + i] = raw[s + i]
            for i in range(bp, st):
                out[o + i] = (np.int32(raw[s + i]) + out[o + i - bp]) & 255
        elif f == 2:
            for i in range(st):
                out[o + i] = (np.int32(raw[s + i]) + out[q + i]) & 255
        elif f == 3 and y == 0:
            for i in range(bp):
                out[o + i] = raw[s + i]
            for i in range(bp, st):
                out[o + i] = (np.int32(raw[s + i]) + (out[o + i - bp] >> 1)) & 255
        elif f == 3:
            for i in range(bp):
                out[o + i] = (np.int32(raw[s + i]) + (out[q + i] >> 1)) & 255
            for i in range(bp, st):
                out[o + i] = (np.int32(raw[s + i]) + ((np.int32(out[o + i - bp]) + out[q + i]) >> 1)) & 255
        elif f == 4:
            for i in range(bp):  # a = c = 0: Paeth predicts b
                out[o + i] = (np.int32(raw[s + i]) + out[q + i]) & 255
            for i in range(bp, st):
                a = np.int32(out[o + i - bp])
                b = np.int32(out[q + i])
                c = np.int32(out[q + i - bp])
                out[o + i] = (np.int32(raw[s + i]) + _paeth(a, b, c)) & 255
        else:
            return y + 1
    return 0


@njit(cache=True, nogil=True)
def sse_int(x, y):  # type: ignore[no-untyped-def]
    """Exact sum of squared differences of two unsigned-integer 2-D arrays of one shape (any strides), as int64."""
    total = np.int64(0)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            d = np.int64(x[i, j]) - np.int64(y[i, j])
            total += d * d
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def ffmpeg_ssim_sum(x, y, c1, c2, prev, cur, row):  # type: ignore[no-untyped-def]
    """Sum of FFmpeg's SSIM over its 8x8 windows at stride 4, and their count, for one integer plane.

    A row of 4x4 block sums (S1, S2, SS = sum of both squares, S12) is made
    at a time, exactly in int64; each window is the 2x2 blocks around a
    corner. The formula is :func:`iqeval.metrics.ffmpeg_ssim`'s. ``prev`` and
    ``cur`` are int64 (4, width // 4) scratch, ``row`` float64 (width // 4 - 1).
    """
    h4 = x.shape[0] >> 2
    w4 = x.shape[1] >> 2
    total = 0.0
    for by in range(h4):
        for m in range(4):
            for bx in range(w4):
                cur[m, bx] = 0
        for i in range(4 * by, 4 * by + 4):
            for bx in range(w4):
                s1 = np.int64(0)
                s2 = np.int64(0)
                ss = np.int64(0)
                s12 = np.int64(0)
                for j in range(4 * bx, 4 * bx + 4):
                    a = np.int64(x[i, j])
                    b = np.int64(y[i, j])
                    s1 += a
                    s2 += b
                    ss += a * a + b * b
                    s12 += a * b
                cur[0, bx] += s1
                cur[1, bx] += s2
                cur[2, bx] += ss
                cur[3, bx] += s12
        if by > 0:
            for bx in range(w4 - 1):
                s1 = prev[0, bx] + prev[0, bx + 1] + cur[0, bx] + cur[0, bx + 1]
                s2 = prev[1, bx] + prev[1, bx + 1] + cur[1, bx] + cur[1, bx + 1]
                ss = prev[2, bx] + prev[2, bx + 1] + cur[2, bx] + cur[2, bx + 1]
                s12 = prev[3, bx] + prev[3, bx + 1] + cur[3, bx] + cur[3, bx + 1]
                variance = ss * 64 - s1 * s1 - s2 * s2
                covariance = s12 * 64 - s1 * s2
                num = float(2 * s1 * s2 + c1) * float(2 * covariance + c2)
                den = float(s1 * s1 + s2 * s2 + c1) * float(variance + c2)
                row[bx] = num / den
            total += _sum(row)
        prev, cur = cur, prev
    return total, max(h4 - 1, 0) * max(w4 - 1, 0)


@njit(inline="always")
def _luma_row(a, start, step, cs, w0, w1, w2, offset, o):  # type: ignore[no-untyped-def]
    """One row of :func:`luma`: ``o.shape[0]`` pixels ``step`` samples apart from ``a[start]`` on,
    their channels ``cs`` apart. Inlined, so that constant spacings reach LLVM as such: the loads
    at RGB's and RGBA's stride of 3 or 4 then vectorise."""
    st, c1, c2 = np.uint64(step), np.uint64(cs), np.uint64(2 * cs)  # unsigned: no wrap-around test a load
    for j in range(o.shape[0]):
        p = np.uint64(start) + st * np.uint64(j)
        v = float(a[p]) * w0
        v = v + float(a[p + c1]) * w1
        v = v + float(a[p + c2]) * w2
        if offset != 0.0:
            v = v + offset
        o[j] = v


@njit(cache=True, nogil=True)
def luma(a, row_stride, pixel_stride, channel_stride, w0, w1, w2, offset, out):  # type: ignore[no-untyped-def]
    """``out = R * w0 + G * w1 + B * w2 (+ offset)`` in float64, in one pass.

    ``a`` is 1-D: the span of memory an (H, W, C) image lies in
    (:func:`iqeval.fast.strided_span`: a cropped image or channel planes are
    read in place), with its strides in samples. Indexed along one
    contiguous array, with the spacing of packed RGB or RGBA pixels (3 or 4)
    or of channel planes (1) a constant, the loads vectorise: 1.5 ms for a
    1080p RGB image, where indexing the 3-D image took 4.6 ms. The operations
    and their order are :func:`iqeval.prepare.to_luma`'s (each product
    rounded, then added left to right), so the result is the same bits.
    """
    cs = channel_stride
    for i in range(out.shape[0]):
        start = i * row_stride
        if cs == 1 and pixel_stride == 3:
            _luma_row(a, start, 3, 1, w0, w1, w2, offset, out[i])
        elif cs == 1 and pixel_stride == 4:
            _luma_row(a, start, 4, 1, w0, w1, w2, offset, out[i])
        elif pixel_stride == 1:
            _luma_row(a, start, 1, cs, w0, w1, w2, offset, out[i])
        else:
            _luma_row(a, start, pixel_stride, cs, w0, w1, w2, offset, out[i])
