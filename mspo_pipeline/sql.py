"""``mspo sql`` and ``mspo warehouse``: DuckDB over every layer and partition of the store.

The views come from ``lib/warehouse.py`` and read the Parquet files in place; ``mspo sql``
creates each view when a statement first names it, so it opens in the same fraction of a second
whatever the store holds. There may be no
``duckdb`` command-line binary where the pipeline is installed (the Python package does not
ship one), so ``mspo sql`` is a small shell on the Python package: SQL statements end with
``;``, results print as DuckDB's own boxes, and ``.tables``, ``.help`` and ``.quit`` do what
they do in the DuckDB CLI. Sessions run in UTC, so timestamps print the same for everyone.
"""

from __future__ import annotations

import contextlib
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import duckdb

from mspo_pipeline.lib import manifest
from mspo_pipeline.lib.tables import CAPTURES, CURATED_TABLES, PLOT_HISTORY
from mspo_pipeline.lib.warehouse import (
    LATEST,
    WarehouseReport,
    build_warehouse,
    create_view,
    view_names,
)

MAX_ROWS = 200
"""Rows a result prints before DuckDB elides the middle."""
PROMPT, CONTINUE = "mspo> ", "  ...> "
_MISSING_TABLE = re.compile(r"Table with name (\w+) does not exist")
_VIEW_NOTES = {"plots_geo": "GEOMETRY points", "plots_hex": "H3 cells"}
_CURATED_VIEWS = ", ".join(
    f"{name} ({_VIEW_NOTES[name]})" if name in _VIEW_NOTES else name
    for name in ("smallholders", LATEST, *(t for t in CURATED_TABLES if t != "smallholders"))
)
HELP = (
    textwrap.fill(
        f"Statements end with ';'. Views: {_CURATED_VIEWS}, the reference tables (states, zones, "
        "zone_state, spocs, daerah, ...), raw_<endpoint>, typed_<table>, validated_<table>, "
        f"quarantine_<table>, and {CAPTURES} (on_time, late or missing per day and endpoint). "
        f"Every view has a partition_date column, except {PLOT_HISTORY} (one row per plot and "
        "version, newest partition), with the table macros smallholders_as_of(day) and "
        "plot_timeline(scheme, id), and stored_files (each view's files: partition_date, path, "
        "bytes).",
        width=92,
    )
    + "\nCommands: .tables  .help  .quit"
)
"""The shell's help; the curated views come from the one list of curated tables."""


def connect(
    data_root: str, database: str = ":memory:", *, rescan: bool = False
) -> tuple[duckdb.DuckDBPyConnection, WarehouseReport]:
    """A UTC session with the warehouse over ``data_root``: in a database file every view is
    written; in memory each is created when a statement first names it (see ``query``)."""
    conn = duckdb.connect(database)
    conn.execute("SET TimeZone = 'UTC'")
    report = build_warehouse(conn, data_root, rescan=rescan, lazy=database == ":memory:")
    return conn, report


def describe(report: WarehouseReport, data_root: str) -> str:
    """One line for the user: how many views, and which have no files yet."""
    text = f"{len(report.views)} views over {data_root}"
    source = "its manifest" if report.from_manifest else "a listing of the store"
    text += f", {report.files:,} files from {source}"
    if not report.views:
        return (
            f"no tables under {data_root}: run `mspo demo --data-root {data_root}` or the "
            "pipeline first, or pass the right --data-root (default $MSPO_DATA_ROOT or ./data)"
        )
    if report.skipped:
        names = ", ".join(spec.name for spec in report.skipped)
        text += f" (no files yet for {len(report.skipped)}: {names})"
    return text


def write_warehouse(data_root: str, output: Path) -> WarehouseReport:
    """A DuckDB database file holding the views (not the data: it reads the store when queried)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)  # views of an older store would outlive their files
    conn, report = connect(data_root, str(output))
    conn.close()
    return report


def query(conn: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation | None:
    """Run ``sql`` (one or more statements) and return the last result, if it has one."""
    result = None
    for statement in duckdb.extract_statements(sql):
        result = _run_creating_views(conn, statement.query)
    return result


def run(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run ``sql`` (one or more statements) and print the last result."""
    result = query(conn, sql)
    if result is not None:
        result.show(max_rows=MAX_ROWS)


def _run_creating_views(conn: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
    """One statement; a warehouse view it names that does not exist yet is created, then the
    statement runs again (it failed while binding, so nothing of it ran)."""
    while True:
        try:
            return conn.sql(sql)
        except duckdb.CatalogException as error:
            missing = _MISSING_TABLE.search(str(error))
            if missing is None or not create_view(conn, missing.group(1)):
                raise


def _command(conn: duckdb.DuckDBPyConnection, line: str) -> bool:
    """A dot command; False when the shell should stop."""
    word = line.split(maxsplit=1)[0]
    if word in (".quit", ".exit", ".q"):
        return False
    if word == ".tables":
        tables = conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
        print("  ".join(sorted({*view_names(conn), *(name for (name,) in tables)})))
    elif word == ".help":
        print(HELP)
    else:
        print(f"unknown command {word}; try .help")
    return True


def shell(conn: duckdb.DuckDBPyConnection, read: Callable[[str], str] = input) -> None:
    """Read statements until ``.quit`` or end of input; an error is printed, not fatal."""
    pending: list[str] = []
    while True:
        try:
            line = read(CONTINUE if pending else PROMPT)
        except EOFError:
            print()
            return
        except KeyboardInterrupt:
            print()
            pending.clear()
            continue
        if not pending and line.strip().startswith("."):
            if not _command(conn, line.strip()):
                return
            continue
        pending.append(line)
        if not line.rstrip().endswith(";"):
            continue
        statement = "\n".join(pending)
        pending.clear()
        try:
            run(conn, statement)
        except duckdb.Error as error:
            print(f"Error: {error}")


def rebuild_manifest(data_root: str) -> str:
    """``mspo manifest``: list the whole store, read the footers it does not know, write it."""
    listed = manifest.update(data_root)
    return (
        f"wrote {manifest.manifest_path(data_root)}: {listed.files:,} files over {listed.days:,} "
        "days"
    )


def main(data_root: str, query: str | None, *, rescan: bool = False) -> int:
    """``mspo sql``: run ``query`` and exit, or open the shell; 1 if the query fails."""
    conn, report = connect(data_root, rescan=rescan)
    print(describe(report, data_root), file=sys.stderr)
    if query is not None:
        try:
            run(conn, query)
        except duckdb.Error as error:
            print(f"Error: {error}", file=sys.stderr)
            return 1
        return 0
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history for input())
    print(HELP)
    shell(conn)
    return 0
