"""trickrun's version, in a module of its own: `trickrun/__init__.py` is not run when a folder
named `trickrun` (a clone of the repository) in the current folder shadows the installed
package as a namespace package, and everything that needs the version reads it from here."""

__version__ = "0.1.0"
