"""The curated layer: geography, smallholders, certification summary, changes and plot history.

The assets are thin wrappers around ``lib/curated.py`` (SQL on DuckDB over the validated frames
the IO manager loaded, handed over as Arrow) and ``lib/history.py`` (polars) that add what the UI
needs: row and flag counts, column schemas, previews, and for ``changes`` which partition it
compared against.

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

``plot_history`` is chained the same way: day D is the history of the newest stored day before
it with D's ``smallholders`` folded in (``lib/history.py``), so a backfill in date order from the
first day rebuilds it. Unlike ``changes``, every later day builds on it: after a day is
rebuilt or filled in, every later day of ``plot_history`` must be rebuilt too (in order), and the
asset logs which.

Which day's register the rows hold (``snapshot_date``, ``late_capture``) is read from the raw
footers of each scheme's register for the same partition: the raw snapshot is the one source
that knows when the API answered.
"""

import datetime as dt
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from mspo_pipeline.defs.automation import rederive_when_an_earlier_day_changes
from mspo_pipeline.defs.partitions import GAP_LOOKBACK_DAYS, daily_partitions, earlier_days
from mspo_pipeline.lib import curated, history, layout, storage
from mspo_pipeline.lib.days import is_past, partition_date
from mspo_pipeline.lib.parquet_io import COLUMNS, ParquetUPathIOManager
from mspo_pipeline.lib.provenance import SOURCES, StoredFrame, derived_sources, lineage_metadata
from mspo_pipeline.lib.tables import PLOT_HISTORY
from mspo_pipeline.lib.ui_metadata import (
    counts,
    curated_columns,
    curated_metadata,
    flag_counts,
    preview,
)

CURATED_GROUP = "curated"
CURATED_KINDS = frozenset({"duckdb", "polars", "parquet"})
GEOGRAPHY_KEY = dg.AssetKey(["curated", "geography"])
SMALLHOLDERS_KEY = dg.AssetKey(["curated", "smallholders"])
SUMMARY_KEY = dg.AssetKey(["curated", "certification_summary"])
CHANGES_KEY = dg.AssetKey(["curated", "changes"])
HISTORY_KEY = dg.AssetKey(["curated", "plot_history"])
COMPARED_SOURCES = "compared_sources"
"""Footer key of ``changes``: the raw snapshots behind the day it compared with."""

REFERENCE_TABLES = ("states", "zones", "zone_state", "spocs", "daerah")
NO_BASELINE = "none: first partition"
"""``compared_with`` when no earlier partition of ``curated/smallholders`` is stored."""


def _common(
    key: dg.AssetKey, description: str, kinds: AbstractSet[str] = CURATED_KINDS
) -> dict[str, Any]:
    return {
        "key": key,
        "group_name": CURATED_GROUP,
        "kinds": kinds,
        "partitions_def": daily_partitions,
        "description": description,
        "metadata": curated_columns(key.path[-1]),
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
    states: StoredFrame,
    zones: StoredFrame,
    zone_state: StoredFrame,
    spocs: StoredFrame,
    daerah: StoredFrame,
) -> dg.Output[pl.DataFrame]:
    with duckdb.get_connection() as conn:
        frame = curated.geography(
            conn,
            states=states.frame,
            zones=zones.frame,
            zone_state=zone_state.frame,
            spocs=spocs.frame,
            daerah=daerah.frame,
        )
    return dg.Output(
        frame,
        metadata={
            **lineage_metadata(derived_sources(states, zones, zone_state, spocs, daerah)),
            **curated_metadata("geography", frame),
            "zones": frame.get_column("zone_id").drop_nulls().n_unique(),
            "states": frame.get_column("state_id").drop_nulls().n_unique(),
        },
    )


def register_captures(
    root: str, partition: str, log: dg.DagsterLogManager
) -> dict[str, curated.Capture]:
    """Per scheme, which day's register the raw snapshot of ``partition`` holds (its footer).

    A missing raw file (deleted by a retention rule, say) gives an unknown capture and a
    warning, not a failure: the curated rows then say null instead of guessing.
    """
    captures = {}
    for scheme, table in curated.REGISTER_TABLES.items():
        path = storage.storage_path(root, ["raw", table], partition)
        try:
            provenance = storage.read_provenance(path)
        except FileNotFoundError:
            log.warning(
                f"raw/{table} has no file for {partition} ({path}): snapshot_date and "
                f"late_capture of the {scheme} rows are unknown (null)"
            )
            provenance = {}
        captures[scheme] = curated.Capture.from_provenance(provenance, partition)
    return captures


def _with_day_captures(
    frame: pl.DataFrame, root: str, partition: str, log: dg.DagsterLogManager
) -> pl.DataFrame:
    """A stored ``smallholders`` frame with its capture columns, added from the raw footers if
    it was written before they existed."""
    if all(column in frame.columns for column in curated.CAPTURE_COLUMNS):
        return frame
    captures = register_captures(root, partition, log)
    return curated.with_captures(frame, captures, partition=partition)


def smallholders_metadata(frame: pl.DataFrame) -> dict[str, Any]:
    """Plots per scheme and how many rows raise each flag: the numbers the UI plots by day."""
    return {
        **curated_metadata("smallholders", frame),
        **counts(
            frame,
            {
                **{f"plots_{s.lower()}": pl.col("scheme") == s for s in curated.SCHEMES},
                "plots_deleted": pl.col("deleted"),
                "plots_gps_usable": pl.col("gps_usable"),
            },
        ),
        **flag_counts("smallholders", frame),
    }


@dg.asset(
    **_common(
        SMALLHOLDERS_KEY,
        "Validated SPOC, OSH and group-manager plots in one table (`scheme`), with canonical "
        "zone/state/district names from this partition's references, the row's own names as "
        "`*_reported`, the validated soft flags, and reference flags `zone_mismatch`, "
        "`state_mismatch`, `state_not_in_zone`, `unknown_spoc_code`, `unknown_daerah`. "
        "`snapshot_date`/`late_capture` say which day's register each scheme's rows are.",
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
    io_manager: dg.ResourceParam[ParquetUPathIOManager],
    spoc: StoredFrame,
    osh: StoredFrame,
    gm: StoredFrame,
    geography: StoredFrame,
) -> dg.Output[pl.DataFrame]:
    partition = context.partition_key
    captures = register_captures(io_manager.root, partition, context.log)
    with duckdb.get_connection() as conn:
        frame = curated.smallholders(
            conn,
            spoc=spoc.frame,
            osh=osh.frame,
            gm=gm.frame,
            geography=geography.frame,
            partition=partition,
            captures=captures,
        )
    lineage = lineage_metadata(derived_sources(spoc, osh, gm, geography))
    return dg.Output(frame, metadata={**lineage, **smallholders_metadata(frame)})


@dg.asset(
    **_common(
        SUMMARY_KEY,
        "Plots, MPOB numbers, planted and certified hectares and GPS usability per partition, "
        "state, zone, scheme and certificate status (deleted plots left out).",
    ),
    ins={"smallholders": dg.AssetIn(key=SMALLHOLDERS_KEY)},
)
def certification_summary(
    duckdb: DuckDBResource, smallholders: StoredFrame
) -> dg.Output[pl.DataFrame]:
    with duckdb.get_connection() as conn:
        frame = curated.certification_summary(conn, smallholders.frame)
    active = frame.filter(pl.col("cert_status") == "ACTIVE")
    return dg.Output(
        frame,
        metadata={
            **lineage_metadata(derived_sources(smallholders)),
            **curated_metadata("certification_summary", frame),
            "plots": int(frame.get_column("plots").sum()),
            "certified_ha": float(frame.get_column("certified_ha").sum()),
            "active_certified_ha": float(active.get_column("certified_ha").sum()),
        },
    )


def stored_partitions(root: str, asset_key: Sequence[str]) -> list[str]:
    """Partition keys of ``[<layer>, <table>]`` that have a file under ``root``, in one listing."""
    return [day.isoformat() for day in layout.stored_days(storage.root_upath(root), asset_key)]


def _is_stored(root: str, asset_key: Sequence[str], partition: str) -> bool:
    return storage.as_upath(storage.storage_path(root, asset_key, partition)).exists()


def _days_before(partition: str, days: int) -> list[str]:
    """The ``days`` partition keys before ``partition``, newest first."""
    day = partition_date(partition)
    return [(day - dt.timedelta(days=n)).isoformat() for n in range(1, days + 1)]


def previous_stored(root: str, asset_key: Sequence[str], partition: str) -> str | None:
    """The newest stored partition of ``asset_key`` before ``partition``.

    The days before it are looked at one by one, newest first, for ``GAP_LOOKBACK_DAYS``; only
    a longer gap lists the store. A listing grows with the days kept (0.06 s at 1,095 days on a
    folder; a request per thousand objects on GCS), and ``changes`` and ``plot_history`` made
    three in every daily run; a day's file is one look, and on most days yesterday's is there.
    """
    for day in _days_before(partition, GAP_LOOKBACK_DAYS):
        if _is_stored(root, asset_key, day):
            return day
    return curated.previous_partition(partition, stored_partitions(root, asset_key))


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
        **curated_metadata("changes", frame),
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
    return (partition_date(later) - partition_date(earlier)).days


@dg.asset(
    **_common(
        CHANGES_KEY,
        "What changed per plot since the newest earlier stored partition of "
        "curated/smallholders: `new`, `removed` (absent or newly deleted) and `changed` (one "
        "row per changed column with old and new values). Empty for the first partition. "
        "`snapshot_date`/`late_capture` and `compared_snapshot_date`/`compared_late_capture` "
        "say which day's register each end of the comparison is.",
    ),
    ins={
        "smallholders": dg.AssetIn(
            key=SMALLHOLDERS_KEY, metadata={COLUMNS: list(curated.CHANGES_READS)}
        )
    },
    deps=[
        # Orders a backfill day after day and marks a day stale when a day before it is filled
        # in; nothing is loaded through it (see module docstring).
        dg.AssetDep(CHANGES_KEY, partition_mapping=earlier_days)
    ],
    automation_condition=rederive_when_an_earlier_day_changes,
)
def changes(
    context: dg.AssetExecutionContext,
    duckdb: DuckDBResource,
    io_manager: dg.ResourceParam[ParquetUPathIOManager],
    smallholders: StoredFrame,
) -> dg.Output[pl.DataFrame]:
    partition = context.partition_key
    lineage = lineage_metadata(derived_sources(smallholders))
    previous_key = previous_stored(io_manager.root, SMALLHOLDERS_KEY.path, partition)
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
        compared = StoredFrame(
            *storage.read_stored(
                storage.as_upath(path), digest=False, columns=curated.CHANGES_READS
            )[:2]
        )
        previous = _with_day_captures(compared.frame, io_manager.root, previous_key, context.log)
        lineage[COMPARED_SOURCES] = str(lineage_metadata(derived_sources(compared))[SOURCES])
    current = _with_day_captures(smallholders.frame, io_manager.root, partition, context.log)
    with duckdb.get_connection() as conn:
        frame = curated.changes(
            conn,
            current=current,
            previous=previous,
            current_partition=partition,
            previous_partition=previous_key,
        )
    return dg.Output(frame, metadata={**lineage, **changes_metadata(frame, previous_key)})


NO_HISTORY = "none: first partition"
"""``history_of`` when no earlier partition of ``curated/plot_history`` is stored."""


def history_metadata(frame: pl.DataFrame, partition: str, previous: str | None) -> dict[str, Any]:
    """What the day did to the history: versions opened, plots removed, and the history's size."""
    opened = pl.col("valid_from") == partition_date(partition)
    current, removed = pl.col("replaced_on").is_null(), pl.col("removed")
    return {
        **curated_metadata(PLOT_HISTORY, frame),
        "history_of": previous or NO_HISTORY,
        **counts(
            frame,
            {
                "plots": current,
                "plots_current": current & ~removed,
                "versions_opened": opened & ~removed,
                "plots_removed": opened & removed,
            },
        ),
    }


def _history_chain(
    root: str, partition: str, log: dg.DagsterLogManager
) -> tuple[str | None, list[str]]:
    """The stored history day D builds on, and the stored later days it leaves out of date.

    Raises when a stored ``smallholders`` day between the two is missing from the history: that
    day's plot_history was never built (or failed), and skipping it would make the history say
    nothing happened on a day that was captured.
    """
    previous = previous_stored(root, HISTORY_KEY.path, partition)
    if previous is not None and _days_apart(previous, partition) <= GAP_LOOKBACK_DAYS:
        between = _days_before(partition, _days_apart(previous, partition) - 1)
        skipped = sorted(p for p in between if _is_stored(root, SMALLHOLDERS_KEY.path, p))
    else:
        days = stored_partitions(root, SMALLHOLDERS_KEY.path)
        skipped = [p for p in days if (previous is None or p > previous) and p < partition]
    if skipped:
        raise dg.Failure(
            f"curated/plot_history for {partition}: curated/smallholders has stored day(s) "
            f"{', '.join(skipped)} after the newest stored plot_history before it "
            f"({previous or 'none'}), so the history would leave them out. Materialise "
            f"curated/plot_history for {skipped[0]} through {partition} in date order (a "
            "backfill of that range)."
        )
    if previous is not None and _days_apart(previous, partition) > 1:
        log.warning(
            f"no partition was captured between {previous} and {partition}: versions that "
            f"ended in between have valid_to {previous} and replaced_on {partition}"
        )
    # Today's partition is the newest there can be: only a re-derived past day has later ones.
    later = stored_partitions(root, HISTORY_KEY.path) if is_past(partition) else []
    return previous, [p for p in later if p > partition]


@dg.asset(
    **_common(
        HISTORY_KEY,
        "One row per plot and version: a version is a run of captured days over which the "
        "plot's columns in curated/smallholders did not change. `valid_from`/`valid_to` "
        "(first and last partition day seen, inclusive; `valid_to` null while current), "
        "`replaced_on` (the day the next version or the removal was first seen), "
        "`valid_from_late`/`valid_to_late` (that day was a late capture), `removed` (the plot "
        "left the register). Built from the previous stored day's history and this day's "
        "smallholders; the newest partition holds the whole history, sorted by plot.",
        kinds={"polars", "parquet"},  # merged in polars: no DuckDB here
    ),
    ins={"smallholders": dg.AssetIn(key=SMALLHOLDERS_KEY)},
    deps=[
        # Orders a backfill day after day and marks a day stale when a day before it is filled
        # in; the history is read from the store (module docstring).
        dg.AssetDep(HISTORY_KEY, partition_mapping=earlier_days)
    ],
    automation_condition=rederive_when_an_earlier_day_changes,
)
def plot_history(
    context: dg.AssetExecutionContext,
    io_manager: dg.ResourceParam[ParquetUPathIOManager],
    smallholders: StoredFrame,
) -> dg.Output[pl.DataFrame]:
    partition, root = context.partition_key, io_manager.root
    previous_key, later = _history_chain(root, partition, context.log)
    previous: pl.DataFrame | None = None
    previous_late: Mapping[str, bool | None] = {}
    if previous_key is None:
        context.log.info(f"no stored plot_history before {partition}: the history starts here")
    else:
        path = storage.storage_path(root, HISTORY_KEY.path, previous_key)
        previous = storage.read_parquet(storage.as_upath(path))
        previous_late = {
            scheme: capture.late_capture
            for scheme, capture in register_captures(root, previous_key, context.log).items()
        }
    current = _with_day_captures(smallholders.frame, root, partition, context.log)
    frame = history.merge_history(
        history=previous,
        history_partition=previous_key,
        history_late=previous_late,
        smallholders=current,
        partition=partition,
    )
    if later:
        context.log.warning(
            f"curated/plot_history has later stored day(s) {', '.join(later)} built without "
            f"this one: materialise them again in date order so the newest holds {partition}"
        )
    lineage = lineage_metadata(derived_sources(smallholders))
    return dg.Output(
        frame, metadata={**lineage, **history_metadata(frame, partition, previous_key)}
    )


defs = dg.Definitions(
    assets=[geography, smallholders, certification_summary, changes, plot_history],
    # DuckDB only computes here (every table lives in the Parquet store), so it stays in memory.
    resources={"duckdb": DuckDBResource(database=":memory:")},
)
