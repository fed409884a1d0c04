"""Finding and pairing items in two trees.

An *item* is what gets one row in the report: a still image, a video, or a
folder of numbered frames. Items pair by their path relative to the root,
without the extension, so ``pred/a/x.png`` pairs with ``gt/a/x.jpg`` and
``pred/clips/walk.mp4`` with the frame folder ``gt/clips/walk/``.

Frame-folder rule (``frame_folders=True``): a folder below the root that has no
sub-folders and at least two images, whose image names are all
``<prefix><number>.<ext>`` with one shared prefix and extension and distinct
numbers, is one sequence item; its frames are ordered by number.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .io import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")


@dataclass(frozen=True)
class Source:
    """One side of an item: a still image, a video file or a frame folder."""

    path: Path
    kind: str  # "image", "video" or "frames"
    frames: tuple[Path, ...] = ()

    @property
    def is_sequence(self) -> bool:
        return self.kind != "image"


@dataclass(frozen=True)
class Item:
    """A pred/gt pair to score, or the reason it cannot be paired."""

    id: str
    pred: Source | None
    gt: Source | None
    error: str | None = None

    @property
    def kind(self) -> str:
        sources = [s for s in (self.pred, self.gt) if s is not None]
        return "sequence" if any(s.is_sequence for s in sources) else "image"


@dataclass(frozen=True)
class Pairing:
    """The result of pairing two trees."""

    items: tuple[Item, ...]
    pred_only: tuple[str, ...]
    gt_only: tuple[str, ...]
    ignored: int = 0
    ambiguous: tuple[str, ...] = field(default=())


@dataclass
class _Side:
    sources: dict[str, list[Source]]
    ignored: int


def natural_key(name: str) -> list[object]:
    """Sort key that orders ``f2`` before ``f10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _frame_folder(files: list[str]) -> list[str] | None:
    """The image files of a folder in frame order if they look like numbered frames."""
    images = [f for f in files if Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    if len(images) < 2:
        return None
    prefixes, exts, numbered = set(), set(), {}
    for name in images:
        stem, ext = os.path.splitext(name)
        m = _NUMBERED.match(stem)
        if m is None:
            return None
        prefixes.add(m["prefix"])
        exts.add(ext.lower())
        numbered[int(m["number"])] = name
    if len(prefixes) != 1 or len(exts) != 1 or len(numbered) != len(images):
        return None
    return [numbered[n] for n in sorted(numbered)]


def _walk(root: Path, frame_folders: bool) -> _Side:
    sources: dict[str, list[Source]] = {}
    ignored = 0
    seen: set[tuple[int, int]] = set()

    def add(stem: str, source: Source) -> None:
        sources.setdefault(stem, []).append(source)

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:  # a symlink loop or a second link to a folder
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files = sorted(f for f in filenames if not f.startswith("."))
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        if frame_folders and not dirnames and rel_dir != Path("."):
            frames = _frame_folder(files)
            if frames is not None:
                add(rel_dir.as_posix(), Source(here, "frames", tuple(here / f for f in frames)))
                ignored += len(files) - len(frames)
                continue
        for name in files:
            ext = Path(name).suffix.lower()
            stem = (rel_dir / Path(name).stem).as_posix()
            if ext in IMAGE_EXTENSIONS:
                add(stem, Source(here / name, "image"))
            elif ext in VIDEO_EXTENSIONS:
                add(stem, Source(here / name, "video"))
            else:
                ignored += 1
    return _Side(sources, ignored)


def _describe(sources: Iterable[Source]) -> str:
    return " and ".join(str(s.path) + ("/" if s.kind == "frames" else "") for s in sources)


def _one_sided(side: _Side, other: _Side, root: Path) -> list[str]:
    """Relative paths of the sources on ``side`` whose stem ``other`` lacks, naturally sorted."""
    paths = (str(s.path.relative_to(root)) for k in set(side.sources) - set(other.sources) for s in side.sources[k])
    return sorted(paths, key=natural_key)


def find_pairs(
    pred_root: str | os.PathLike[str], gt_root: str | os.PathLike[str], *, frame_folders: bool = True
) -> Pairing:
    """Pair the items of two trees by relative path without extension.

    Hidden files and folders are skipped, non-image files are counted and
    ignored, symlinks are followed without looping. A stem with two candidates
    on one side becomes an item with an error that names both.
    """
    pred_side = _walk(Path(pred_root), frame_folders)
    gt_side = _walk(Path(gt_root), frame_folders)
    items: list[Item] = []
    ambiguous: list[str] = []
    stems = sorted(set(pred_side.sources) & set(gt_side.sources), key=natural_key)
    for stem in stems:
        p, g = pred_side.sources[stem], gt_side.sources[stem]
        error = None
        for cands in (p, g):
            if len(cands) > 1:
                error = f"ambiguous: {_describe(cands)} both match {stem}"
                ambiguous.append(stem)
                break
        if error is None and (p[0].kind == "image") != (g[0].kind == "image"):
            error = f"cannot pair {_describe(p[:1])} ({p[0].kind}) with {_describe(g[:1])} ({g[0].kind})"
        items.append(Item(stem, p[0], g[0], error))
    pred_only = _one_sided(pred_side, gt_side, Path(pred_root))
    gt_only = _one_sided(gt_side, pred_side, Path(gt_root))
    return Pairing(
        items=tuple(items),
        pred_only=tuple(pred_only),
        gt_only=tuple(gt_only),
        ignored=pred_side.ignored + gt_side.ignored,
        ambiguous=tuple(ambiguous),
    )
