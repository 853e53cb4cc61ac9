"""mspo-pipeline: daily, validated Parquet snapshots of the public MSPO traceability API."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mspo-pipeline")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
