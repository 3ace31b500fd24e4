"""The ``casty-trio`` command line (also ``python -m casty_trio``)."""

from ._main import main

__all__ = ["main"]
