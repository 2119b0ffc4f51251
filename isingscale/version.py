"""The installed package's version (a bottom module: everything may import it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("isingscale")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
