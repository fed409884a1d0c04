"""iqeval: full-reference image-quality evaluation (SSIM, PSNR, MSE).

- :func:`compare_images`: one pair (paths or arrays) -> scores and the facts behind them.
- :func:`score`: a batch of arrays (``layout="NHWC"``, ``"NCHW"``, ``"NTHWC"``, ...)
  -> per-sample arrays of every metric; numpy, PyTorch and TensorFlow tensors.
- :class:`Evaluator`: ``update(pred, gt, keys=...)`` in a validation loop,
  ``result()`` -> the same :class:`Run` as the command line, ``reset()``.
- :func:`run`: two trees (or two files), exactly as ``iqeval compare`` -> :class:`Run`.

A :class:`Run` holds items, statistics (micro, macro, weighted) and gate
checks; ``Run.to_doc()`` is the JSON report. Options (:class:`Options`) are the
same everywhere; metrics live in the registry :data:`iqeval.metrics.METRICS`.

The names above, and the submodules (``iqeval.report``, ``iqeval.gate``,
...), load on first use (PEP 562), so that importing a submodule
(``iqeval.cli`` for the command) imports no more than that submodule needs,
and the command can set up its environment before numpy is imported.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .batch import Evaluator, Scores, score
    from .core import PairResult, compare_images
    from .errors import IqevalError
    from .evaluate import CompareConfig
    from .gate import GateConfig
    from .prepare import Options, PairInfo
    from .results import ItemResult, Run
    from .runner import run

# each public name and the submodule that defines it
_HOMES = {
    "CompareConfig": "evaluate",
    "Evaluator": "batch",
    "GateConfig": "gate",
    "IqevalError": "errors",
    "ItemResult": "results",
    "Options": "prepare",
    "PairInfo": "prepare",
    "PairResult": "core",
    "Run": "results",
    "Scores": "batch",
    "compare_images": "core",
    "run": "runner",
    "score": "batch",
}

__all__ = [
    "CompareConfig",
    "Evaluator",
    "GateConfig",
    "IqevalError",
    "ItemResult",
    "Options",
    "PairInfo",
    "PairResult",
    "Run",
    "Scores",
    "__version__",
    "compare_images",
    "run",
    "score",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is not None:
        value = getattr(import_module(f".{home}", __name__), name)
    elif not name.startswith("_") and find_spec(f"{__name__}.{name}") is not None:
        value = import_module(f".{name}", __name__)  # a submodule: iqeval.report.json_report(run)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups find it directly
    return value


def __dir__() -> list[str]:
    # dir(iqeval) shows the API, not the submodules that implement it
    return sorted(__all__)
