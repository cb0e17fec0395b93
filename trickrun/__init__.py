"""trickrun: see the classic deep-learning training tricks work, on a pure-NumPy MLP."""

from .version import __version__

__all__ = ["__version__"]
