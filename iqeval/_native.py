"""The compiled kernels, loaded as machine code without importing numba.

Importing numba costs about 0.3 s of every command's start-up (0.35-0.45 s
with loading its cached kernels), more than anything else the command does
on one image pair, and each process of the pool pays it again. But the
kernels (:mod:`iqeval._kernels`) need nothing of numba once compiled: they
allocate nothing and call nothing but each other. So each kernel is built
once per machine and variant (its input dtypes and layout) as a C-callable
wrapper (:mod:`iqeval._native_build`, which does import numba), and its
object code is cached next to numba's own cache. Every later process loads
that object code with llvmlite's loader (numba's own code generator, about
40 ms to import) and calls it through ctypes, which releases the GIL as
numba's ``nogil`` does. The machine code is the one numba would run, so the
numbers are the same bits (the tests hold both paths to each other).

The cache key covers this module, the kernels' source, numba's and
llvmlite's versions, the Python version and the host CPU: any change builds
again. A file that cannot be read, whose checksum does not match, whose
outside symbols (numba's helper libraries, Python's C API) cannot all be
found (LLVM's loader would abort the process, not raise), or whose code is
named like code already loaded, is built again. Where llvmlite or numba's
helper libraries are missing, or ``IQEVAL_NATIVE=0`` is set, the kernels run
through numba's dispatcher as before; so do arrays of other dtypes or with
negative strides. A cache that cannot be written leaves each process to
build its own, as numba's does.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

# each kernel's arguments, in order: "I" an input array (its dtype and layout name the variant),
# "T" a C-contiguous scratch array whose dtype is part of the variant; C-contiguous arrays of one
# dtype: "F" float64, "L" int64, "B" uint8; "i" an integer, "f" a float. Then what it returns:
# "o" the first float result, "oo" the first two, "od" a float and an integer, "d" an integer, "" nothing
SPECS: dict[str, tuple[str, str]] = {
    "sums": ("IIffFiiiifffiFFFF", "oo"),
    "box_int": ("IIiifffTTF", "o"),
    "sse_int": ("II", "d"),
    "ffmpeg": ("IIiiLLF", "od"),
    "luma": ("IiiiffffF", ""),
    "halve": ("IfF", ""),
    "png_unfilter": ("BBiii", "d"),
}
_FIXED = {"F": np.dtype(np.float64), "L": np.dtype(np.int64), "B": np.dtype(np.uint8)}

# the dtypes the wrappers are built for (native byte order only), by the names variants give them
CODES = {np.dtype(t): np.dtype(t).str[1:] for t in (np.uint8, np.uint16, np.int32, np.int64, np.float32, np.float64)}

# each kernel's arguments sorted once: (position, kind) of its arrays, the positions of its
# integers and of its floats, and what it returns
_PLANS = {
    name: (
        tuple((i, k) for i, k in enumerate(kinds) if k in "ITFLB"),
        tuple(i for i, k in enumerate(kinds) if k == "i"),
        tuple(i for i, k in enumerate(kinds) if k == "f"),
        returns,
    )
    for name, (kinds, returns) in SPECS.items()
}

_LOCK = threading.RLock()
_STATE: dict[str, Any] = {}  # "engine", "key", "symbols" (loaded); "off" once loading proved impossible
_FUNCS: dict[tuple[str, tuple[str, ...]], Any] = {}  # (kernel, variant): the ctypes function, or None
_KEEP: list[Any] = []  # the cfuncs built in this process: their code lives while they do
_CALL = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)


def enabled() -> bool:
    """Whether kernels may load as machine code here (``IQEVAL_NATIVE=0`` turns it off)."""
    return os.environ.get("IQEVAL_NATIVE", "1") != "0" and "off" not in _STATE


def available() -> bool:
    """Whether machine code can be loaded in this process (llvmlite and numba's helpers found)."""
    with _LOCK:
        return _engine() is not None


def _numba_dir() -> Path | None:
    spec = importlib.util.find_spec("numba")  # a top-level name: found without importing it
    return Path(spec.origin).parent if spec is not None and spec.origin else None


def cache_dir() -> Path:
    """Where the object code is kept: numba's ``NUMBA_CACHE_DIR`` where set, else beside the kernels' source."""
    env = os.environ.get("NUMBA_CACHE_DIR")
    return Path(env) / "iqeval-native" if env else Path(__file__).parent / "__pycache__"


def _key(llvm: Any, numba_dir: Path) -> str:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for path in (here / "_native.py", here / "_native_build.py", here / "_kernels.py", numba_dir / "_version.py"):
        digest.update(path.read_bytes() if path.exists() else path.name.encode())
    for part in (
        llvm.llvm_version_info,
        sys.version,
        llvm.get_host_cpu_name(),
        llvm.get_host_cpu_features().flatten(),
        os.environ.get("NUMBA_CPU_NAME", ""),
        os.environ.get("NUMBA_CPU_FEATURES", ""),
        os.environ.get("NUMBA_OPT", ""),
    ):
        digest.update(repr(part).encode())
    return digest.hexdigest()[:20]


def _helpers(numba_dir: Path, module_name: str) -> dict[str, int] | None:
    """The C functions one of numba's helper extensions exports to its compiled code (name: address).

    Loaded from its file under its own name, so that numba's package (the
    0.3 s) is not imported; a later ``import numba`` loads it as usual.
    """
    full = f"numba.{module_name}"
    module = sys.modules.get(full)
    if module is None:
        stem = numba_dir.joinpath(*module_name.split("."))
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if stem.with_name(stem.name + suffix).exists():
                spec = importlib.util.spec_from_file_location(full, stem.with_name(stem.name + suffix))
                if spec is None or spec.loader is None:
                    return None
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                break
    helpers = getattr(module, "c_helpers", None)
    return helpers if isinstance(helpers, dict) else None


def _engine() -> Any:
    """llvmlite's loader with numba's helper libraries, made once per process; None where impossible."""
    if "engine" in _STATE:
        return _STATE["engine"]
    engine = None
    try:
        numba_dir = _numba_dir()
        if numba_dir is not None:
            import llvmlite.binding as llvm

            found = 0
            for module_name, prefix in (("_helperlib", "numba_"), ("core.runtime._nrt_python", "NRT_")):
                helpers = _helpers(numba_dir, module_name)
                if helpers:
                    for name, address in helpers.items():  # the names numba gives them in its own code
                        llvm.add_symbol(prefix + name, address)
                    found += 1
            if found == 2:
                llvm.initialize_native_target()
                llvm.initialize_native_asmprinter()
                machine = llvm.Target.from_default_triple().create_target_machine()
                engine = (llvm, llvm.create_mcjit_compiler(llvm.parse_assembly(""), machine))
                _STATE["key"] = _key(llvm, numba_dir)
    except Exception:  # no llvmlite, or one that cannot load: numba's dispatcher instead
        engine = None
    _STATE["engine"] = engine
    return engine


def _cache_file(name: str, variant: tuple[str, ...]) -> Path:
    return cache_dir() / f"iqeval-{name}-{'-'.join(variant)}-{_STATE['key']}.kernel"


def _load(name: str, variant: tuple[str, ...]) -> Any:
    """The cached machine code of one wrapper, loaded; None where the file is missing or unusable."""
    engine = _engine()
    if engine is None:
        return None
    llvm, ee = engine
    try:
        data = _cache_file(name, variant).read_bytes()
        header, code = data.split(b"\n", 1)
        meta = json.loads(header)
        symbol, needed = meta["symbol"], meta["needed"]
        if meta["sha256"] != hashlib.sha256(code).hexdigest() or not isinstance(symbol, str):
            return None  # a damaged file: LLVM's loader is not made to meet one
        if any(llvm.address_of_symbol(s) in (None, 0) for s in needed):
            return None  # an outside symbol missing: loading the code would abort the process, not raise
        loaded = _STATE.setdefault("symbols", set())
        if symbol in loaded:
            return None  # two files that name their code alike: never let one stand for the other
        loaded.add(symbol)
        ee.add_object_file(llvm.ObjectFileRef.from_data(code))
        ee.finalize_object()
        address = ee.get_function_address(symbol)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return None
    return _CALL(address) if address else None


def _build(name: str, variant: tuple[str, ...]) -> Any:
    """Compile one wrapper with numba, cache its object code, and return it (None where numba cannot)."""
    try:
        from . import _native_build

        compiled = _native_build.wrapper(name, variant)
    except Exception:  # no numba, or one that cannot build this wrapper: its dispatcher, as before
        return None
    _KEEP.append(compiled)
    tmp = None
    try:
        code, needed = _native_build.object_code(compiled)
        target = _cache_file(name, variant)
        target.parent.mkdir(parents=True, exist_ok=True)
        meta = {"symbol": compiled.native_name, "needed": needed, "sha256": hashlib.sha256(code).hexdigest()}
        header = json.dumps(meta).encode()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".iqeval-", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(header + b"\n" + code)
        os.replace(tmp, target)  # whole or not at all, for processes building the same file at once
        tmp = None
    except (OSError, AttributeError, KeyError):  # a read-only or full cache, or a numba laid out otherwise
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return _CALL(compiled.address)


def function(name: str, variant: tuple[str, ...]) -> Any:
    """The C-callable kernel for ``variant``, loaded from the cache or built; None where it cannot be."""
    found = _FUNCS.get((name, variant), False)
    if found is not False:
        return found
    with _LOCK:  # the frame threads of a video all ask at once: one loads, the others wait
        found = _FUNCS.get((name, variant), False)
        if found is False:
            found = None
            if _engine() is None:
                _STATE["off"] = True
            else:
                found = _load(name, variant) or _build(name, variant)
            _FUNCS[(name, variant)] = found
    return found


def _describe(a: np.ndarray, into: list[int]) -> bool:
    """Append an array's address, extent (items), shape and byte strides; False where it cannot be described."""
    item = a.itemsize
    shape, strides = a.shape, a.strides
    last = 0  # the offset of the last sample, in bytes
    for n, s in zip(shape, strides, strict=True):
        if n == 0 or s < 0 or s % item:
            return False
        last += (n - 1) * s
    into.append(a.__array_interface__["data"][0])
    into.append(1 + last // item)
    into += shape
    into += strides
    return True


def _arrays(name: str, args: tuple[Any, ...]) -> tuple[tuple[str, ...], list[int]] | None:
    """A call's variant ("u1", ..., then "c" where its input arrays are C-contiguous, else "a") and
    its arrays' descriptions; None where no wrapper fits them."""
    desc: list[int] = []
    codes: list[str] = []
    contiguous = True
    for i, kind in _PLANS[name][0]:
        a = args[i]
        if not isinstance(a, np.ndarray):
            return None
        if kind == "I" or kind == "T":
            code = CODES.get(a.dtype)
            if code is None:
                return None
            codes.append(code)
            if kind == "I":
                contiguous = contiguous and a.flags.c_contiguous
            elif not a.flags.c_contiguous:
                return None
        elif a.dtype != _FIXED[kind] or not a.flags.c_contiguous:
            return None
        if not _describe(a, desc):
            return None
    codes.append("c" if contiguous else "a")
    return tuple(codes), desc


def variant_of(name: str, args: tuple[Any, ...]) -> tuple[str, ...] | None:
    """The variant of kernel ``name`` a call with ``args`` needs, or None where no wrapper fits its arrays."""
    found = _arrays(name, args)
    return None if found is None else found[0]


def run(name: str, args: tuple[Any, ...]) -> Any:
    """Kernel ``name`` run on its own arguments through its machine code, or ``NotImplemented`` where no
    wrapper fits them or none can be loaded or built (then numba's dispatcher runs it)."""
    found = _arrays(name, args)
    if found is None:
        return NotImplemented
    variant, desc = found
    fn = function(name, variant)  # its own first look is the cache, without the lock
    if fn is None:
        return NotImplemented
    _, ints, floats, returns = _PLANS[name]
    for i in ints:
        desc.append(int(args[i]))
    scalars = [float(args[i]) for i in floats] or [0.0]
    d = (ctypes.c_int64 * len(desc))(*desc)
    s = (ctypes.c_double * len(scalars))(*scalars)
    o = (ctypes.c_double * 2)()
    fn(d, s, o)  # ctypes releases the GIL for the call
    if returns == "o":
        return o[0]
    if returns == "oo":
        return o[0], o[1]
    if returns == "od":
        return o[0], d[0]
    if returns == "d":
        return d[0]
    return None
