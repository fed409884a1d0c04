"""iqeval: full-reference image-quality evaluation (SSIM, PSNR, MSE)."""

from importlib.metadata import PackageNotFoundError, version

from .core import PairResult, compare_images
from .errors import IqevalError
from .prepare import Options, PairInfo

try:
    __version__ = version("iqeval")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["IqevalError", "Options", "PairInfo", "PairResult", "__version__", "compare_images"]
