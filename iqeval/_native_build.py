"""C-callable wrappers of the compiled kernels, built with numba once per machine (see :mod:`iqeval._native`).

Each kernel of :mod:`iqeval._kernels` gets, per combination of array dtypes,
a numba ``cfunc`` of one C signature, ``void f(int64 *desc, double *scalars,
double *out)``:

* ``desc`` describes the arrays, each as its address, its extent in items
  (from its first to its last sample), its shape and its strides in bytes, in
  the order of the kernel's arguments, followed by the kernel's integer
  arguments; a kernel's integer result is written back into ``desc[0]``;
* ``scalars`` holds its float arguments, ``out`` receives its float results.

Inside, each array is rebuilt as a strided view of the caller's memory
(``carray`` over its extent, then ``as_strided``): the kernel body is the
same function the numba dispatcher runs, so the machine code computes the
same bits. This module imports numba; it is loaded only to build a wrapper
that the cache (:mod:`iqeval._native`) does not hold yet.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic
from numpy.lib.stride_tricks import as_strided

from . import _kernels as k
from ._native import CODES

SIGNATURE = types.void(types.CPointer(types.int64), types.CPointer(types.float64), types.CPointer(types.float64))


@intrinsic
def _pointer(typingctx: Any, address: Any, dtype: Any) -> Any:
    """A typed pointer (to ``dtype``'s samples) from an integer address."""
    element = dtype.dtype if isinstance(dtype, types.DType) else dtype.instance_type

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return types.CPointer(element)(address, dtype), codegen


@njit(inline="always")
def _arr1(d, i, dtype):  # type: ignore[no-untyped-def]
    base = carray(_pointer(d[i], dtype), (d[i + 1],))
    return as_strided(base, shape=(d[i + 2],), strides=(d[i + 3],))


@njit(inline="always")
def _arr2(d, i, dtype):  # type: ignore[no-untyped-def]
    base = carray(_pointer(d[i], dtype), (d[i + 1],))
    return as_strided(base, shape=(d[i + 2], d[i + 3]), strides=(d[i + 4], d[i + 5]))


@njit(inline="always")
def _c1(d, i, dtype):  # type: ignore[no-untyped-def]
    return carray(_pointer(d[i], dtype), (d[i + 2],))


@njit(inline="always")
def _c2(d, i, dtype):  # type: ignore[no-untyped-def]
    return carray(_pointer(d[i], dtype), (d[i + 2], d[i + 3]))


@njit(inline="always")
def _c3(d, i, dtype):  # type: ignore[no-untyped-def]
    return carray(_pointer(d[i], dtype), (d[i + 2], d[i + 3], d[i + 4]))


# the numpy types by the names iqeval._native gives them in a variant (its one list of supported dtypes)
_TYPES = {code: dtype.type for dtype, code in CODES.items()}


def wrapper(name: str, variant: tuple[str, ...]) -> Any:
    """The cfunc of kernel ``name`` for ``variant``: its input arrays' dtypes (as :mod:`iqeval._native` names them),
    then "c" where they are C-contiguous (so that the kernel sees them as such, as the dispatcher does) or "a"."""
    t = [_TYPES[s] for s in variant[:-1]]
    f8 = np.float64
    # scratch arrays are always C-contiguous; inputs as the caller's are
    _in1, _in2 = (_c1, _c2) if variant[-1] == "c" else (_arr1, _arr2)
    if name == "sums":
        tx, ty = t

        def sums(d, s, o):  # type: ignore[no-untyped-def]
            x, y, w = _in2(d, 0, tx), _in2(d, 6, ty), _c1(d, 12, f8)
            moments, ring, u, rows = _c2(d, 16, f8), _c3(d, 22, f8), _c2(d, 30, f8), _c2(d, 36, f8)
            a = 42
            o[0], o[1] = k.ssim_cs_sums(
                x, y, s[0], s[1], w, d[a], d[a + 1], d[a + 2], d[a + 3], s[2], s[3], s[4], d[a + 4],
                moments, ring, u, rows,
            )  # fmt: skip

        fn = sums
    elif name == "box_int":
        tx, ty, tc, th = t

        def box_int(d, s, o):  # type: ignore[no-untyped-def]
            x, y, col, hs, row = _in2(d, 0, tx), _in2(d, 6, ty), _c2(d, 12, tc), _c2(d, 18, th), _c1(d, 24, f8)
            o[0] = k.ssim_box_int(x, y, d[28], d[29], s[0], s[1], s[2], col, hs, row)

        fn = box_int
    elif name == "sse_int":
        tx, ty = t

        def sse_int(d, s, o):  # type: ignore[no-untyped-def]
            d[0] = k.sse_int(_in2(d, 0, tx), _in2(d, 6, ty))

        fn = sse_int
    elif name == "ffmpeg":
        tx, ty = t
        i8 = np.int64

        def ffmpeg(d, s, o):  # type: ignore[no-untyped-def]
            x, y, prev, cur, row = _in2(d, 0, tx), _in2(d, 6, ty), _c2(d, 12, i8), _c2(d, 18, i8), _c1(d, 24, f8)
            total, count = k.ffmpeg_ssim_sum(x, y, d[28], d[29], prev, cur, row)
            o[0] = total
            d[0] = count

        fn = ffmpeg
    elif name == "luma":
        (ta,) = t

        def luma(d, s, o):  # type: ignore[no-untyped-def]
            k.luma(_in1(d, 0, ta), d[10], d[11], d[12], s[0], s[1], s[2], s[3], _c2(d, 4, f8))

        fn = luma
    elif name == "halve":
        (ta,) = t

        def halve(d, s, o):  # type: ignore[no-untyped-def]
            k.halve(_in2(d, 0, ta), s[0], _c2(d, 6, f8))

        fn = halve
    elif name == "png_unfilter":
        u1 = np.uint8

        def png_unfilter(d, s, o):  # type: ignore[no-untyped-def]
            d[0] = k.png_unfilter(_c1(d, 0, u1), _c1(d, 4, u1), d[8], d[9], d[10])

        fn = png_unfilter
    else:
        raise KeyError(name)
    # numba names the machine code after the function: one name per variant, so that variants built
    # by different processes (each numbering its own compilations from 1) never share a symbol
    fn.__qualname__ = fn.__name__ = f"{name}__{'_'.join(variant)}"
    return cfunc(SIGNATURE, nogil=True, error_model="numpy")(fn)


def object_code(compiled: Any) -> tuple[bytes, list[str]]:
    """The machine code of a compiled cfunc as an object file, and the symbols it needs from outside
    (numba's helper libraries, Python's C API), for :mod:`iqeval._native` to load."""
    library = compiled._library
    library._ensure_finalized()
    module = library._final_module
    needed = sorted(
        {f.name for f in module.functions if f.is_declaration and not f.name.startswith("llvm.")}
        | {g.name for g in module.global_variables if g.is_declaration}
    )
    return bytes(library._codegen._tm.emit_object(module)), needed
