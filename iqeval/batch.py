"""Scoring arrays from Python: batches, 5-D video tensors, several outputs, validation loops.

:func:`score` scores a batch in one call and returns per-sample arrays.
:class:`Evaluator` accumulates batches (``update``) and returns the same
:class:`~iqeval.results.Run` the command line builds (``result``), so the CLI's
writers, gate and statistics apply unchanged. Any array-like works: numpy
arrays and objects with ``__dlpack__`` or ``__array__`` (CPU PyTorch and
TensorFlow tensors), without iqeval importing either framework. Layouts are
never guessed from the shape: ``layout=`` says which axis is which.

Examples
--------
>>> import numpy as np, iqeval
>>> gt = np.full((2, 16, 16, 3), 0.5, np.float32)
>>> s = iqeval.score(gt + np.float32(0.01), gt, layout="NHWC")
>>> s["psnr"].shape, round(float(s["psnr"][0]), 2)
((2,), 40.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .aggregate import summarize_run
from .core import Engine, score_arrays
from .errors import ConfigError
from .evaluate import item_keys
from .gate import GateConfig, gate
from .metrics import METRICS, POOLS
from .parallel import default_jobs
from .prepare import Options, PairInfo
from .results import ItemResult, Run

Layout = Literal["HW", "HWC", "CHW", "NHWC", "NCHW", "NTHWC", "NTCHW"]
LAYOUTS: tuple[Layout, ...] = ("HW", "HWC", "CHW", "NHWC", "NCHW", "NTHWC", "NTCHW")


def as_array(x: Any, name: str) -> np.ndarray:
    """A numpy view of any array-like: numpy, ``__dlpack__`` (zero copy) or ``__array__``."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__dlpack__"):
        try:
            return np.from_dlpack(x)
        except (TypeError, RuntimeError, BufferError, ValueError):
            pass  # e.g. a tensor that requires grad: __array__ below says why, or works
    if hasattr(x, "__array__"):
        try:
            return np.asarray(x)
        except (TypeError, RuntimeError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(
                f"{name}: cannot be read as an array ({reason}); a tensor that requires grad needs .detach(), "
                "one on a GPU needs .cpu()"
            ) from exc
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    raise ConfigError(
        f"{name}: expected an array (numpy, or an object with __array__ or __dlpack__), got {type(x).__name__}"
    )


def to_frames(a: np.ndarray, layout: str, name: str) -> tuple[tuple[int, ...], np.ndarray]:
    """(batch shape, array of shape batch + (H, W) or batch + (H, W, C)) for a layout."""
    if layout not in LAYOUTS:
        raise ConfigError(f"layout={layout!r} is not one of {', '.join(LAYOUTS)}")
    if a.ndim != len(layout):
        raise ConfigError(f"{name}: layout={layout!r} needs a {len(layout)}-D array, got shape {a.shape}")
    if "C" in layout:
        order = [layout.index(c) for c in layout if c not in "HWC"] + [layout.index("H"), layout.index("W")]
        order.append(layout.index("C"))
        a = np.transpose(a, order)
        if a.shape[-1] == 1:
            a = a[..., 0]
    n_batch = len(layout) - (3 if "C" in layout else 2)
    batch = a.shape[:n_batch]
    return tuple(int(b) for b in batch), a


@dataclass(frozen=True)
class Scores(Mapping[str, np.ndarray]):
    """Per-sample values of each metric (``scores["ssim"]`` has the batch shape) and each sample's facts."""

    arrays: Mapping[str, np.ndarray]
    infos: tuple[PairInfo, ...] = ()

    def __getitem__(self, metric: str) -> np.ndarray:
        return self.arrays[metric]

    def __iter__(self) -> Iterator[str]:
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)

    def mean(self) -> dict[str, float]:
        """The mean of each metric over the batch (an infinite PSNR makes it infinite)."""
        return {m: float(np.mean(v)) for m, v in self.arrays.items()}


def _split_options(kwargs: Mapping[str, Any]) -> Options:
    """Options from keywords, a ``convention=`` first and explicit options on top."""
    kwargs = dict(kwargs)
    return Options.resolve(kwargs.pop("convention", "skimage"), **kwargs)


def _index_name(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(map(str, index))}]" if index else name


def _score_frames(
    pred: np.ndarray,
    gt: np.ndarray,
    batch: tuple[int, ...],
    options: Options,
    engine: Engine,
    jobs: int,
) -> list[tuple[dict[str, float], PairInfo]]:
    """Score every frame of two canonical arrays, in threads (numpy and SciPy release the GIL)."""
    indices = list(np.ndindex(*batch)) if batch else [()]

    def one(index: tuple[int, ...]) -> tuple[dict[str, float], PairInfo]:
        return score_arrays(
            pred[index], gt[index], options, _index_name("pred", index), _index_name("gt", index), engine
        )

    workers = min(jobs or default_jobs(), len(indices))
    if workers <= 1:
        return [one(i) for i in indices]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, indices))


def _prepare_pair(pred: Any, gt: Any, layout: str) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    p_batch, p = to_frames(as_array(pred, "pred"), layout, "pred")
    g_batch, g = to_frames(as_array(gt, "gt"), layout, "gt")
    if p_batch != g_batch:
        raise ConfigError(f"pred has batch shape {p_batch} but gt has {g_batch} (layout={layout!r})")
    return p_batch, p, g


def score(
    pred: Any, gt: Any, *, layout: Layout = "NHWC", engine: Engine = "fast", jobs: int = 0, **options: Any
) -> Scores:
    """Score a batch: per-sample (and per-frame) values of every metric, with the batch shape.

    Parameters
    ----------
    pred, gt : array-like
        Same shape, in ``layout``: ``HW`` or ``HWC`` (one image), ``CHW``,
        ``NHWC`` or ``NCHW`` (a batch), ``NTHWC`` or ``NTCHW`` (a batch of clips).
    layout : str
        Which axis is which; never guessed.
    engine, jobs
        ``"fast"`` or ``"skimage"``; worker threads (0: all CPUs).
    **options
        Every :class:`~iqeval.prepare.Options` field: ``metrics``, ``color``,
        ``crop_border``, ``ssim_kernel``, ``win_size``, ``sigma``, ``data_range``,
        ``alpha``, ``out_of_range``.

    Returns
    -------
    Scores
        ``scores["ssim"]`` is a float64 array of shape ``()`` for one image,
        ``(N,)`` for a batch, ``(N, T)`` for clips. Per-sample PSNR is the mean
        of per-sample values in ``Scores.mean()``, never a PSNR of the pooled MSE.
    """
    opts = _split_options(options)
    batch, p, g = _prepare_pair(pred, gt, layout)
    scored = _score_frames(p, g, batch, opts, engine, jobs)
    values = {m: np.array([s[m] for s, _ in scored], dtype=np.float64).reshape(batch) for m in opts.metrics}
    return Scores(values, tuple(info for _, info in scored))


class Evaluator:
    """A streaming evaluator for validation loops, in the shape of a Keras metric.

    ``update`` scores a batch (or several outputs at once) and keeps one item
    per sample; ``result`` is the :class:`~iqeval.results.Run` the command line
    builds from the same items (micro, macro and weighted overalls, per-key
    statistics, the gate); ``reset`` starts again.

    Keys group the samples: by default ``group`` from the sample id, as on the
    command line; ``keys={"dataset": "div2k"}`` sets a key for the whole batch,
    ``keys={"scene": [...]}`` one value per sample. Several outputs at once,
    ``update({"sr": (pred, gt), "flow": (pred2, gt2)})``, add the key ``output``.
    """

    def __init__(
        self,
        *,
        layout: Layout = "NHWC",
        engine: Engine = "fast",
        jobs: int = 0,
        weights: Mapping[str, Mapping[str, float]] | None = None,
        group_by: str | None = None,
        gate: GateConfig | None = None,
        **options: Any,
    ) -> None:
        self.layout = layout
        self.engine = engine
        self.jobs = jobs
        self.weights = weights
        self.group_by = group_by
        self.gate = gate or GateConfig()
        self.options = _split_options(options)
        self._items: list[ItemResult] = []
        self._key_names: tuple[str, ...] | None = None
        if layout not in LAYOUTS:
            raise ConfigError(f"layout={layout!r} is not one of {', '.join(LAYOUTS)}")

    def reset(self) -> None:
        """Forget every sample."""
        self._items = []
        self._key_names = None

    def update(
        self,
        pred: Any,
        gt: Any = None,
        *,
        layout: Layout | None = None,
        keys: Mapping[str, str | Sequence[str]] | None = None,
        ids: Sequence[str] | None = None,
    ) -> Scores | dict[str, Scores]:
        """Score a batch and keep its samples; returns this batch's scores.

        ``pred`` may be a mapping ``{output: (pred, gt)}`` (then ``gt`` is not
        given): each output's samples get the key ``output``.
        """
        if isinstance(pred, Mapping):
            if gt is not None:
                raise ConfigError("pass either pred= and gt=, or one mapping {output: (pred, gt)}")
            out = {}
            for name, pair_ in pred.items():
                p, g = pair_
                out[str(name)] = self._update(p, g, layout, {**(keys or {}), "output": str(name)}, None, f"{name}/")
            return out
        if gt is None:
            raise ConfigError("gt= is missing")
        return self._update(pred, gt, layout, keys, ids, "")

    def _update(
        self,
        pred: Any,
        gt: Any,
        layout: Layout | None,
        keys: Mapping[str, str | Sequence[str]] | None,
        ids: Sequence[str] | None,
        prefix: str,
    ) -> Scores:
        batch, p, g = _prepare_pair(pred, gt, layout or self.layout)
        samples = list(np.ndindex(*batch[:1])) if batch else [()]
        n = len(samples)
        if ids is not None and len(ids) != n:
            raise ConfigError(f"ids= has {len(ids)} names for {n} samples")
        per_sample = self._keys(keys, n)
        opts = self.options
        scored = _score_frames(p, g, batch, opts, self.engine, self.jobs)
        frames_per_sample = int(math.prod(batch[1:])) if len(batch) > 1 else 1
        start = len(self._items)
        for s_index in range(n):
            chunk = scored[s_index * frames_per_sample : (s_index + 1) * frames_per_sample]
            item_id = ids[s_index] if ids is not None else f"{prefix}{start + s_index:06d}"
            rows = np.array([[sc[m] for m in opts.metrics] for sc, _ in chunk], dtype=np.float64)
            sequence = len(batch) > 1
            scores = (
                {m: POOLS[METRICS[m].pool](rows[:, i]) for i, m in enumerate(opts.metrics)}
                if sequence
                else {m: float(rows[0, i]) for i, m in enumerate(opts.metrics)}
            )
            self._items.append(
                ItemResult(
                    id=item_id,
                    pred="",
                    gt="",
                    kind="sequence" if sequence else "image",
                    keys=per_sample[s_index] if per_sample is not None else (item_keys(item_id, self.group_by) or {}),
                    metrics=opts.metrics,
                    scores=scores,
                    frame_scores=rows if sequence else np.empty((0, len(opts.metrics))),
                    status="ok",
                    info=chunk[0][1],
                    decision=f"array: {frames_per_sample} frames" if sequence else "image",
                )
            )
        values = {m: np.array([sc[m] for sc, _ in scored], dtype=np.float64).reshape(batch) for m in opts.metrics}
        return Scores(values, tuple(info for _, info in scored))

    def _keys(self, keys: Mapping[str, str | Sequence[str]] | None, n: int) -> list[dict[str, str]] | None:
        if keys is None:
            names: tuple[str, ...] = ("group",) if self.group_by is None else self._group_names()
            self._check_names(names)
            return None
        per: list[dict[str, str]] = [{} for _ in range(n)]
        for key, value in keys.items():
            if isinstance(value, str):
                for d in per:
                    d[key] = value
            else:
                values = list(value)
                if len(values) != n:
                    raise ConfigError(f"keys={{{key!r}: ...}} has {len(values)} values for {n} samples")
                for d, v in zip(per, values, strict=True):
                    d[key] = str(v)
        self._check_names(tuple(keys))
        return per

    def _group_names(self) -> tuple[str, ...]:
        from .evaluate import compile_group_by

        assert self.group_by is not None
        return tuple(compile_group_by(self.group_by).groupindex)

    def _check_names(self, names: tuple[str, ...]) -> None:
        if self._key_names is None:
            self._key_names = names
        elif set(names) != set(self._key_names):
            raise ConfigError(f"keys= names {sorted(names)}, but earlier batches used {sorted(self._key_names)}")

    def settings(self) -> dict[str, object]:
        """The settings that shaped the numbers, as the command line writes them."""
        return {
            **self.options.as_dict(),
            "engine": self.engine,
            "sequences": "auto",
            "pred_name": None,
            "methods": [],
            "truncate_frames": False,
            "frame_offset": 0,
            "align": None,
            "pool": {},
            "raw": None,
            "group_by": self.group_by,
        }

    def result(self) -> Run:
        """Every sample so far as a :class:`~iqeval.results.Run`: the command line's model and statistics."""
        from ._version import __version__

        key_names = self._key_names or ("group",)
        items = tuple(self._items)
        summary = summarize_run(items, self.options.metrics, key_names, self.weights)
        run = Run(settings=self.settings(), items=items, summary=summary, version=__version__)
        g = self.gate
        return Run(
            settings=run.settings,
            items=run.items,
            summary=run.summary,
            checks=tuple(gate(run, g.thresholds, g.max_drop, g.baseline, g.allow_missing, g.significance)),
            version=run.version,
        )


__all__ = ["LAYOUTS", "Evaluator", "Layout", "Scores", "as_array", "score", "to_frames"]
