"""The curated layer: geography, smallholders, certification summary and changes, per day.

The assets are thin wrappers around ``lib/curated.py`` (SQL on DuckDB over the validated frames
the IO manager loaded, handed over as Arrow) that add what the UI needs: row and flag counts,
column schemas, previews, and for ``changes`` which partition it compared against.

How ``changes`` finds its baseline: it lists the partitions of ``curated/smallholders`` that
have a file in the store (the IO manager's root) and takes the newest one before its own day.
The store, not the Dagster instance, is asked because the file is what gets read: a fresh
instance over an existing data root (a new deployment, the demo, a test) still finds its
history, and an instance that remembers a partition whose file was deleted cannot send the
asset to a missing file. A missing day is skipped, and the metadata names the day compared with.

How a backfill keeps the chain in order: ``changes`` depends on its own previous day. Dagster's
backfill daemon then runs the days of ``changes`` one after the other, each after its own
``smallholders`` (a self-dependent asset is never launched beside other assets, nor before the
previous day of itself in the same backfill), so every day compares with the day the backfill
just rebuilt. The dependency loads nothing (the baseline is read from the store), so a day
outside the backfill that was never materialised, a gap, does not block it.
"""

from collections.abc import Sequence
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from mspo_pipeline.defs.partitions import daily_partitions, one_run_per_day
from mspo_pipeline.lib import curated, storage
from mspo_pipeline.lib.parquet_io import ParquetUPathIOManager
from mspo_pipeline.lib.ui_metadata import frame_metadata, preview

CURATED_GROUP = "curated"
CURATED_KINDS = {"duckdb", "polars", "parquet"}
GEOGRAPHY_KEY = dg.AssetKey(["curated", "geography"])
SMALLHOLDERS_KEY = dg.AssetKey(["curated", "smallholders"])
SUMMARY_KEY = dg.AssetKey(["curated", "certification_summary"])
CHANGES_KEY = dg.AssetKey(["curated", "changes"])

REFERENCE_TABLES = ("states", "zones", "zone_state", "spocs", "daerah")
NO_BASELINE = "none: first partition"
"""``compared_with`` when no earlier partition of ``curated/smallholders`` is stored."""

COLUMN_DESCRIPTIONS = {
    "partition_date": "The daily partition (Asia/Kuala_Lumpur) the row belongs to.",
    "scheme": "The register: SPOC, OSH or GM (group manager).",
    "zone": "Canonical zone name of zone_id, from this partition's spoc/zones.",
    "state": "Canonical state name of state_id, from this partition's references/states.",
    "daerah": "Canonical district name of daerah_id, from this partition's spoc/daerah.",
    "zone_reported": "The zone name the row itself carries.",
    "state_reported": "The state name the row itself carries.",
    "daerah_reported": "The district name the row itself carries.",
    "gps_usable": "None of the GPS flags is set.",
    "zone_mismatch": "The row's zone name is not the reference name of its zone_id.",
    "state_mismatch": "The row's state name is not the reference name of its state_id.",
    "state_not_in_zone": "spoc/zone-state does not pair the row's state_id with its zone_id.",
    "unknown_spoc_code": "spoc/spocs does not list the row's spoc_code in its zone.",
    "unknown_daerah": "spoc/daerah does not list the row's daerah_id in its state.",
    "compared_with": "The partition this one was compared against (the newest stored before it).",
    "change_type": "new, removed (absent or newly deleted) or changed.",
    "column_name": "The column that changed (for new/removed: 'deleted' when by soft delete).",
}


def _common(key: dg.AssetKey, description: str) -> dict[str, Any]:
    return {
        "key": key,
        "group_name": CURATED_GROUP,
        "kinds": CURATED_KINDS,
        "partitions_def": daily_partitions,
        "backfill_policy": one_run_per_day,
        "description": description,
    }


@dg.asset(
    **_common(
        GEOGRAPHY_KEY,
        "States, zones, the zone-state pairing, SPOC codes and districts of one partition in "
        "one table: one row per (zone, state) pair, with unpaired zones and states kept.",
    ),
    ins={name: dg.AssetIn(key=["validated", name]) for name in REFERENCE_TABLES},
)
def geography(
    duckdb: DuckDBResource,
    states: pl.DataFrame,
    zones: pl.DataFrame,
    zone_state: pl.DataFrame,
    spocs: pl.DataFrame,
    daerah: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    with duckdb.get_connection() as conn:
        frame = curated.geography(
            conn, states=states, zones=zones, zone_state=zone_state, spocs=spocs, daerah=daerah
        )
    return dg.Output(
        frame,
        metadata={
            **frame_metadata(frame, COLUMN_DESCRIPTIONS),
            "zones": frame.get_column("zone_id").drop_nulls().n_unique(),
            "states": frame.get_column("state_id").drop_nulls().n_unique(),
        },
    )


def smallholders_metadata(frame: pl.DataFrame) -> dict[str, Any]:
    """Plots per scheme and how many rows raise each flag: the numbers the UI plots by day."""
    flags = [c for c in frame.columns if c.startswith("flag_")] + list(curated.REFERENCE_FLAGS)
    return {
        **frame_metadata(frame, COLUMN_DESCRIPTIONS),
        **{
            f"plots_{scheme.lower()}": frame.filter(pl.col("scheme") == scheme).height
            for scheme in curated.SCHEMES
        },
        "plots_deleted": int(frame.get_column("deleted").sum()),
        "plots_gps_usable": int(frame.get_column("gps_usable").sum()),
        **{flag: int(frame.get_column(flag).sum()) for flag in flags},
    }


@dg.asset(
    **_common(
        SMALLHOLDERS_KEY,
        "Validated SPOC, OSH and group-manager plots in one table (`scheme`), with canonical "
        "zone/state/district names from this partition's references, the row's own names as "
        "`*_reported`, the validated soft flags, and reference flags `zone_mismatch`, "
        "`state_mismatch`, `state_not_in_zone`, `unknown_spoc_code`, `unknown_daerah`.",
    ),
    ins={
        **{
            scheme.lower(): dg.AssetIn(key=["validated", table])
            for scheme, table in curated.REGISTER_TABLES.items()
        },
        "geography": dg.AssetIn(key=GEOGRAPHY_KEY),
    },
)
def smallholders(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    spoc: pl.DataFrame,
    osh: pl.DataFrame,
    gm: pl.DataFrame,
    geography: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    with duckdb.get_connection() as conn:
        frame = curated.smallholders(
            conn, spoc=spoc, osh=osh, gm=gm, geography=geography, partition=context.partition_key
        )
    return dg.Output(frame, metadata=smallholders_metadata(frame))


@dg.asset(
    **_common(
        SUMMARY_KEY,
        "Plots, MPOB numbers, planted and certified hectares and GPS usability per partition, "
        "state, zone, scheme and certificate status (deleted plots left out).",
    ),
    ins={"smallholders": dg.AssetIn(key=SMALLHOLDERS_KEY)},
)
def certification_summary(
    duckdb: DuckDBResource, smallholders: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    with duckdb.get_connection() as conn:
        frame = curated.certification_summary(conn, smallholders)
    active = frame.filter(pl.col("cert_status") == "ACTIVE")
    return dg.Output(
        frame,
        metadata={
            **frame_metadata(frame, COLUMN_DESCRIPTIONS),
            "plots": int(frame.get_column("plots").sum()),
            "certified_ha": float(frame.get_column("certified_ha").sum()),
            "active_certified_ha": float(active.get_column("certified_ha").sum()),
        },
    )


def stored_partitions(root: str, asset_key: Sequence[str]) -> list[str]:
    """Partition keys of ``[<layer>, <table>]`` that have a file under ``root``, in one listing."""
    layer, table = asset_key
    folder = storage.root_upath(root) / layer / "mspo" / table
    keys = []
    for path in folder.glob(f"*/{table}.parquet"):
        name = path.parent.name
        if len(name) == 8 and name.isdigit():
            keys.append(f"{name[:4]}-{name[4:6]}-{name[6:]}")
    return sorted(keys)


def changes_metadata(frame: pl.DataFrame, compared_with: str | None) -> dict[str, Any]:
    """Counts by change type and by changed column, and the certificate status transitions."""
    changed = frame.filter(pl.col("change_type") == "changed")
    transitions = (
        changed.filter(pl.col("column_name") == "cert_status")
        .group_by(old_status=pl.col("old_value"), new_status=pl.col("new_value"))
        .len("plots")
        .sort("plots", "old_status", "new_status", descending=[True, False, False])
    )
    columns = changed.get_column("column_name").value_counts(sort=True)
    return {
        **frame_metadata(frame, COLUMN_DESCRIPTIONS),
        "compared_with": compared_with or NO_BASELINE,
        "new_plots": frame.filter(pl.col("change_type") == "new").height,
        "removed_plots": frame.filter(pl.col("change_type") == "removed").height,
        "changed_plots": changed.select(curated.KEY).unique().height,
        "changed_values": changed.height,
        "changed_columns": preview(columns, rows=columns.height) if columns.height else "none",
        "cert_status_transitions": (
            preview(transitions, rows=transitions.height) if transitions.height else "none"
        ),
    }


def _days_apart(earlier: str, later: str) -> int:
    return (curated.partition_date(later) - curated.partition_date(earlier)).days


@dg.asset(
    **_common(
        CHANGES_KEY,
        "What changed per plot since the newest earlier stored partition of "
        "curated/smallholders: `new`, `removed` (absent or newly deleted) and `changed` (one "
        "row per changed column with old and new values). Empty for the first partition.",
    ),
    ins={"smallholders": dg.AssetIn(key=SMALLHOLDERS_KEY)},
    deps=[
        # Orders a backfill day after day; nothing is loaded through it (see module docstring).
        dg.AssetDep(
            CHANGES_KEY,
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True
            ),
        )
    ],
)
def changes(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    io_manager: dg.ResourceParam[ParquetUPathIOManager],
    smallholders: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    partition = context.partition_key
    stored = stored_partitions(io_manager.root, SMALLHOLDERS_KEY.path)
    previous_key = curated.previous_partition(partition, stored)
    previous = None
    if previous_key is None:
        context.log.info(
            f"curated/smallholders has no stored partition before {partition}: this partition "
            "is the baseline and its changes are empty"
        )
    else:
        if _days_apart(previous_key, partition) > 1:
            context.log.warning(
                f"curated/smallholders has no partition between {previous_key} and {partition}: "
                f"changes for {partition} compare with {previous_key} and cover every day since"
            )
        path = storage.storage_path(io_manager.root, SMALLHOLDERS_KEY.path, previous_key)
        previous = storage.read_parquet(storage.as_upath(path))
    with duckdb.get_connection() as conn:
        frame = curated.changes(
            conn,
            current=smallholders,
            previous=previous,
            current_partition=partition,
            previous_partition=previous_key,
        )
    return dg.Output(frame, metadata=changes_metadata(frame, previous_key))


defs = dg.Definitions(
    assets=[geography, smallholders, certification_summary, changes],
    # DuckDB only computes here (every table lives in the Parquet store), so it stays in memory.
    resources={"duckdb": DuckDBResource(database=":memory:")},
)
