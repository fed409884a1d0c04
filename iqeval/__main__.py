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
from .cli import main  # noqa: E402  (after the environment is set)

gc.freeze()
gc.enable()

if __name__ == "__main__":
    main()
