"""The store's manifest: every Parquet file the SQL warehouse reads, with its view and schema.

Without it, opening the warehouse means globbing every table's folder and reading every file's
footer to union the schemas: time, and on GCS requests, in proportion to the days kept (13.5 s
after a year). The manifest is one Parquet file, ``manifest/mspo/files.parquet`` under the data
root, with one row per stored file: the view it belongs to, its partition day, size, version (the
local modification time or the GCS object generation) and schema. The warehouse reads it in one
request, groups each view's files by schema and binds one file per group, whatever the number of
days.

``update`` refreshes it: it looks at one day's files (or lists the whole store), reads the
footers of new or rewritten files only (a file whose size and version are unchanged keeps its
recorded schema), and copies every other row inside DuckDB, so the ``warehouse/manifest`` asset
that runs at the end of every day's run grows only with the manifest's size: 0.11 s with 30
days kept, 0.22 s with 1,095 (``benchmarks.history``).

Imports only DuckDB and fsspec: ``mspo sql`` reads the manifest without polars.
"""

from __future__ import annotations

import datetime as dt
import functools
import glob
import os
import re
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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
STAT_THREADS = 16
"""Objects a day's refresh looks up at once on GCS (gcsfs serves every thread on its own loop)."""
_PARTITION_FOLDER = re.compile(r"/(\d{8})/[^/]+$")


@dataclass(frozen=True, slots=True)
class ViewSpec:
    """One warehouse view: its name and the glob of the Parquet files it unions."""

    name: str
    pattern: str


COLUMNS = {
    "view": "VARCHAR",
    "path": "VARCHAR",
    "partition_date": "DATE",
    "bytes": "BIGINT",
    "version": "VARCHAR",
    "schema": "VARCHAR",
}
"""The manifest's columns, one row per stored Parquet file: the view it belongs to; its path as
DuckDB reads it (an absolute local path or a ``gs://`` URI); its partition day; its size; its
version (local modification time in ns, or the GCS object's generation: changes on rewrite); its
schema (column names and DuckDB types in file order: files with equal text share a schema)."""


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


def _stats(
    filesystem: AbstractFileSystem | None, paths: Sequence[str]
) -> dict[str, tuple[int, str] | None]:
    """``_stat`` of every path: on GCS, ``STAT_THREADS`` at a time. A day has a file per table
    (64 looks), and one at a time each waited for its round trip to the bucket."""
    if filesystem is None:
        return {path: _stat(None, path) for path in paths}
    with ThreadPoolExecutor(STAT_THREADS) as pool:
        return dict(zip(paths, pool.map(functools.partial(_stat, filesystem), paths), strict=True))


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
    patterns = list(dict.fromkeys(spec.pattern for spec in specs))
    if days is None:
        seen = {pattern: _glob(filesystem, pattern) for pattern in patterns}
    else:
        paths = {
            pattern: [pattern.replace(PARTITION_FOLDER_GLOB, folder_name(day)) for day in days]
            for pattern in patterns
        }
        facts = _stats(filesystem, [path for each in paths.values() for path in each])
        seen = {
            pattern: {path: found for path in each if (found := facts[path]) is not None}
            for pattern, each in paths.items()
        }
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


def _columns_table(
    conn: duckdb.DuckDBPyConnection, table: str, columns: Mapping[str, list[object]]
) -> None:
    """The temporary table ``table`` from ``{manifest column: values}``, a row per value."""
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT "
        + ", ".join(f"unnest(${name}::{COLUMNS[name]}[]) AS {name}" for name in columns),
        dict(columns),
    )


def _days_literal(days: Collection[dt.date]) -> str:
    return "[" + ", ".join(f"DATE '{day.isoformat()}'" for day in sorted(days)) + "]::DATE[]"


@contextmanager
def _refreshed(
    conn: duckdb.DuckDBPyConnection,
    data_root: str,
    filesystem: AbstractFileSystem | None,
    previous: str | None,
    days: Collection[dt.date] | None,
) -> Iterator[str]:
    """A query of the manifest now: the manifest ``previous`` (a relation, or None) with the
    files of ``days`` looked at again (every day when ``days`` is None).

    Footers are read only for new or rewritten files. A day's rows are the only ones of
    ``previous`` that its refresh can reuse (the day is in each file's path), so the other days'
    rows are copied as they are, inside DuckDB: after three years that is 81,000 rows, which
    through Python took about 1.5 s and 300 MB every day. The query reads scratch tables of
    ``conn``, dropped when the context ends.
    """
    use_filesystem(conn, filesystem)
    listed = _listed(view_specs(data_root), filesystem, days)
    _columns_table(
        conn,
        "_mspo_listed",
        {
            "view": [view for view, *_ in listed],
            "path": [path for _, path, *_ in listed],
            "partition_date": [partition_day(path) for _, path, *_ in listed],
            "bytes": [size for *_, size, _ in listed],
            "version": [version for *_, version in listed],
        },
    )
    on_days = "" if days is None else f"WHERE list_contains({_days_literal(days)}, partition_date)"
    known = (
        f"SELECT path, bytes, version, any_value(schema) AS schema FROM {previous} {on_days} "
        "GROUP BY ALL"  # a reference table's file is listed under two views
        if previous
        else "SELECT path, bytes, version, NULL::VARCHAR AS schema FROM _mspo_listed WHERE false"
    )
    conn.execute(f"CREATE OR REPLACE TEMP TABLE _mspo_known AS {known}")
    unread = conn.execute(
        "SELECT DISTINCT path FROM _mspo_listed ANTI JOIN _mspo_known USING (path, bytes, version) "
        "ORDER BY path"
    ).fetchall()
    schemas = read_schemas(conn, [path for (path,) in unread])
    _columns_table(conn, "_mspo_read", {"path": list(schemas), "schema": list(schemas.values())})
    kept = (
        f"SELECT {', '.join(COLUMNS)} FROM {previous} "
        f"WHERE NOT list_contains({_days_literal(days)}, partition_date) UNION ALL "
        if previous and days is not None
        else ""
    )
    try:
        yield (
            f"{kept}SELECT view, path, partition_date, bytes, version, "
            "coalesce(_mspo_known.schema, _mspo_read.schema, '') AS schema FROM _mspo_listed "
            "LEFT JOIN _mspo_known USING (path, bytes, version) LEFT JOIN _mspo_read USING (path)"
        )
    finally:
        for scratch in ("_mspo_listed", "_mspo_known", "_mspo_read"):  # not left in a session
            conn.execute(f"DROP TABLE IF EXISTS {scratch}")


def refresh(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    data_root: str,
    filesystem: AbstractFileSystem | None,
) -> None:
    """Every stored file as the DuckDB table ``table`` (the manifest's columns): the whole
    store listed, every footer read."""
    with _refreshed(conn, data_root, filesystem, None, None) as query:
        conn.execute(f"CREATE OR REPLACE TABLE {table} AS {query}")


@dataclass(frozen=True, slots=True)
class Totals:
    """What a manifest lists, counted in DuckDB."""

    files: int
    days: int
    bytes: int
    views: int
    schemas: int
    """Distinct (view, schema) pairs: the files the warehouse binds per view."""
    files_on_days: int
    """Files of the days asked about (every file when none were)."""


def _totals(
    conn: duckdb.DuckDBPyConnection, relation: str, days: Collection[dt.date] | None
) -> Totals:
    on_days = (
        "" if days is None else f"FILTER (list_contains({_days_literal(days)}, partition_date))"
    )
    [row] = conn.execute(
        f"SELECT count(*), count(DISTINCT partition_date), coalesce(sum(bytes), 0), "
        f"count(DISTINCT view), count(DISTINCT (view, schema)), count(*) {on_days} "
        f"FROM {relation}"
    ).fetchall()
    return Totals(*(int(value) for value in row))


def load_stored(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    data_root: str,
    filesystem: AbstractFileSystem | None,
) -> bool:
    """The stored manifest of ``data_root`` as the DuckDB table ``table`` (one download, no rows
    through Python); False when there is none yet."""
    with tempfile.TemporaryDirectory(prefix="mspo-manifest-") as scratch:
        stored = _readable_copy(filesystem, manifest_path(data_root), Path(scratch))
        if stored is None:
            return False
        conn.execute(
            f"CREATE OR REPLACE TABLE {table} AS SELECT {', '.join(COLUMNS)} "
            f"FROM read_parquet({sql_literal(stored)})"
        )
    return True


def sql_literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def write(
    conn: duckdb.DuckDBPyConnection,
    data_root: str,
    filesystem: AbstractFileSystem | None,
    query: str,
    days: Collection[dt.date] | None = None,
) -> Totals:
    """Replace the stored manifest with the rows of ``query`` in one step (readers never see
    half of it); what it lists, with the files of ``days`` counted apart."""
    target = manifest_path(data_root)
    folder = Path(target).parent if filesystem is None else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".mspo-manifest-", suffix=".parquet", dir=folder)
    os.close(handle)
    temp = Path(name)
    try:
        conn.execute(
            f"COPY ({query}) TO {sql_literal(str(temp))} (FORMAT parquet, COMPRESSION zstd)"
        )
        written = _totals(conn, f"read_parquet({sql_literal(str(temp))})", days)
        if filesystem is None:
            temp.replace(target)
        else:
            filesystem.put_file(str(temp), target)
    finally:
        temp.unlink(missing_ok=True)
    return written


def update(data_root: str, *, days: Collection[dt.date] | None = None) -> Totals:
    """Refresh the stored manifest of ``data_root`` and write it back: the files of ``days``
    looked at again, or every day when ``days`` is None or there is no manifest yet."""
    filesystem = filesystem_for(data_root)
    with tempfile.TemporaryDirectory(prefix="mspo-manifest-") as scratch:
        stored = _readable_copy(filesystem, manifest_path(data_root), Path(scratch))
        previous = f"read_parquet({sql_literal(stored)})" if stored else None
        with (
            duckdb.connect() as conn,
            _refreshed(conn, data_root, filesystem, previous, days if previous else None) as query,
        ):
            return write(conn, data_root, filesystem, query, days)


def _readable_copy(filesystem: AbstractFileSystem | None, path: str, scratch: Path) -> str | None:
    """``path`` where DuckDB reads it cheaply: itself on a local disk, else downloaded into
    ``scratch`` in one request (DuckDB's own reads of a remote file are a range request each,
    dozens of round trips to the bucket, and the refresh reads it twice); None if absent."""
    if filesystem is None:
        return path if Path(path).exists() else None
    local = scratch / Path(path).name
    try:
        filesystem.get_file(path, str(local))
    except FileNotFoundError:
        return None
    return str(local)
