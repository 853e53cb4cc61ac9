"""Where each table's daily Parquet file lives, and the provenance it carries in its footer.

Pure functions over strings, shared by the IO manager, the raw assets (no-overwrite check) and
anything else that reads the store (the SQL warehouse), so one layout is spelled in one place.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from mspo_pipeline.lib import catalog

# gcsfs reads this when it is imported; its default ("true") makes every open against an emulator
# stall for 60 s. Set it before anything imports gcsfs (an explicit setting wins).
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

if TYPE_CHECKING:
    from upath import UPath

DEFAULT_DATA_ROOT = "./data"
PROVENANCE_PREFIX = "mspo."
"""Prefix of our keys in the Parquet key-value metadata (polars and Arrow keep their own)."""
REUSE_EXISTING = "mspo/reuse_existing"
"""Output metadata flag: the stored partition is kept as it is and nothing is written."""

_PARTITION_KEY = re.compile(r"\d{4}-\d{2}-\d{2}")


def partition_folder(partition_key: str) -> str:
    """``2026-11-22`` → ``20261122``: the folder name of one daily partition."""
    if not _PARTITION_KEY.fullmatch(partition_key):
        raise ValueError(
            f"partition key {partition_key!r} is not a day (YYYY-MM-DD); every MSPO asset uses "
            "the daily partitions in Asia/Kuala_Lumpur"
        )
    return date.fromisoformat(partition_key).strftime("%Y%m%d")


def relative_path(asset_key: Sequence[str], partition_key: str) -> str:
    """The file of one asset partition, relative to the data root (DESIGN.md §3).

    ``["raw", <endpoint>]`` follows the API docs' layout from the catalogue; any other
    ``[<layer>, <table>]`` is ``<layer>/mspo/<table>/YYYYMMDD/<table>.parquet``.
    """
    folder = partition_folder(partition_key)
    if len(asset_key) != 2:
        raise ValueError(
            f"asset key {list(asset_key)!r} is not [<layer>, <table>]; the MSPO store has no "
            "place for it"
        )
    layer, table = asset_key
    if layer == "raw":
        return catalog.endpoint(table).raw_key(folder)
    return f"{layer}/mspo/{table}/{folder}/{table}.parquet"


def join_root(root: str, relative: str) -> str:
    """``root`` + ``relative`` for local folders and ``gs://bucket[/prefix]`` alike."""
    return f"{root.rstrip('/')}/{relative}"


def storage_path(root: str, asset_key: Sequence[str], partition_key: str) -> str:
    """The full path or ``gs://`` URI of one asset partition."""
    return join_root(root, relative_path(asset_key, partition_key))


def storage_options(root: str) -> dict[str, Any]:
    """fsspec options for ``root``: anonymous against a GCS emulator, else Google's ADC.

    With ``STORAGE_EMULATOR_HOST`` set (tests, the demo), gcsfs talks to that host without
    credentials; otherwise gcsfs finds application default credentials itself, and nothing here
    ever sees or logs them.
    """
    if not root.startswith(("gs://", "gcs://")):
        return {}
    emulator = os.environ.get("STORAGE_EMULATOR_HOST", "")
    if emulator and emulator != "default":
        endpoint = (
            emulator if emulator.startswith(("http://", "https://")) else f"http://{emulator}"
        )
        return {"token": "anon", "endpoint_url": endpoint}
    return {"token": None}


def root_upath(root: str) -> UPath:
    """``root`` as a UPath on the right filesystem (local folder or ``gs://``)."""
    from upath import UPath

    if root.startswith(("gs://", "gcs://")):
        return UPath(root, **storage_options(root))
    return UPath(Path(root).absolute())


def as_upath(path: str | os.PathLike[str] | UPath) -> UPath:
    """A path, ``gs://`` URI or UPath as a UPath (with emulator/ADC options for ``gs://``)."""
    from upath import UPath

    return path if isinstance(path, UPath) else root_upath(os.fspath(path))


def provenance_metadata(values: Mapping[str, object]) -> dict[str, str]:
    """Parquet key-value metadata for ``values``: prefixed keys, plain-text values."""
    return {f"{PROVENANCE_PREFIX}{key}": _text(value) for key, value in values.items()}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def read_provenance(path: str | os.PathLike[str] | UPath) -> dict[str, str]:
    """Our provenance keys (prefix removed) from a Parquet file's footer, without its data.

    Raises ``FileNotFoundError`` when there is no file, so callers can tell "no snapshot yet"
    from "a snapshot without provenance" (an empty dict).
    """
    import pyarrow.parquet as pq

    with as_upath(path).open("rb") as handle:
        footer = pq.read_metadata(handle).metadata or {}
    prefix = PROVENANCE_PREFIX.encode()
    return {
        key[len(prefix) :].decode(): value.decode()
        for key, value in footer.items()
        if key.startswith(prefix)
    }


def is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


@contextmanager
def _local_temp(directory: str | None) -> Iterator[Path]:
    """A temporary file path, removed afterwards whatever happens (it may be renamed away)."""
    descriptor, name = tempfile.mkstemp(prefix=".mspo-", suffix=".parquet.tmp", dir=directory)
    os.close(descriptor)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def _write(frame: pl.DataFrame, path: Path, metadata: Mapping[str, str]) -> None:
    frame.write_parquet(path, compression="zstd", metadata=dict(metadata))


def write_parquet_atomic(frame: pl.DataFrame, path: UPath, metadata: Mapping[str, str]) -> None:
    """Write ``frame`` so that readers see the old file or the new one, never a part.

    Local: a temporary file in the same folder, then an atomic rename. GCS: a local temporary
    file, then one object upload (the object appears only when the upload completes). polars'
    own ``gs://`` writer is not used: it fails against emulators (DESIGN.md §10).
    """
    if is_local(path):
        target = Path(path.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with _local_temp(str(target.parent)) as temp:
            _write(frame, temp, metadata)
            temp.replace(target)  # atomic rename within one folder
        return
    with _local_temp(None) as temp:
        _write(frame, temp, metadata)
        path.fs.put_file(str(temp), path.path)


def read_parquet(path: UPath) -> pl.DataFrame:
    """The whole file as an eager frame; a ``gs://`` object is streamed to a temporary file
    first, so its bytes are never held in Python (polars memory-maps the local copy)."""
    if is_local(path):
        return pl.read_parquet(Path(path.path))
    if not path.exists():
        raise FileNotFoundError(f"no Parquet object at {path}")
    with _local_temp(None) as temp:
        path.fs.get_file(path.path, str(temp))
        return pl.read_parquet(temp, memory_map=False)


def parquet_facts(path: UPath) -> tuple[int, int]:
    """(rows, bytes) of a stored file, from its footer and size only."""
    import pyarrow.parquet as pq

    with path.open("rb") as handle:
        rows = pq.read_metadata(handle).num_rows
    return rows, int(path.fs.size(path.path))
