"""surveil: surveillance keyframe retrieval (ingest video, search by example crop)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("surveil")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
