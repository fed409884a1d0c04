"""iqeval: full-reference image-quality evaluation (SSIM, PSNR, MSE).

Score one pair with :func:`compare_images`; score two trees (or two files)
with :func:`run`, which returns a :class:`Run`: its items, statistics and gate
checks, and ``Run.to_doc()`` for the JSON report. Metrics live in the registry
:data:`iqeval.metrics.METRICS`.
"""

from ._version import __version__
from .core import PairResult, compare_images
from .errors import IqevalError
from .evaluate import CompareConfig
from .gate import GateConfig
from .prepare import Options, PairInfo
from .results import ItemResult, Run
from .runner import run

__all__ = [
    "CompareConfig",
    "GateConfig",
    "IqevalError",
    "ItemResult",
    "Options",
    "PairInfo",
    "PairResult",
    "Run",
    "__version__",
    "compare_images",
    "run",
]
