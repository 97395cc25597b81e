"""maildrill: load-testing and compliance verification for enterprise mail systems."""

from importlib import metadata

try:
    __version__ = metadata.version("maildrill")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+src"

__all__ = ["__version__"]
