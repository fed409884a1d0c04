"""Exceptions raised by iqeval.

Every message names the file or files involved and the reason, in one line,
so that the command line can print it as it is.
"""

from __future__ import annotations


class IqevalError(Exception):
    """Base class for every error iqeval raises on purpose."""


class LoadError(IqevalError):
    """A file is missing, empty, corrupt or not an image."""


class ShapeMismatchError(IqevalError):
    """Prediction and ground truth differ in size or channels."""


class DtypeError(IqevalError):
    """An image has a dtype iqeval cannot score."""


class DataRangeError(IqevalError):
    """Pixel values do not fit the data range in use."""


class ColorModeError(IqevalError):
    """The colour layouts of the two images cannot be compared in this mode."""


class WindowSizeError(IqevalError):
    """An image is smaller than the SSIM window after cropping."""


class SequenceError(IqevalError):
    """Two sequences cannot be paired frame by frame."""


class PairingError(IqevalError):
    """Files cannot be paired unambiguously."""


class ConfigError(IqevalError):
    """Options that contradict each other or cannot be used."""


class BaselineError(IqevalError):
    """A baseline report cannot be compared with this run."""


class OutputError(IqevalError):
    """A report or map cannot be written where it was asked for."""
