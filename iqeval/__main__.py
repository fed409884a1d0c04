"""``python -m iqeval``, and the ``iqeval`` command's entry point."""

import gc
import os

# The command does no linear algebra, but importing numpy starts OpenBLAS's thread pool: about
# 40 ms of every start, and 0.1 s of CPU its threads spend spinning, in every process. Only the
# environment, read when numpy loads, avoids that, so it is set here, before anything imports
# numpy (the package's __init__ imports nothing). Worker processes inherit it. A value the user
# set is kept. The library (``import iqeval``) leaves the environment alone.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Start-up allocates a few hundred thousand objects (numpy, click, iqeval's modules) that live to
# the end, and no garbage: the collector's passes over them while they load cost 15-20 ms of every
# start. So it is off while they load, then they are frozen (its later passes skip them; forked
# workers share their pages untouched) and it is on again for the run, whose garbage it collects.
gc.disable()


def _keep_freed_memory() -> None:
    """Let glibc's malloc keep freed memory for the next image instead of handing it back.

    An image's planes and scratch (megabytes each) are allocated and freed
    again for every image. glibc maps such blocks from the kernel and unmaps
    them when freed, or trims the heap under them, until its thresholds have
    adapted, and each worker starts again from its defaults: the next image's
    pages fault in and are zeroed again. Here the thresholds start where
    glibc's own adaptation ends (blocks under 32 MiB from the heap, up to
    64 MiB freed at its top kept): on the SR row of ``make bench`` (``--jobs
    1``) a run's page faults fall from about 37,000 to 17,000 and its CPU
    time by 5-10%, and peak memory grows by what the heap keeps (a 4K pair:
    139 to 164 MiB). Blocks of 32 MiB and more (an 8K image) are still mapped and
    unmapped. Set by the command, which owns its process (workers forked from
    it inherit it); where a user set glibc's variables for these, or the C
    library has no ``mallopt``, nothing changes.
    """
    if any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows): its own allocator's ways
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 64 << 20)


_keep_freed_memory()
from .cli import main  # noqa: E402  (after the environment is set)

gc.freeze()
gc.enable()

if __name__ == "__main__":
    main()
