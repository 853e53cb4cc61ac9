"""Where each table's daily Parquet file lives, and the provenance it carries in its footer.

Pure functions over strings, shared by the IO manager, the raw assets (no-overwrite check) and
anything else that reads the store (the SQL warehouse), so one layout is spelled in one place.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from mspo_pipeline.lib.days import partition_folder
from mspo_pipeline.lib.layout import relative_path
from mspo_pipeline.lib.roots import is_gcs, storage_options

if TYPE_CHECKING:
    from upath import UPath

PROVENANCE_PREFIX = "mspo."
"""Prefix of our keys in the Parquet key-value metadata (polars and Arrow keep their own)."""
GEOPARQUET_KEY = "geo"
"""The footer key GeoParquet readers look for (unprefixed: the GeoParquet 1.1 specification's)."""
REUSE_EXISTING = "mspo/reuse_existing"
"""Output metadata flag: the stored partition is kept as it is and nothing is written."""

TEMP_PREFIX = ".mspo-"
TEMP_SUFFIX = ".parquet.tmp"
"""Our temporary files: ``.mspo-<random>.parquet.tmp``, in the target's folder or the system's."""
STALE_TEMP_MIN_AGE_S = 5.0
"""A temporary file younger than this is never removed (see ``remove_stale_temps``)."""

_log = logging.getLogger(__name__)


def join_root(root: str, relative: str) -> str:
    """``root`` + ``relative`` for local folders and ``gs://bucket[/prefix]`` alike."""
    return f"{root.rstrip('/')}/{relative}"


def storage_path(root: str, asset_key: Sequence[str], partition_key: str) -> str:
    """The full path or ``gs://`` URI of one asset partition."""
    return join_root(root, relative_path(asset_key, partition_key))


def root_upath(root: str) -> UPath:
    """``root`` as a UPath on the right filesystem (local folder or ``gs://``)."""
    from upath import UPath

    if is_gcs(root):
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
    return read_footer(path)[1]


def read_footer(path: str | os.PathLike[str] | UPath) -> tuple[int, dict[str, str]]:
    """(rows, provenance) from one read of a Parquet file's footer, without its data.

    For readers of many files (the capture ledger, ``mspo status``) that need both and must not
    open each file twice; raises ``FileNotFoundError`` like ``read_provenance``.
    """
    import pyarrow.parquet as pq

    with as_upath(path).open("rb") as handle:
        footer = pq.read_metadata(handle)
    prefix = PROVENANCE_PREFIX.encode()
    provenance = {
        key[len(prefix) :].decode(): value.decode()
        for key, value in (footer.metadata or {}).items()
        if key.startswith(prefix)
    }
    return footer.num_rows, provenance


def is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


def remove_stale_temps(
    directory: str | os.PathLike[str], *, min_age_s: float = STALE_TEMP_MIN_AGE_S
) -> list[Path]:
    """Remove our temporary files in ``directory`` that no live writer holds; return them.

    A writer killed mid-write (SIGKILL, OOM) leaves its ``.mspo-*.parquet.tmp`` behind, next to
    the day's file, forever. Whether its writer is alive is told by a lock, not by the file's
    age: every writer holds an exclusive ``flock`` on its temporary file from just after
    creating it until after it is renamed or removed, and the kernel drops the lock when the
    process dies however it dies. A file whose lock can be taken has no writer left, even if it
    was written a second ago (a re-run right after a crash cleans up at once), while a slow
    write of any length is never touched: an age threshold alone would have to guess how long
    the slowest write takes, and either leave garbage for that long or cut a live write.

    The small ``min_age_s`` only covers the instant between ``mkstemp`` creating the file and
    its writer locking it. Only names we create are considered; anything else in the folder is
    not ours. Locks are per host on most network filesystems: writing one partition folder from
    two hosts at once is not supported anyway.
    """
    now = time.time()
    removed = []
    for path in Path(directory).glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        try:
            if now - path.stat().st_mtime < min_age_s:
                continue
            descriptor = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # renamed or removed meanwhile by its writer
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # a live writer holds it
        else:
            path.unlink(missing_ok=True)
            removed.append(path)
        finally:
            os.close(descriptor)
    if removed:
        _log.warning(
            "removed %d temporary file(s) left by a killed write in %s: %s",
            len(removed),
            directory,
            ", ".join(p.name for p in removed),
        )
    return removed


@contextmanager
def _local_temp(directory: str | None) -> Iterator[Path]:
    """A temporary file path, removed afterwards whatever happens (it may be renamed away).

    The file is locked while it exists (``remove_stale_temps``), and creating one first clears
    what killed writers left in the same folder.
    """
    folder = directory if directory is not None else tempfile.gettempdir()
    remove_stale_temps(folder)
    descriptor, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=folder)
    temp = Path(name)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield temp
    finally:
        temp.unlink(missing_ok=True)
        os.close(descriptor)  # releases the lock, once the name is gone


def _write(frame: pl.DataFrame, path: Path, metadata: Mapping[str, str]) -> None:
    frame.write_parquet(path, compression="zstd", metadata=dict(metadata))


def write_parquet_atomic(frame: pl.DataFrame, path: UPath, metadata: Mapping[str, str]) -> None:
    """Write ``frame`` so that readers see the old file or the new one, never a part.

    Local: a temporary file in the same folder, then an atomic rename. GCS: a local temporary
    file, then one object upload (the object appears only when the upload completes). polars'
    own ``gs://`` writer is not used: it fails against GCS emulators.
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


def write_bytes_atomic(data: bytes, path: UPath) -> None:
    """Write a small file (a map) so that readers see the old one or the new one, never a part:
    a rename in the same folder locally, one object upload on GCS."""
    if not is_local(path):
        path.fs.pipe_file(path.path, data)
        return
    target = Path(path.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _local_temp(str(target.parent)) as temp:
        temp.write_bytes(data)
        temp.replace(target)


@contextmanager
def _readable(path: UPath) -> Iterator[tuple[Path, bool]]:
    """A local file with ``path``'s bytes, and whether polars may memory-map it: the file
    itself, or a ``gs://`` object streamed to a temporary file (removed afterwards), so its
    bytes are never held in Python."""
    if is_local(path):
        yield Path(path.path), True
        return
    if not path.exists():
        raise FileNotFoundError(f"no Parquet object at {path}")
    with _local_temp(None) as temp:
        path.fs.get_file(path.path, str(temp))
        yield temp, False


def read_parquet(
    path: UPath, columns: Sequence[str] | None = None, *, rows: int | None = None
) -> pl.DataFrame:
    """The file (or those of ``columns`` it has; only its first ``rows``, if given, the rest
    not decoded) as an eager frame."""
    with _readable(path) as (file, memory_map):
        return _read_columns(file, columns, memory_map=memory_map, rows=rows)


def _read_columns(
    file: Path, columns: Sequence[str] | None, *, memory_map: bool, rows: int | None = None
) -> pl.DataFrame:
    if columns is None:
        return pl.read_parquet(file, memory_map=memory_map, n_rows=rows)
    present = pl.read_parquet_schema(file)  # a day's file may lack a field the API dropped
    kept = [column for column in columns if column in present]
    return pl.read_parquet(file, columns=kept, memory_map=memory_map, n_rows=rows)


def rejected_body_path(root: str, endpoint: str, partition_key: str, captured_at: datetime) -> str:
    """Where a response body the parser refused is kept: never in the layers, always findable."""
    stamp = captured_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = partition_folder(partition_key)
    return join_root(root, f"rejected/mspo/{endpoint}/{folder}/{endpoint}-{stamp}.json")


def keep_rejected_body(
    root: str, endpoint: str, partition_key: str, captured_at: datetime, body: Path
) -> str:
    """Copy a refused response body under the data root and return where: an error page or a
    body of a shape nobody expected is evidence, and the API will not send that day again."""
    target = rejected_body_path(root, endpoint, partition_key, captured_at)
    path = as_upath(target)
    if is_local(path):
        Path(path.path).parent.mkdir(parents=True, exist_ok=True)
    path.fs.put_file(str(body), path.path)
    return target


def file_sha256(path: str | os.PathLike[str] | UPath) -> str:
    """Hex SHA-256 of a stored file's bytes, read in pieces (a raw SPOC file is ~20 MB)."""
    digest = hashlib.sha256()
    with as_upath(path).open("rb") as handle:
        while piece := handle.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


def read_stored(
    path: UPath, *, digest: bool, columns: Sequence[str] | None = None
) -> tuple[pl.DataFrame, dict[str, str], str | None]:
    """A stored file's frame (only those of ``columns`` it has, if given), its provenance and
    (with ``digest``) its SHA-256, reading a ``gs://`` object once."""
    with _readable(path) as (file, memory_map):
        frame = _read_columns(file, columns, memory_map=memory_map)
        return frame, read_provenance(file), file_sha256(file) if digest else None


def parquet_facts(path: UPath) -> tuple[int, int]:
    """(rows, bytes) of a stored file, from its footer and size only."""
    import pyarrow.parquet as pq

    with path.open("rb") as handle:
        rows = pq.read_metadata(handle).num_rows
    return rows, int(path.fs.size(path.path))
