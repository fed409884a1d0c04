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
"""

from ._version import __version__
from .batch import Evaluator, Scores, score
from .core import PairResult, compare_images
from .errors import IqevalError
from .evaluate import CompareConfig
from .gate import GateConfig
from .prepare import Options, PairInfo
from .results import ItemResult, Run
from .runner import run

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


def __dir__() -> list[str]:
    # dir(iqeval) shows the API, not the submodules that implement it
    return sorted(__all__)
