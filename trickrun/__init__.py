"""trickrun: see the classic deep-learning training tricks work, on a pure-NumPy MLP."""

__version__ = "0.1.0"
