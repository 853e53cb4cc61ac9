"""A DuckDB warehouse of views over every layer and every partition under the data root.

Nothing is copied: each view reads the Parquet files where the pipeline wrote them. Every view
has a ``partition_date`` column derived from the ``YYYYMMDD`` folder, the partition by
definition (a filter on it opens only that day's file), and unions the partitions by column
name, so a field the API adds one day does not break older days.

Views: ``raw_<name>`` for each catalogue endpoint, ``typed_<name>``, ``validated_<name>``,
``quarantine_<name>``; the reference tables under their own names (validated layer, every
partition: join on ``partition_date`` too); the curated tables ``geography``,
``smallholders``, ``certification_summary``, ``changes``; the capture ledger ``captures``
(``status`` on_time/late/missing per day and endpoint); ``smallholders_latest`` (the newest
partition of ``smallholders``); and ``stored_files``, the manifest itself (which days each view
holds). A view with no files yet is skipped and reported. ``plot_history`` reads only the newest
partition of ``curated/plot_history`` (it holds the whole history), with the table macros
``smallholders_as_of(day)`` and ``plot_timeline(scheme, id)``.

Opening costs the same on day 1,000 as on day 1: the file list comes from the store's manifest
(``lib/manifest.py``, one read), and each view binds one file per distinct schema instead of
reading every footer. In a session the lists live in DuckDB variables (``getvariable``), which
DuckDB neither parses nor copies; a database file gets them written into its views, so it shows
the store as it was when written (write it again to follow later days). Without a manifest, or
with ``rescan``, the store is listed and every footer read, as the manifest's refresh does.

For a ``gs://`` root, DuckDB reads through gcsfs (its own ``httpfs`` extension cannot be
installed here). A database file written by ``build_warehouse`` over ``gs://`` needs the
filesystem registered again when it is reopened: call ``build_warehouse`` again, it is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from mspo_pipeline.lib import manifest
from mspo_pipeline.lib.manifest import ViewSpec, sql_literal
from mspo_pipeline.lib.tables import PLOT_HISTORY, VERSION_COLUMNS

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

_GROUPS = "_mspo_file_groups"
"""Each view's files by schema (one list of paths per group), while views are created."""
FILES_TABLE = "stored_files"
"""The warehouse's copy of the manifest: one row per file (view, partition_date, path, ...)."""
PARTITION_DATE = (
    "strptime(regexp_extract(filename, '/(\\d{8})/[^/]+$', 1), '%Y%m%d')::DATE AS partition_date"
)
LATEST = "smallholders_latest"
"""The newest partition of ``smallholders``."""
HISTORY_MACROS = ("smallholders_as_of", "plot_timeline")
"""Table macros over ``plot_history``: the register as of a day, and one plot's versions."""


@dataclass(frozen=True, slots=True)
class WarehouseReport:
    """What ``build_warehouse`` created, which views it skipped for lack of files, and whether
    the file list came from the stored manifest (else from listing the store)."""

    views: tuple[str, ...]
    skipped: tuple[ViewSpec, ...]
    files: int = 0
    from_manifest: bool = False


def build_warehouse(
    conn: duckdb.DuckDBPyConnection,
    data_root: str,
    *,
    filesystem: AbstractFileSystem | None = None,
    rescan: bool = False,
    lazy: bool = False,
) -> WarehouseReport:
    """Create (or replace) the warehouse views on ``conn`` over the files under ``data_root``.

    ``filesystem`` is an fsspec filesystem for the root (by default the local one, or gcsfs for
    ``gs://`` with application default credentials; ``STORAGE_EMULATOR_HOST`` points it at an
    emulator). ``rescan`` lists the store instead of reading its manifest. ``lazy`` leaves the
    views to ``create_view`` when a query first names them (``mspo sql``); the report lists
    them anyway.
    """
    filesystem = filesystem or manifest.filesystem_for(data_root)
    manifest.use_filesystem(conn, filesystem)
    from_manifest = not rescan and manifest.load_stored(conn, FILES_TABLE, data_root, filesystem)
    if not from_manifest:
        manifest.refresh(conn, FILES_TABLE, data_root, filesystem)
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {_GROUPS} AS SELECT view, "
        "row_number() OVER (PARTITION BY view ORDER BY min(path)) AS number, "
        f"list(path ORDER BY path) AS paths FROM {FILES_TABLE} GROUP BY view, schema"
    )
    stored = set(view_names(conn))

    created: list[str] = []
    skipped: list[ViewSpec] = []
    for spec in manifest.view_specs(data_root):
        if spec.name not in stored:
            skipped.append(spec)
        elif spec.name == PLOT_HISTORY:
            create_history_views(conn, _newest(conn, PLOT_HISTORY, "path"))
            created += [spec.name, *HISTORY_MACROS]
        else:
            created.append(spec.name)
    if LATEST in stored:
        created.append(LATEST)
    if not lazy:
        for name in created:
            if name not in (PLOT_HISTORY, *HISTORY_MACROS):
                create_view(conn, name)
    [(files,)] = conn.execute(f"SELECT count(*) FROM {FILES_TABLE}").fetchall()
    return WarehouseReport(tuple(created), tuple(skipped), files, from_manifest)


def create_view(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Create the view ``name`` over its stored files (after ``build_warehouse`` on ``conn``);
    False when the store has no files for it.

    In a database file the file lists are written into the view, as session variables do not
    outlive the connection.

    A scan per distinct schema, unioned by column name: binding a scan reads one footer, and
    files of one schema need no per-file union, which is what makes opening independent of the
    number of days.
    """
    if name == LATEST:
        if not create_view(conn, "smallholders"):
            return False
        conn.execute(
            f"CREATE OR REPLACE VIEW {LATEST} AS SELECT * FROM smallholders "
            f"WHERE partition_date = DATE '{_newest(conn, 'smallholders', 'partition_date')}'"
        )
        return True
    [(groups,)] = conn.execute(
        f"SELECT count(*) FROM {_GROUPS} WHERE view = $name", {"name": name}
    ).fetchall()
    [(in_memory,)] = conn.execute(
        "SELECT path IS NULL FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    scans = []
    for number in range(1, groups + 1):
        paths = (
            f"SELECT paths FROM {_GROUPS} WHERE view = {sql_literal(name)} AND number = {number}"
        )
        if not in_memory:
            [(listed_paths,)] = conn.execute(paths).fetchall()
            listed = "[" + ", ".join(sql_literal(p) for p in listed_paths) + "]"
        else:
            variable = f"mspo_files_{name}_{number}"
            conn.execute(f"SET VARIABLE {variable} = ({paths})")
            listed = f"getvariable('{variable}')"
        scans.append(
            f"SELECT {PARTITION_DATE}, COLUMNS(lambda c: c NOT IN ('filename', 'partition_date')) "
            f"FROM read_parquet({listed}, filename = true)"
        )
    if scans:
        conn.execute(f"CREATE OR REPLACE VIEW {name} AS " + " UNION ALL BY NAME ".join(scans))
    return bool(scans)


def view_names(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Every warehouse view on ``conn`` (after ``build_warehouse``), created yet or not."""
    stored = {view for (view,) in conn.execute(f"SELECT DISTINCT view FROM {_GROUPS}").fetchall()}
    return sorted({*stored, FILES_TABLE, *([LATEST] if "smallholders" in stored else [])})


def _newest(conn: duckdb.DuckDBPyConnection, view: str, column: str) -> str:
    [(value,)] = conn.execute(
        f"SELECT max({column})::VARCHAR FROM {FILES_TABLE} WHERE view = $view", {"view": view}
    ).fetchall()
    return str(value)


def create_history_views(conn: duckdb.DuckDBPyConnection, newest: str) -> None:
    """``plot_history`` over its newest stored partition, and the macros over it.

    A version is valid on day D when ``valid_from <= D`` and ``replaced_on`` is null or after D
    (see lib/history.py): on a captured day that is exactly that day's ``smallholders``; on a
    day that was not captured, the register as last captured before it. The file is sorted by
    plot, in row groups small enough that one plot's timeline reads one of them;
    ``smallholders_as_of`` does not sort (a sort of 350k wide rows would double its time).
    """
    version_columns = ", ".join(c.name for c in VERSION_COLUMNS)
    newest_file = sql_literal(newest)
    conn.execute(
        f"CREATE OR REPLACE VIEW {PLOT_HISTORY} AS SELECT * FROM read_parquet({newest_file})"
    )
    conn.execute(
        "CREATE OR REPLACE MACRO smallholders_as_of(as_of_day) AS TABLE "
        f"SELECT * EXCLUDE ({version_columns}) FROM {PLOT_HISTORY} "
        "WHERE valid_from <= as_of_day::DATE "
        "AND (replaced_on IS NULL OR replaced_on > as_of_day::DATE) AND NOT removed"
    )
    conn.execute(
        "CREATE OR REPLACE MACRO plot_timeline(plot_scheme, plot_id) AS TABLE "
        f"SELECT * FROM {PLOT_HISTORY} "
        "WHERE scheme = plot_scheme AND entity_smallholder_id = plot_id ORDER BY version"
    )


ANALYST_QUERIES: list[tuple[str, str]] = [
    (
        "Active certified hectares by state (newest snapshot)",
        """
SELECT state,
       count(*) AS smallholders,
       sum(certified_area) AS certified_ha,
       round(avg(certified_area), 2) AS avg_ha
FROM smallholders_latest
WHERE cert_status = 'ACTIVE' AND NOT deleted
GROUP BY state
ORDER BY certified_ha DESC
""",
    ),
    (
        "Smallholders and hectares by zone (SPOC and group managers; OSH has no zone)",
        """
SELECT zone, state,
       count(*) AS smallholders,
       sum(certified_area) AS certified_ha
FROM smallholders_latest
WHERE scheme IN ('SPOC', 'GM') AND NOT deleted
GROUP BY zone, state
ORDER BY certified_ha DESC
""",
    ),
    (
        "OSH hectares by organisation",
        """
SELECT entity_name AS organisation, state,
       count(*) AS smallholders,
       sum(certified_area) AS certified_ha
FROM smallholders_latest
WHERE scheme = 'OSH'
GROUP BY entity_name, state
ORDER BY certified_ha DESC
""",
    ),
    (
        "Plots whose certificate expired in the 7 days up to the newest snapshot",
        """
SELECT c.partition_date AS expired_in_snapshot, c.scheme, c.entity_smallholder_id,
       c.old_value AS previous_status, s.state, s.name, s.cert_no, s.certified_area
FROM changes AS c
JOIN smallholders_latest AS s USING (scheme, entity_smallholder_id)
WHERE c.change_type = 'changed' AND c.column_name = 'cert_status' AND c.new_value = 'EXPIRED'
  AND c.partition_date > (SELECT max(partition_date) FROM smallholders_latest) - INTERVAL 7 DAY
ORDER BY expired_in_snapshot DESC, c.scheme, c.entity_smallholder_id
""",
    ),
    (
        "Certified (ACTIVE) plots per state, day by day",
        """
SELECT partition_date, state, sum(plots)::BIGINT AS certified_plots
FROM certification_summary
WHERE cert_status = 'ACTIVE'
GROUP BY partition_date, state
ORDER BY partition_date, state
""",
    ),
]
"""The questions of the API docs (and two the docs could not answer without history), as SQL
over the warehouse views; the README shows them and the tests run them."""
