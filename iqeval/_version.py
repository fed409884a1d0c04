"""iqeval's version: the one place it is written (``pyproject.toml`` reads it from here).

A plain string, not ``importlib.metadata``: that import alone costs some 60 ms of
every command's start-up.
"""

__version__ = "0.2.0"
