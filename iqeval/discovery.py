"""Finding and pairing items in two trees.

An *item* is what gets one row in the report: a still image, a video, or a
folder of numbered frames. Items pair by their path relative to the root,
without the extension, so ``pred/a/x.png`` pairs with ``gt/a/x.jpg`` and
``pred/clips/walk.mp4`` with the frame folder ``gt/clips/walk/``.

Sequence rule (``sequences="auto"``, conservative): a folder below the root
with no sub-folders and at least two images, all named
``<prefix><number>.<ext>`` with one shared prefix and extension and distinct
numbers, is a *candidate*. It is one sequence item when all its frames have
one size and either its numbers are contiguous (``1, 2, 3`` or ``0000, 0001``)
or the other side has a video of the same stem. When both sides hold the
folder, both must qualify. Otherwise its images are scored one by one, and
each item says why (``Item.decision``). ``"always"`` takes every candidate
(the 0.1 rule), ``"never"`` none.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import ConfigError
from .io import IMAGE_EXTENSIONS, image_size
from .sources import Source, kind_of

_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<number>\d+)$")

Sequences = Literal["auto", "never", "always"]
SEQUENCE_POLICIES: tuple[Sequences, ...] = ("auto", "never", "always")


@dataclass(frozen=True)
class Item:
    """A pred/gt pair to score, or the reason it cannot be paired.

    ``decision`` says how the item was read, and for folders of numbered
    images why they were (or were not) taken as one sequence.
    """

    id: str
    pred: Source | None
    gt: Source | None
    error: str | None = None
    decision: str = ""
    method: str | None = None  # several predictions against one ground truth: whose this is

    @property
    def stem(self) -> str:
        """The ground truth's name: the id without the method in front."""
        return self.id.split("/", 1)[1] if self.method else self.id

    @property
    def kind(self) -> Literal["image", "sequence"]:
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
    sequence_folders: int = 0
    rejected_folders: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Candidate:
    """A folder whose image names are all numbered: maybe one sequence."""

    path: Path
    frames: tuple[Path, ...]  # in number order
    numbers: tuple[int, ...]
    images: tuple[tuple[str, Path], ...]  # (stem, path) of each image, for scoring one by one
    others: int  # files in the folder that are not its frames


@dataclass
class _Side:
    sources: dict[str, list[Source]] = field(default_factory=dict)
    candidates: dict[str, _Candidate] = field(default_factory=dict)
    ignored: int = 0
    notes: list[str] = field(default_factory=list)


def natural_key(name: str) -> list[object]:
    """Sort key that orders ``f2`` before ``f10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def total_key(name: str) -> tuple[list[object], str]:
    """Natural order, with the exact name as tie-break: a total order (``A.png`` and ``a.png`` never tie)."""
    return natural_key(name), name


def numbered_frames(files: list[str]) -> list[tuple[int, str]] | None:
    """The (number, name) of a folder's images in number order, if all are ``<prefix><number>.<ext>``."""
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
    return sorted(numbered.items())


def _tree(root: Path, notes: list[str]) -> Iterator[tuple[Path, list[str], list[str]]]:
    """Walk ``root`` like ``os.walk(followlinks=True)``, without recursion and without loops.

    Iterative, so a tree thousands of levels deep cannot exhaust the stack;
    each folder is visited once (symlink loops, two links to one folder); a
    link to a folder that contains the tree (a link to ``/``, to the root or
    to a parent) is not followed; unreadable folders are noted, never
    skipped in silence. Hidden entries are skipped. Names come sorted.
    """
    real_root = os.path.realpath(root)
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        here = stack.pop()
        try:
            st = os.stat(here)
            with os.scandir(here) as it:
                entries = list(it)
        except OSError as exc:
            notes.append(f"cannot read folder {here}: {exc.strerror or exc}")
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs, files = [], []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError:
                is_dir = False
            if not is_dir:
                files.append(entry.name)
                continue
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if real_root == target or real_root.startswith(target.rstrip(os.sep) + os.sep):
                    notes.append(f"not following link {entry.path} -> {target}: it contains the tree itself")
                    continue
            dirs.append(entry.name)
        dirs.sort()
        files.sort()
        yield here, dirs, files
        stack.extend(here / d for d in reversed(dirs))


def _walk(root: Path, sequences: str) -> _Side:
    side = _Side()

    def add(stem: str, source: Source) -> None:
        side.sources.setdefault(stem, []).append(source)

    for here, dirnames, files in _tree(root, side.notes):
        rel_dir = here.relative_to(root)
        numbered = None
        if sequences != "never" and not dirnames and rel_dir != Path("."):
            numbered = numbered_frames(files)
        if numbered is not None:
            side.candidates[rel_dir.as_posix()] = _Candidate(
                path=here,
                frames=tuple(here / name for _, name in numbered),
                numbers=tuple(n for n, _ in numbered),
                images=tuple(((rel_dir / Path(name).stem).as_posix(), here / name) for _, name in numbered),
                others=len(files) - len(numbered),
            )
            side.ignored += len(files) - len(numbered)
            continue
        for name in files:
            kind = kind_of(name)
            if kind is None:
                side.ignored += 1
            else:
                add((rel_dir / Path(name).stem).as_posix(), Source(here / name, kind))
    return side


def _qualifies(c: _Candidate, other_has_video: bool) -> tuple[bool, str]:
    """Whether a candidate folder is one sequence under the auto rule, and why."""
    sizes = {image_size(f) for f in c.frames}
    if None in sizes:
        return False, "a frame's size cannot be read"
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(s for s in sizes if s is not None)[:3])
        return False, f"its images differ in size ({shown})"
    ((w, h),) = sizes  # type: ignore[misc]
    n = len(c.frames)
    contiguous = c.numbers[-1] - c.numbers[0] == n - 1
    if contiguous:
        return True, f"{n} frames numbered {c.numbers[0]}-{c.numbers[-1]} without gaps, all {w}x{h}"
    if other_has_video:
        return True, f"{n} frames, all {w}x{h}, paired with a video of the same name"
    gaps = [b - a for a, b in zip(c.numbers, c.numbers[1:], strict=False) if b - a != 1]
    return False, f"its numbers are not contiguous (steps of {gaps[0]} after {c.numbers[0]})"


def _resolve(pred: _Side, gt: _Side, sequences: str) -> tuple[dict[str, str], int, int]:
    """Turn candidate folders into sequence sources or single images, jointly for both sides.

    Returns a decision per affected stem and the counts of folders taken and refused.
    """
    decisions: dict[str, str] = {}
    taken = refused = 0
    for stem in sorted(set(pred.candidates) | set(gt.candidates), key=total_key):
        sides = [(pred, gt), (gt, pred)]
        verdicts = []
        for mine, other in sides:
            c = mine.candidates.get(stem)
            if c is None:
                continue
            other_video = any(s.kind == "video" for s in other.sources.get(stem, []))
            other_images = stem in other.sources and not other_video
            if sequences == "always":
                verdicts.append((True, f"{len(c.frames)} numbered frames (sequences='always')"))
            elif other_images:
                verdicts.append((False, "the other side has a file of the same name, not a folder"))
            else:
                verdicts.append(_qualifies(c, other_video))
        ok = all(v for v, _ in verdicts)
        reason = next((r for v, r in verdicts if not v), verdicts[0][1])
        for mine, _other in sides:
            c = mine.candidates.pop(stem, None)
            if c is None:
                continue
            if ok:
                mine.sources.setdefault(stem, []).append(Source(c.path, "frames", c.frames))
            else:
                for image_stem, path in c.images:
                    mine.sources.setdefault(image_stem, []).append(Source(path, "image"))
                    decisions[image_stem] = f"image; folder {stem}/ is not a sequence: {reason}"
        if ok:
            taken += 1
            decisions[stem] = f"frame folder: {reason}"
        else:
            refused += 1
    return decisions, taken, refused


def _describe(sources: Iterable[Source]) -> str:
    return " and ".join(s.describe() for s in sources)


def _one_sided(side: _Side, other: _Side, root: Path) -> list[str]:
    """Relative paths of the sources on ``side`` whose stem ``other`` lacks, in a total order."""
    paths = (str(s.path.relative_to(root)) for k in set(side.sources) - set(other.sources) for s in side.sources[k])
    return sorted(paths, key=total_key)


def _default_decision(pred: Source, gt: Source) -> str:
    a, b = pred.label, gt.label
    return a if a == b else f"{a} against {b}"


def name_template(template: str) -> re.Pattern[str]:
    """The regex of a prediction name template: ``'{stem}_x4_SR'`` matches ``0801_x4_SR`` with stem ``0801``."""
    if template.count("{stem}") != 1:
        raise ConfigError(f"pred_name={template!r} must contain {{stem}} exactly once, e.g. '{{stem}}_x4_SR'")
    before, after = template.split("{stem}")
    return re.compile(re.escape(before) + r"(?P<stem>.+?)" + re.escape(after))


def _rename(side: _Side, template: re.Pattern[str]) -> None:
    """Key the predictions by the ground-truth name their template names (others keep their own)."""
    renamed: dict[str, list[Source]] = {}
    for key, sources in side.sources.items():
        folder, _, name = key.rpartition("/")
        m = template.fullmatch(name)
        new = (f"{folder}/{m['stem']}" if folder else m["stem"]) if m else key
        renamed.setdefault(new, []).extend(sources)
    side.sources = renamed


def find_pairs(
    pred_root: str | os.PathLike[str],
    gt_root: str | os.PathLike[str],
    *,
    sequences: Sequences = "auto",
    pred_name: str | None = None,
) -> Pairing:
    """Pair the items of two trees by relative path without extension.

    Hidden files and folders are skipped, non-image files are counted and
    ignored, symlinks are followed without looping, unreadable folders are
    noted. A stem with two candidates on one side becomes an item with an error
    that names both. ``sequences`` is the folder rule (see the module text).
    ``pred_name`` is a template for prediction file names (``'{stem}_x4_SR'``):
    a prediction pairs with the ground truth its ``{stem}`` names.
    """
    if sequences not in SEQUENCE_POLICIES:
        raise ConfigError(f"sequences={sequences!r} is not one of {', '.join(SEQUENCE_POLICIES)}")
    template = name_template(pred_name) if pred_name else None
    pred_side = _walk(Path(pred_root), sequences)
    gt_side = _walk(Path(gt_root), sequences)
    if template is not None:
        _rename(pred_side, template)
    decisions, taken, refused = _resolve(pred_side, gt_side, sequences)
    items: list[Item] = []
    ambiguous: list[str] = []
    stems = sorted(set(pred_side.sources) & set(gt_side.sources), key=total_key)
    for stem in stems:
        p, g = pred_side.sources[stem], gt_side.sources[stem]
        p.sort(key=lambda s: total_key(str(s.path)))
        g.sort(key=lambda s: total_key(str(s.path)))
        error = None
        for cands in (p, g):
            if len(cands) > 1:
                error = f"ambiguous: {_describe(cands)} both match {stem}"
                ambiguous.append(stem)
                break
        if error is None and p[0].is_sequence != g[0].is_sequence:
            error = f"cannot pair {_describe(p[:1])} ({p[0].kind}) with {_describe(g[:1])} ({g[0].kind})"
        items.append(Item(stem, p[0], g[0], error, decisions.get(stem) or _default_decision(p[0], g[0])))
    pred_only = _one_sided(pred_side, gt_side, Path(pred_root))
    gt_only = _one_sided(gt_side, pred_side, Path(gt_root))
    return Pairing(
        items=tuple(items),
        pred_only=tuple(pred_only),
        gt_only=tuple(gt_only),
        ignored=pred_side.ignored + gt_side.ignored,
        ambiguous=tuple(ambiguous),
        sequence_folders=taken,
        rejected_folders=refused,
        notes=tuple(pred_side.notes + gt_side.notes),
    )
