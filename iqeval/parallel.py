"""Running the per-item function over many items: in-process, on a local process
pool, or on a Dask cluster. Every mapper yields results in item order, so the
output is identical to a serial run.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

from .errors import ConfigError

A = TypeVar("A")
R = TypeVar("R")


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _ignore_sigint() -> None:
    # Ctrl-C is handled once, in the parent, which then stops the pool
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        # forking a single-threaded parent is safe, and workers start with
        # everything imported instead of paying a second of imports each
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["iqeval.evaluate"])
        return context
    return multiprocessing.get_context("spawn")


def process_map(jobs: int) -> Callable[[Callable[[A], R], Iterable[A]], Iterator[R]]:
    """A ``map`` over ``jobs`` worker processes that yields in input order.

    At most ``2 * jobs`` items are in flight, so memory stays bounded by a few
    items whatever the length of the input.
    """

    def mapper(fn: Callable[[A], R], items: Iterable[A]) -> Iterator[R]:
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=_context(), initializer=_ignore_sigint)
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            # on Ctrl-C or an early stop: drop what has not started, do not wait for it
            pool.shutdown(wait=not pending, cancel_futures=True)

    return mapper


def dask_map(address: str) -> Callable[[Callable[[A], R], Iterable[A]], Iterator[R]]:
    """A ``map`` that runs on the Dask distributed scheduler at ``address``.

    The workers must see the files at the same paths (a shared filesystem).
    """
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError("--scheduler needs Dask: pip install 'iqeval[dask]'") from exc

    def mapper(fn: Callable[[A], R], items: Iterable[A]) -> Iterator[R]:
        try:
            client = Client(address, timeout="10s", set_as_default=False)
        except OSError as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        try:
            futures = client.map(fn, list(items), pure=False)
            for future in futures:
                yield future.result()
        finally:
            client.close()

    return mapper


def choose_mapper(
    jobs: int | None, scheduler: str | None, n_items: int
) -> Callable[[Callable[[A], R], Iterable[A]], Iterator[R]]:
    """The mapper for a run: Dask when a scheduler is given, else a process pool, else ``map``."""
    if scheduler:
        return dask_map(scheduler)
    n = jobs if jobs else default_jobs()
    if n < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if n == 1 or n_items < 2:
        return map
    return process_map(min(n, n_items))
