"""forensic_app: find faces in evidence photos and estimate each face's perceived gender."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("forensic-app")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
