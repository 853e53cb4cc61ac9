"""The capture ledger as an asset: ``curated/captures``, one row per endpoint for each day.

The rows come from ``lib/ledger.py`` (the stored raw files and their footers), so the asset can
be re-materialised for any day, on any instance, without calling the API.

How a day whose capture failed still gets its ``missing`` rows: the ledger depends on every raw
asset (lineage, and so that in the daily run it reads the files only after each capture has
finished). In Dagster, a step whose upstream step failed in the same run is skipped, so the
ledger step does not run on such a day. The run-failure sensor below then launches
``mspo_captures`` (the ledger alone) for the failed run's day; that run has no raw step to wait
for, reads what is stored and records the failed endpoints as ``missing``. Because the ledger is
computed from storage, a later successful retry or backfill simply overwrites it with the new
truth, whichever run finishes last. A day no run ever touched has no ledger file at all:
``mspo status`` reads the raw footers itself and shows it as missing.
"""

from typing import Any

import dagster as dg
import polars as pl

from mspo_pipeline.defs.curated import CURATED_GROUP
from mspo_pipeline.defs.partitions import daily_partitions
from mspo_pipeline.defs.warehouse import MANIFEST_KEY
from mspo_pipeline.lib import ledger
from mspo_pipeline.lib.catalog import ENDPOINTS
from mspo_pipeline.lib.days import partition_date
from mspo_pipeline.lib.parquet_io import ParquetUPathIOManager
from mspo_pipeline.lib.provenance import lineage_metadata
from mspo_pipeline.lib.ui_metadata import curated_columns, curated_metadata, preview

CAPTURES_KEY = dg.AssetKey(["curated", ledger.TABLE])
RAW_KEYS = tuple(dg.AssetKey(["raw", endpoint.name]) for endpoint in ENDPOINTS)
PREVIEW_COLUMNS = ("endpoint", "status", "snapshot_date", "lag_days", "rows", "captured_at")
PARTITION_TAG = "dagster/partition"


def captures_metadata(entries: list[ledger.Entry], frame: pl.DataFrame) -> dict[str, Any]:
    """Counts per status as plain ints (the UI plots them over partitions) and every row."""
    return {
        **lineage_metadata(ledger.sources(entries)),
        **curated_metadata(ledger.TABLE, frame),
        **{status.value: n for status, n in ledger.counts(entries).items()},
        "preview": preview(frame.select(PREVIEW_COLUMNS), rows=frame.height),
    }


@dg.asset(
    key=CAPTURES_KEY,
    group_name=CURATED_GROUP,
    kinds={"python", "polars", "parquet"},
    partitions_def=daily_partitions,
    deps=list(RAW_KEYS),
    description=(
        "The capture ledger: for each endpoint, whether this day's raw snapshot is `on_time`, "
        "`late` (a later register, stored by a backfill) or `missing`, with its snapshot date, "
        "capture time, lag, rows, response bytes and the raw file's SHA-256. Read from the "
        "stored raw files and footers; re-materialising it never calls the API."
    ),
    metadata=curated_columns(ledger.TABLE),
)
def captures(
    context: dg.AssetExecutionContext, io_manager: dg.ResourceParam[ParquetUPathIOManager]
) -> dg.Output[pl.DataFrame]:
    entries = ledger.read_entries(io_manager.root, [partition_date(context.partition_key)])
    frame = ledger.frame(entries)
    missing = [e.endpoint for e in entries if e.status is ledger.Status.MISSING]
    if missing:
        context.log.warning(
            f"{context.partition_key}: no raw snapshot stored for {', '.join(missing)}"
        )
    return dg.Output(frame, metadata=captures_metadata(entries, frame))


mspo_captures = dg.define_asset_job(
    name="mspo_captures",
    selection=[CAPTURES_KEY, MANIFEST_KEY],
    description=(
        "Rebuild the capture ledger of a day from what is stored (never calls the API), then "
        "the store's manifest."
    ),
)


def planned_assets(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets a run set out to materialise, from its own event log (every run records them
    as it starts, whatever launched it: the schedule, a backfill, the UI, a test)."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    return {
        event.asset_key
        for record in records
        if (event := record.event_log_entry.dagster_event) is not None
        and event.asset_key is not None
    }


def ledger_request(run: dg.DagsterRun, planned: set[dg.AssetKey]) -> dg.RunRequest | dg.SkipReason:
    """The ledger run a failed run calls for: its day, if it set out to capture and to record it.

    Skipped: runs without a single partition (nothing to name), and runs that planned no raw
    asset, or no ledger (their failure left the ledger as true as it was; a failed ledger-only
    run in particular must not ask for itself again). The failed run's id is the run key, so each
    failure asks for one ledger run however often the sensor looks.
    """
    partition = run.tags.get(PARTITION_TAG)
    if partition is None:
        return dg.SkipReason(f"run {run.run_id} has no single partition; no day to record")
    if CAPTURES_KEY not in planned or not planned & set(RAW_KEYS):
        return dg.SkipReason(
            f"run {run.run_id} did not plan both a raw capture and the ledger; nothing to record"
        )
    return dg.RunRequest(run_key=run.run_id, partition_key=partition)


@dg.run_failure_sensor(
    name="mspo_captures_after_failure",
    request_job=mspo_captures,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "When a run of this code location fails, rebuild the capture ledger of its day: the "
        "failed run skipped the ledger step, and the day's missing endpoints must still show."
    ),
)
def captures_after_failure(context: dg.RunFailureSensorContext) -> dg.RunRequest | dg.SkipReason:
    run = context.dagster_run
    return ledger_request(run, planned_assets(context.instance, run.run_id))


defs = dg.Definitions(assets=[captures], jobs=[mspo_captures], sensors=[captures_after_failure])
