"""The store's manifest: every Parquet file the SQL warehouse reads, with its view and schema.

Without it, opening the warehouse means globbing every table's folder and reading every file's
footer to union the schemas: time, and on GCS requests, in proportion to the days kept (13.5 s
after a year). The manifest is one Parquet file, ``manifest/mspo/files.parquet`` under the data
root, with one row per stored file: the view it belongs to, its partition day, size, version (the
local modification time or the GCS object generation) and schema. The warehouse reads it in one
request, groups each view's files by schema and binds one file per group, whatever the number of
days.

``refresh`` lists the store and reads the footers of new or rewritten files only (a file whose
size and version are unchanged keeps its recorded schema), so the ``warehouse/manifest`` asset
that runs at the end of every day's run costs the same on day 1,000 as on day 1.

Imports only DuckDB and fsspec: ``mspo sql`` reads the manifest without polars.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import re
import tempfile
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from mspo_pipeline.lib.catalog import ENDPOINTS, Kind
from mspo_pipeline.lib.days import folder_day, folder_name
from mspo_pipeline.lib.layout import relative_pattern
from mspo_pipeline.lib.roots import is_gcs, root_uri, storage_options
from mspo_pipeline.lib.tables import CAPTURES, CURATED_TABLES, PLOT_HISTORY

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

MANIFEST = "manifest/mspo/files.parquet"
"""The manifest's place, relative to the data root."""
PARTITION_FOLDER_GLOB = "[0-9]" * 8
"""A ``YYYYMMDD`` partition folder; other folders (temporary, stray) are not partitions."""
DERIVED_LAYERS = ("typed", "validated", "quarantine")
_PARTITION_FOLDER = re.compile(r"/(\d{8})/[^/]+$")


@dataclass(frozen=True, slots=True)
class ViewSpec:
    """One warehouse view: its name and the glob of the Parquet files it unions."""

    name: str
    pattern: str


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One Parquet file of the store, as the manifest records it."""

    view: str
    path: str
    """As DuckDB reads it: an absolute local path or a ``gs://`` URI."""
    partition_date: dt.date
    bytes: int
    version: str
    """Local modification time in ns, or the GCS object's generation: changes on rewrite."""
    schema: str
    """Column names and DuckDB types in file order: files with equal text share a schema."""


def manifest_path(data_root: str) -> str:
    return f"{root_uri(data_root)}/{MANIFEST}"


def view_specs(data_root: str) -> list[ViewSpec]:
    """Every view the warehouse can have under ``data_root``, whether or not it has files yet.

    ``raw_<endpoint>`` follows the API docs' layout (from the catalogue); every other layer is
    ``<layer>/mspo/<table>/YYYYMMDD/<table>.parquet``. Reference tables also appear under their
    own names (their validated layer).
    """
    root = root_uri(data_root)

    def layer(layer_name: str, table: str) -> str:
        return f"{root}/{relative_pattern([layer_name, table], PARTITION_FOLDER_GLOB)}"

    specs = [ViewSpec(f"raw_{e.name}", layer("raw", e.name)) for e in ENDPOINTS]
    specs += [
        ViewSpec(f"{layer_name}_{e.name}", layer(layer_name, e.name))
        for layer_name in DERIVED_LAYERS
        for e in ENDPOINTS
    ]
    specs += [
        ViewSpec(e.name, layer("validated", e.name)) for e in ENDPOINTS if e.kind is Kind.REFERENCE
    ]
    specs += [
        ViewSpec(table, layer("curated", table))
        for table in (*CURATED_TABLES, CAPTURES, PLOT_HISTORY)
    ]
    return specs


def partition_day(path: str) -> dt.date:
    """The partition day of a stored file, from its ``YYYYMMDD`` folder."""
    match = _PARTITION_FOLDER.search(path)
    day = folder_day(match.group(1)) if match else None
    if day is None:
        raise ValueError(f"{path} is not in a YYYYMMDD partition folder")
    return day


def filesystem_for(data_root: str) -> AbstractFileSystem | None:
    """gcsfs for a ``gs://`` root (with the IO manager's options: application default
    credentials, or anonymous against ``STORAGE_EMULATOR_HOST``); None for a local folder, which
    is read with ``os`` (fsspec alone takes 0.2 s to import)."""
    if not is_gcs(data_root):
        return None
    import fsspec

    return fsspec.filesystem("gcs", **storage_options(data_root))


def use_filesystem(conn: duckdb.DuckDBPyConnection, filesystem: AbstractFileSystem | None) -> None:
    """Let DuckDB on ``conn`` read (and write) through ``filesystem``, once per connection."""
    if filesystem is None:
        return
    protocol = filesystem.protocol
    name = protocol if isinstance(protocol, str) else protocol[0]
    if not conn.filesystem_is_registered(name):
        conn.register_filesystem(filesystem)


def _exists(filesystem: AbstractFileSystem | None, path: str) -> bool:
    if filesystem is None:
        return Path(path).exists()
    return bool(filesystem.exists(path))


def _stat(filesystem: AbstractFileSystem | None, path: str) -> tuple[int, str] | None:
    """``(bytes, version)`` of ``path``, or None when there is no such file."""
    if filesystem is None:
        try:
            stat = Path(path).stat()
        except FileNotFoundError:
            return None
        return stat.st_size, str(stat.st_mtime_ns)
    try:
        info = filesystem.info(path)
    except FileNotFoundError:
        return None
    return int(info["size"]), _version(info)


def _version(info: Mapping[str, object]) -> str:
    return str(info.get("generation") or info.get("mtime") or info.get("updated") or "")


def _glob(filesystem: AbstractFileSystem | None, pattern: str) -> dict[str, tuple[int, str]]:
    """``{path: (bytes, version)}`` of the files matching ``pattern``: one listing."""
    if filesystem is None:
        found = {}
        for path in glob.glob(pattern):  # noqa: PTH207 (Path.glob takes no absolute pattern)
            stat = Path(path).stat()
            found[path] = (stat.st_size, str(stat.st_mtime_ns))
        return found
    protocol = pattern.split("://", 1)[0]
    matches = filesystem.glob(pattern, detail=True)
    assert isinstance(matches, dict)
    return {
        f"{protocol}://{name.split('://', 1)[-1]}": (int(info["size"]), _version(info))
        for name, info in matches.items()
    }


def _listed(
    specs: Sequence[ViewSpec],
    filesystem: AbstractFileSystem | None,
    days: Collection[dt.date] | None,
) -> list[tuple[str, str, int, str]]:
    """``(view, path, bytes, version)`` of the stored files of every spec: on ``days`` only
    (one look per expected file, however many days the store holds), else every day (one
    listing per table folder). Views that share a folder (the reference tables) share the
    look."""
    seen: dict[str, dict[str, tuple[int, str]]] = {}
    for pattern in dict.fromkeys(spec.pattern for spec in specs):
        if days is None:
            seen[pattern] = _glob(filesystem, pattern)
            continue
        found = seen.setdefault(pattern, {})
        for day in days:
            path = pattern.replace(PARTITION_FOLDER_GLOB, folder_name(day))
            if (facts := _stat(filesystem, path)) is not None:
                found[path] = facts
    return [
        (spec.name, path, size, version)
        for spec in specs
        for path, (size, version) in sorted(seen[spec.pattern].items())
    ]


def read_schemas(conn: duckdb.DuckDBPyConnection, paths: Sequence[str]) -> dict[str, str]:
    """The schema text of each file, read from its footer (one footer read per file)."""
    if not paths:
        return {}
    rows = conn.execute(
        "SELECT file_name, string_agg(name || ' ' || coalesce(duckdb_type, 'GROUP'), ', ' "
        "ORDER BY column_id) FILTER (WHERE column_id > 0) "
        "FROM parquet_schema($paths) GROUP BY file_name",
        {"paths": list(paths)},
    ).fetchall()
    return {path: schema or "" for path, schema in rows}


def refresh(
    conn: duckdb.DuckDBPyConnection,
    data_root: str,
    filesystem: AbstractFileSystem | None,
    previous: Iterable[StoredFile] = (),
    *,
    days: Collection[dt.date] | None = None,
) -> list[StoredFile]:
    """The manifest now: ``previous`` with the files of ``days`` looked at again (every day
    when ``days`` is None). Footers are read only for new or rewritten files."""
    use_filesystem(conn, filesystem)
    previous = list(previous)
    known = {(f.path, f.bytes, f.version): f.schema for f in previous}
    listed = _listed(view_specs(data_root), filesystem, days)
    unread = {path for _, path, size, version in listed if (path, size, version) not in known}
    schemas = read_schemas(conn, sorted(unread))
    kept = [f for f in previous if days is not None and f.partition_date not in days]
    fresh = [
        StoredFile(
            view=view,
            path=path,
            partition_date=partition_day(path),
            bytes=size,
            version=version,
            schema=known.get((path, size, version), schemas.get(path, "")),
        )
        for view, path, size, version in listed
    ]
    return sorted([*kept, *fresh], key=lambda f: (f.view, f.path))


_COLUMNS = ("view", "path", "partition_date", "bytes", "version", "schema")


def load(conn: duckdb.DuckDBPyConnection, table: str, files: Sequence[StoredFile]) -> None:
    """``files`` as the DuckDB table ``table`` (the manifest's columns)."""
    conn.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT "
        + ", ".join(f"unnest(${c}) AS {c}" for c in _COLUMNS),
        {c: [getattr(f, c) for f in files] for c in _COLUMNS},
    )


def load_stored(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    data_root: str,
    filesystem: AbstractFileSystem | None,
) -> bool:
    """The stored manifest of ``data_root`` as the DuckDB table ``table`` (one read, no rows
    through Python); False when there is none yet."""
    path = manifest_path(data_root)
    if not _exists(filesystem, path):
        return False
    use_filesystem(conn, filesystem)
    conn.execute(
        f"CREATE OR REPLACE TABLE {table} AS SELECT {', '.join(_COLUMNS)} "
        f"FROM read_parquet({sql_literal(path)})"
    )
    return True


def read(
    conn: duckdb.DuckDBPyConnection, data_root: str, filesystem: AbstractFileSystem | None
) -> list[StoredFile] | None:
    """The stored manifest of ``data_root``, or None when there is none yet."""
    path = manifest_path(data_root)
    if not _exists(filesystem, path):
        return None
    use_filesystem(conn, filesystem)
    rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM read_parquet({sql_literal(path)})")
    return [StoredFile(*row) for row in rows.fetchall()]


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def write(
    conn: duckdb.DuckDBPyConnection,
    data_root: str,
    filesystem: AbstractFileSystem | None,
    files: Sequence[StoredFile],
) -> str:
    """Replace the stored manifest with ``files`` in one step (readers never see half of it)."""
    target = manifest_path(data_root)
    folder = Path(target).parent if filesystem is None else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".mspo-manifest-", suffix=".parquet", dir=folder)
    os.close(handle)
    temp = Path(name)
    try:
        load(conn, "_mspo_manifest", files)
        conn.execute(
            f"COPY (SELECT * FROM _mspo_manifest ORDER BY view, path) TO '{temp}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        conn.execute("DROP TABLE _mspo_manifest")
        if filesystem is None:
            temp.replace(target)
        else:
            filesystem.put_file(str(temp), target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def update(data_root: str, *, days: Collection[dt.date] | None = None) -> list[StoredFile]:
    """Refresh the stored manifest of ``data_root`` and write it back: the files of ``days``
    looked at again, or every day when ``days`` is None or there is no manifest yet."""
    filesystem = filesystem_for(data_root)
    with duckdb.connect() as conn:
        previous = read(conn, data_root, filesystem)
        files = refresh(
            conn, data_root, filesystem, previous or (), days=None if previous is None else days
        )
        write(conn, data_root, filesystem, files)
    return files
