"""The installed version of iqeval (``0.0.0`` in a source tree that was never installed)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("iqeval")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
