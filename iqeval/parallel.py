"""Running the per-item function over many items: in-process, on a local process
pool, or on a Dask cluster. Every mapper yields results in item order, so the
output is identical to a serial run.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, TypeVar, cast

from .errors import ConfigError

if TYPE_CHECKING:  # imported where a pool is made: a run of one item (a video, a pair) never needs them
    import multiprocessing.context
    from concurrent.futures import ProcessPoolExecutor

A = TypeVar("A")
R = TypeVar("R")


def default_jobs() -> int:
    """The number of CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _worker_signals() -> None:
    """A worker's signals: Ctrl-C is handled once, in the parent, which then stops the
    pool; SIGTERM kills the worker. A forked worker inherits the command's SIGTERM
    handler, which raises: mid-item that exception would come back as the item's result
    and the worker would live on, and the pool's shutdown would wait on it for ever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _context() -> multiprocessing.context.BaseContext:
    import multiprocessing

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


Crashed = Callable[[A, str], R]
"""Makes the result of an item whose worker process died (killed for memory, a signal)."""


def _crash_reason(exc: BaseException) -> str:
    return f"the worker process scoring it died ({exc}); out of memory or killed by a signal"


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now: none is left behind holding pipes or files."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


def process_map(
    jobs: int, crashed: Crashed[A, R] | None = None
) -> Callable[[Callable[[A], R], Iterable[A]], Iterator[R]]:
    """A ``map`` over ``jobs`` worker processes that yields in input order.

    At most ``2 * jobs`` items are in flight, so memory stays bounded by a few
    items whatever the length of the input. When a worker dies (the kernel's
    out-of-memory killer, a signal), the pool is rebuilt and the items that
    were in flight are run again one at a time: the one that kills its worker
    again becomes ``crashed(item, reason)``, and every other item is scored.
    Without ``crashed`` the failure propagates.
    """

    def mapper(fn: Callable[[A], R], items: Iterable[A]) -> Iterator[R]:
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        def new_pool(workers: int) -> ProcessPoolExecutor:
            return ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_worker_signals)

        pool = new_pool(jobs)
        pending: deque[tuple[A, Future[R] | None]] = deque()
        source = iter(items)
        clean = False
        try:
            while True:
                try:
                    while len(pending) < 2 * jobs:
                        nxt = next(source, _END)
                        if nxt is _END:
                            break
                        item = cast(A, nxt)
                        pending.append((item, None))  # a suspect, should submit find the pool broken
                        pending[-1] = (item, pool.submit(fn, item))
                    if not pending:
                        break
                    future = pending[0][1]
                    assert future is not None  # only the last entry can lack a future
                    result = future.result()
                except BrokenProcessPool:
                    if crashed is None:
                        raise
                    # every item in flight failed with the pool: run each alone to find
                    # the one that kills its worker; the others are scored as usual
                    suspects = [i for i, _ in pending]
                    pending.clear()
                    _terminate(pool)
                    for suspect in suspects:
                        alone = new_pool(1)
                        try:
                            yield alone.submit(fn, suspect).result()
                        except BrokenProcessPool as again:
                            yield crashed(suspect, _crash_reason(again))
                        finally:
                            _terminate(alone)
                    pool = new_pool(jobs)
                    continue
                pending.popleft()
                yield result
            clean = True
        finally:
            if clean:
                pool.shutdown(wait=True)
            else:
                # Ctrl-C, SIGTERM or an early stop: drop what has not started and stop the workers
                _terminate(pool)

    return mapper


_END = object()


def dask_map(address: str) -> Callable[[Callable[[A], R], Iterable[A]], Iterator[R]]:
    """A ``map`` that runs on the Dask distributed scheduler at ``address``.

    The workers must see the files at the same paths (a shared filesystem).
    """
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError("scheduler= needs Dask: pip install 'iqeval[dask]'") from exc

    def mapper(fn: Callable[[A], R], items: Iterable[A]) -> Iterator[R]:
        try:
            client = Client(address, timeout="10s", set_as_default=False)
        except Exception as exc:  # OSError, TimeoutError, ValueError for a malformed address
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"cannot reach the Dask scheduler at {address}: {reason}") from exc
        try:
            futures = client.map(fn, list(items), pure=False)
            for future in futures:
                yield future.result()
        finally:
            client.close()

    return mapper


_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ucx|ws|wss)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$")


def check_scheduler_address(address: str) -> None:
    """Refuse a malformed Dask scheduler address before any work (tcp://HOST:PORT)."""
    if not _ADDRESS.match(address.strip()):
        raise ConfigError(f"scheduler={address!r} is not a scheduler address like tcp://HOST:8786")


def choose_mapper(
    jobs: int | None, scheduler: str | None, n_items: int, crashed: Crashed[A, R] | None = None
) -> Callable[[Callable[[A], R], Iterable[A]], Iterator[R]]:
    """The mapper for a run: Dask when a scheduler is given, else a process pool, else ``map``."""
    if scheduler:
        return dask_map(scheduler)
    n = jobs if jobs else default_jobs()
    if n < 1:
        raise ConfigError(f"jobs= must be at least 1, got {jobs}")
    if n == 1 or n_items < 2:
        return map
    return process_map(min(n, n_items), crashed)
