"""``python -m iqeval``, and the ``iqeval`` command's entry point."""

import os

# The command does no linear algebra, but importing numpy starts OpenBLAS's thread pool: about
# 40 ms of every start, and 0.1 s of CPU its threads spend spinning, in every process. Only the
# environment, read when numpy loads, avoids that, so it is set here, before anything imports
# numpy (the package's __init__ imports nothing). Worker processes inherit it. A value the user
# set is kept. The library (``import iqeval``) leaves the environment alone.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .cli import main  # after the environment is set

if __name__ == "__main__":
    main()
