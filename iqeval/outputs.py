"""Writing reports and maps without ever damaging anything.

Rules, in one place:

* every output path is checked before any scoring starts (:func:`check_targets`):
  an empty path, a directory, a parent that is a file, a folder that cannot be
  written, and two options naming the same file are refused with one line;
* a regular file (or a new one) is replaced atomically: the text goes to a
  temporary file beside it, which is renamed over the target only when all
  reports of the run are ready (:class:`Staging`), with SIGINT and SIGTERM held
  back during the renames, so an interrupted run leaves all the old reports or
  all the new ones;
* anything that is not a regular file (a FIFO, a character device, a process
  substitution such as ``>(cmd)``, a terminal) is written through, never
  renamed over, so ``--json /dev/null`` cannot replace a system file;
* a symbolic link to a report is followed, so the link survives and its target
  gets the report;
* maps are written with :func:`write_file_atomic` under names that never pass
  through a link planted in the folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import OutputError


def _regular_or_absent(path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return True
    return stat.S_ISREG(st.st_mode)


def _existing_ancestor(path: Path) -> Path:
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    return parent


def check_target(option: str, path: str, *, directory: bool = False) -> None:
    """Refuse an output path that cannot be written, before any work is done.

    ``directory`` is for ``--maps``: the path must be a folder or creatable as one.
    """
    if path == "-":
        if directory:
            raise OutputError(f"{option}: a folder is needed, not '-'")
        return
    if not path.strip():
        raise OutputError(f"{option}: the path is empty")
    p = Path(path)
    if directory:
        if p.exists() and not p.is_dir():
            raise OutputError(f"{option} {path}: exists and is not a folder")
    else:
        if p.is_dir():
            raise OutputError(f"{option} {path}: is a folder; give a file name")
        if p.exists() and not _regular_or_absent(p):
            if not os.access(p, os.W_OK):
                raise OutputError(f"{option} {path}: cannot be written (permission denied)")
            return  # written through: nothing is created beside it
        with contextlib.suppress(OSError):
            p = Path(os.path.realpath(p))  # a link's target gets the report
    ancestor = _existing_ancestor(p)
    if not ancestor.is_dir():
        raise OutputError(f"{option} {path}: {ancestor} is a file, not a folder")
    # as root, permission bits do not tell: try to create a file where it will go
    try:
        fd, tmp = tempfile.mkstemp(prefix=".iqeval-check-", dir=p if directory and p.is_dir() else ancestor)
    except OSError as exc:
        raise OutputError(f"{option} {path}: cannot write in {ancestor} ({exc.strerror or exc})") from exc
    os.close(fd)
    os.unlink(tmp)


def check_targets(targets: Sequence[tuple[str, str | None]], folders: Sequence[tuple[str, str | None]] = ()) -> None:
    """Check every report path and map folder, and refuse two options naming the same file."""
    seen: dict[str, str] = {}
    for option, path in [*targets, *folders]:
        if path is None:
            continue
        check_target(option, path, directory=(option, path) in folders)
        key = "-" if path == "-" else os.path.realpath(path)
        if key == "-" and key in seen:
            raise OutputError("only one report can go to stdout ('-')")
        if key in seen:
            raise OutputError(f"{seen[key]} and {option} both write to {path}; give each its own")
        seen[key] = option


def _write_through(path: Path, text: str, append: bool) -> None:
    with open(path, "a" if append else "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def _stage_file(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary file beside ``path``; return its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a report is an ordinary file
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def write_file_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` (never through a link at that name) by a file holding ``data``."""
    tmp = _stage_file(path, data)
    try:
        os.replace(tmp, path)  # renames over a planted link, never writes through it
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the duration (they arrive right after)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@dataclass
class Staging:
    """Reports of one run, staged as temporary files and committed together.

    ``add`` writes the text beside its target right away (so a full disk shows
    up before anything is replaced); ``commit`` renames every staged file over
    its target with signals held, then writes the pass-through targets.
    ``discard`` removes what was staged. Standard output ('-') is written at
    commit.
    """

    _staged: list[tuple[str, Path]] = field(default_factory=list)
    _through: list[tuple[Path | None, str, bool]] = field(default_factory=list)

    def add(self, option: str, path: str, text: str, *, append: bool = False) -> None:
        if path == "-":
            self._through.append((None, text, append))
            return
        p = Path(path)
        if append or not _regular_or_absent(p):
            self._through.append((p, text, append))
            return
        target = Path(os.path.realpath(p))  # keep a link, replace what it points to
        try:
            tmp = _stage_file(target, text.encode("utf-8"))
        except OSError as exc:
            raise OutputError(f"{option} {path}: cannot write ({exc.strerror or exc})") from exc
        self._staged.append((tmp, target))

    def add_file(self, option: str, path: Path, data: bytes) -> None:
        """Stage a file (a map) to replace ``path`` itself: a link planted there is replaced, never followed."""
        try:
            tmp = _stage_file(path, data)
        except OSError as exc:
            raise OutputError(f"{option} {path}: cannot write ({exc.strerror or exc})") from exc
        self._staged.append((tmp, path))

    def commit(self, stdout: Callable[[str], None]) -> None:
        with signals_held():
            for tmp, target in self._staged:
                os.replace(tmp, target)
            self._staged.clear()
        for path, text, append in self._through:
            if path is None:
                stdout(text)
                continue
            try:
                _write_through(path, text, append)
            except OSError as exc:
                raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        self._through.clear()

    def discard(self) -> None:
        for tmp, _ in self._staged:
            Path(tmp).unlink(missing_ok=True)
        self._staged.clear()
        self._through.clear()
