"""The package version, in a module of its own so that every module can read
it at import time without importing the package (``setup.py`` reads it
here too)."""

__version__ = "0.3.0"
