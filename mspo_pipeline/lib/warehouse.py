"""A DuckDB warehouse of views over every layer and every partition under the data root.

Nothing is copied: each view reads the Parquet files where the pipeline wrote them (the layout
of ``lib/storage.py``), so a database built once sees every later partition. Every view has a
``partition_date`` column derived from the ``YYYYMMDD`` folder, the partition by definition, and
unions the partitions by column name, so a field the API adds one day does not break older days.

Views: ``raw_<name>`` for each catalogue endpoint, ``typed_<name>``, ``validated_<name>``,
``quarantine_<name>``; the reference tables under their own names (validated layer, every
partition: join on ``partition_date`` too); the curated tables ``geography``,
``smallholders``, ``certification_summary``, ``changes``; the capture ledger ``captures``
(``status`` on_time/late/missing per day and endpoint); and ``smallholders_latest`` (the
newest partition of ``smallholders``). A layer with no files yet is skipped and reported.
``plot_history`` reads only the newest partition of ``curated/plot_history`` (it holds the whole
history), with the table macros ``smallholders_as_of(day)`` and ``plot_timeline(scheme, id)``.

For a ``gs://`` root, DuckDB reads through gcsfs (its own ``httpfs`` extension cannot be
installed here). A database file written by ``build_warehouse`` over ``gs://`` needs the
filesystem registered again when it is reopened: call ``build_warehouse`` again, it is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from mspo_pipeline.lib import ledger
from mspo_pipeline.lib.catalog import ENDPOINTS, Kind
from mspo_pipeline.lib.history import VERSION_COLUMNS
from mspo_pipeline.lib.storage import storage_options

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

PARTITION_FOLDER_GLOB = "[0-9]" * 8
"""A ``YYYYMMDD`` partition folder; other folders (temporary, stray) are not partitions."""

CURATED_TABLES = ("geography", "smallholders", "certification_summary", "changes")
LAYERS = ("typed", "validated", "quarantine")


@dataclass(frozen=True, slots=True)
class ViewSpec:
    """One warehouse view: its name and the glob of the Parquet files it unions."""

    name: str
    pattern: str


@dataclass(frozen=True, slots=True)
class WarehouseReport:
    """What ``build_warehouse`` created, and which views it skipped for lack of files."""

    views: tuple[str, ...]
    skipped: tuple[ViewSpec, ...]


def _root(data_root: str) -> str:
    """The root as DuckDB should see it: a URL stays a URL, a local path becomes absolute."""
    if "://" in data_root:
        return data_root.rstrip("/")
    return Path(data_root).resolve().as_posix()


def view_specs(data_root: str) -> list[ViewSpec]:
    """Every view the warehouse can have under ``data_root``, whether or not it has files yet."""
    root = _root(data_root)

    def layer(layer_name: str, table: str) -> str:
        return f"{root}/{layer_name}/mspo/{table}/{PARTITION_FOLDER_GLOB}/{table}.parquet"

    specs = [
        ViewSpec(f"raw_{e.name}", f"{root}/{e.raw_key(PARTITION_FOLDER_GLOB)}") for e in ENDPOINTS
    ]
    specs += [
        ViewSpec(f"{layer_name}_{e.name}", layer(layer_name, e.name))
        for layer_name in LAYERS
        for e in ENDPOINTS
    ]
    specs += [
        ViewSpec(e.name, layer("validated", e.name)) for e in ENDPOINTS if e.kind is Kind.REFERENCE
    ]
    specs += [ViewSpec(table, layer("curated", table)) for table in CURATED_TABLES]
    # The capture ledger (lib/ledger.py): on_time / late / missing per day and endpoint.
    specs.append(ViewSpec(ledger.TABLE, layer("curated", ledger.TABLE)))
    return specs


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _filesystem_for(data_root: str) -> AbstractFileSystem | None:
    """gcsfs for a ``gs://`` root, with the IO manager's options: application default
    credentials, or anonymous against ``STORAGE_EMULATOR_HOST`` (so a developer's own Google
    credentials are never sent to an emulator). Importing ``storage`` has already told gcsfs to
    skip the zonal-bucket probe that stalls 60 s per open against emulators."""
    if not data_root.startswith(("gs://", "gcs://")):
        return None
    import gcsfs

    return gcsfs.GCSFileSystem(**storage_options(data_root))


def build_warehouse(
    conn: duckdb.DuckDBPyConnection,
    data_root: str,
    *,
    filesystem: AbstractFileSystem | None = None,
) -> WarehouseReport:
    """Create (or replace) the warehouse views on ``conn`` over the files under ``data_root``.

    ``filesystem`` is an fsspec filesystem for a non-local root; by default a ``gs://`` root
    gets gcsfs with application default credentials (``STORAGE_EMULATOR_HOST`` points it at an
    emulator). The views are persistent when ``conn`` is a database file.
    """
    filesystem = filesystem or _filesystem_for(data_root)
    if filesystem is not None:
        conn.register_filesystem(filesystem)
    created: list[str] = []
    skipped: list[ViewSpec] = []
    for spec in view_specs(data_root):
        pattern = _literal(spec.pattern)
        if not conn.sql(f"SELECT count(*) FROM glob({pattern})").fetchall()[0][0]:
            skipped.append(spec)
            continue
        scan = f"read_parquet({pattern}, union_by_name = true, filename = true)"
        columns = {row[0] for row in conn.sql(f"DESCRIBE SELECT * FROM {scan}").fetchall()}
        excluded = "filename, partition_date" if "partition_date" in columns else "filename"
        conn.execute(
            f"CREATE OR REPLACE VIEW {spec.name} AS "
            "SELECT strptime(regexp_extract(filename, '/(\\d{8})/[^/]+$', 1), '%Y%m%d')::DATE "
            f"AS partition_date, * EXCLUDE ({excluded}) FROM {scan}"
        )
        created.append(spec.name)
    if "smallholders" in created:
        conn.execute(
            "CREATE OR REPLACE VIEW smallholders_latest AS SELECT * FROM smallholders "
            "WHERE partition_date = (SELECT max(partition_date) FROM smallholders)"
        )
        created.append("smallholders_latest")
    history = history_spec(data_root)
    if create_history_views(conn, history):
        created += [history.name, *HISTORY_MACROS]
    else:
        skipped.append(history)
    return WarehouseReport(views=tuple(created), skipped=tuple(skipped))


# Plot history (curated/plot_history, lib/history.py). Its newest partition holds the whole
# history, so the view reads that one file, not the union of every day like the views above.

HISTORY_MACROS = ("smallholders_as_of", "plot_timeline")
"""Table macros over ``plot_history``: the register as of a day, and one plot's versions."""


def history_spec(data_root: str) -> ViewSpec:
    """The ``plot_history`` view and the glob of every stored partition of it."""
    table = "plot_history"
    pattern = f"{_root(data_root)}/curated/mspo/{table}/{PARTITION_FOLDER_GLOB}/{table}.parquet"
    return ViewSpec(table, pattern)


def create_history_views(conn: duckdb.DuckDBPyConnection, spec: ViewSpec) -> bool:
    """``plot_history`` over the newest stored partition, and the macros over it; False (and
    nothing created) when no partition is stored yet.

    The newest file is chosen when a query runs (the ``YYYYMMDD`` folders sort by date, and
    DuckDB prunes the scan to the one file the filter names), so a database file written once
    follows later days like the other views. A version is valid on day D when ``valid_from <=
    D`` and ``replaced_on`` is null or after D (see lib/history.py): on a captured day that is
    exactly that day's ``smallholders``; on a day that was not captured, the register as last
    captured before it. ``smallholders_as_of`` does not sort: the file is in plot order and
    DuckDB keeps it (a sort of 350k wide rows would double the query's time).
    """
    pattern = _literal(spec.pattern)
    if not conn.sql(f"SELECT count(*) FROM glob({pattern})").fetchall()[0][0]:
        return False
    version_columns = ", ".join(c.name for c in VERSION_COLUMNS)
    conn.execute(
        f"CREATE OR REPLACE VIEW {spec.name} AS SELECT * EXCLUDE (filename) "
        f"FROM read_parquet({pattern}, union_by_name = true, filename = true) "
        f"WHERE filename = (SELECT max(file) FROM glob({pattern}))"
    )
    conn.execute(
        "CREATE OR REPLACE MACRO smallholders_as_of(as_of_day) AS TABLE "
        f"SELECT * EXCLUDE ({version_columns}) FROM {spec.name} "
        "WHERE valid_from <= as_of_day::DATE "
        "AND (replaced_on IS NULL OR replaced_on > as_of_day::DATE) AND NOT removed"
    )
    conn.execute(
        "CREATE OR REPLACE MACRO plot_timeline(plot_scheme, plot_id) AS TABLE "
        f"SELECT * FROM {spec.name} "
        "WHERE scheme = plot_scheme AND entity_smallholder_id = plot_id ORDER BY version"
    )
    return True


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
JOIN smallholders AS s USING (partition_date, scheme, entity_smallholder_id)
WHERE c.change_type = 'changed' AND c.column_name = 'cert_status' AND c.new_value = 'EXPIRED'
  AND c.partition_date > (SELECT max(partition_date) FROM smallholders) - INTERVAL 7 DAY
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
