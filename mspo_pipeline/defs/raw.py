"""The raw layer: one asset per catalogue endpoint, the API's records exactly as it sent them."""

import datetime as dt
import time

import dagster as dg
import polars as pl

from mspo_pipeline.defs.partitions import API_POOL, daily_partitions, one_run_per_day
from mspo_pipeline.lib import storage
from mspo_pipeline.lib.capture import (
    CaptureTiming,
    check_late_policy,
    is_past,
    partition_date,
    server_time,
)
from mspo_pipeline.lib.catalog import ENDPOINTS, Endpoint
from mspo_pipeline.lib.drift import schema_drift
from mspo_pipeline.lib.parquet_io import ParquetUPathIOManager
from mspo_pipeline.lib.records import BadResponseError, read_records
from mspo_pipeline.lib.resources import CaptureSettings, MspoApi
from mspo_pipeline.lib.schemas import table_schema
from mspo_pipeline.lib.ui_metadata import frame_metadata

RAW_GROUP = "raw"

CAPTURE_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=30), warn_window=dt.timedelta(hours=25)
)
"""Captured daily at 06:00: over 25 h old, this morning's run is late; over 30 h, missing."""


class EmptySnapshotError(BadResponseError):
    """The API answered with no records for a register that is never empty."""


def _snapshot_metadata(endpoint: Endpoint, frame: pl.DataFrame) -> dict:
    """Row count, column schema with the docs' field descriptions, and preview."""
    return frame_metadata(frame, table_schema(endpoint.name).raw_descriptions)


def _reuse_stored(
    context: dg.AssetExecutionContext, endpoint: Endpoint, root: str
) -> dg.Output[pl.DataFrame] | None:
    """Keep a stored snapshot of a day that is over: the API can only offer a later one now."""
    partition = context.partition_key
    if not is_past(partition):
        return None
    path = storage.storage_path(root, ["raw", endpoint.name], partition)
    try:
        provenance = storage.read_provenance(path)
    except FileNotFoundError:
        return None
    frame = storage.read_parquet(storage.as_upath(path))
    late = provenance.get("late_capture", "unknown")
    context.log.info(
        f"{endpoint.path}: partition {partition} already has a snapshot captured at "
        f"{provenance.get('captured_at', 'an unknown time')} (late_capture={late}); the API "
        "can only serve a later one now, so the stored snapshot is kept and not re-fetched"
    )
    return dg.Output(
        frame,
        metadata={
            storage.REUSE_EXISTING: True,
            "reused_snapshot": True,
            "captured_at": provenance.get("captured_at", "unknown"),
            "late_capture": late,
            "source_url": provenance.get("source_url", "unknown"),
            **_snapshot_metadata(endpoint, frame),
        },
    )


def build_raw_asset(endpoint: Endpoint) -> dg.AssetsDefinition:
    """The raw asset of one catalogue row."""

    @dg.asset(
        key=["raw", endpoint.name],
        group_name=RAW_GROUP,
        kinds={"python", "polars", "parquet"},
        partitions_def=daily_partitions,
        backfill_policy=one_run_per_day,
        pool=API_POOL,
        freshness_policy=CAPTURE_FRESHNESS,
        description=(
            f"{endpoint.description} Every record of `GET /api/{endpoint.path}` as the API "
            f"sent it (records at `{endpoint.records_path}`): original field names and JSON "
            "types, new fields included. Nothing is typed here."
        ),
        metadata={
            "mspo/endpoint": endpoint.path,
            "mspo/records_at": endpoint.records_path,
            "mspo/expected_rows": endpoint.expected_rows,
            "mspo/documented": endpoint.documented,
        },
    )
    def raw_asset(
        context: dg.AssetExecutionContext,
        mspo_api: MspoApi,
        io_manager: dg.ResourceParam[ParquetUPathIOManager],
        capture_settings: CaptureSettings,
    ) -> dg.Output[pl.DataFrame]:
        reused = _reuse_stored(context, endpoint, io_manager.root)
        if reused is not None:
            return reused

        partition = context.partition_key
        started = time.monotonic()
        with mspo_api.fetch(endpoint, log=context.log) as response:
            timing = CaptureTiming(
                partition_date(partition),
                server_time(response.headers.get("Date"), fallback=dt.datetime.now(dt.UTC)),
            )
            check_late_policy(timing, capture_settings.late_policy, endpoint_path=endpoint.path)
            frame = read_records(
                response.body_path,
                endpoint,
                url=response.url,
                status=response.status,
                partition=partition,
            )
        if frame.is_empty():
            raise EmptySnapshotError(
                f"endpoint {endpoint.name!r} (partition {partition}): the API returned no records "
                f"at {endpoint.records_path} from {response.url} (HTTP {response.status}), but "
                f"this register is never empty (~{endpoint.expected_rows:,} records). Nothing was "
                "written; any stored snapshot is untouched. Retry later."
            )
        drift = schema_drift(frame, endpoint.name)
        if drift.has_drift:
            context.log.warning(f"{drift.message}; the raw snapshot keeps every field as sent")
        if timing.late:
            context.log.warning(
                f"{endpoint.path}: late capture: partition {partition} is filled with the "
                f"register of {timing.snapshot_date} ({timing.lag_days} day(s) later)"
            )
        return dg.Output(
            frame,
            metadata={
                "source_url": response.url,
                "http_status": response.status,
                "captured_at": timing.captured_at.isoformat(timespec="seconds"),
                "snapshot_date": timing.snapshot_date.isoformat(),
                "late_capture": timing.late,
                "lag_days": timing.lag_days,
                "response_bytes": response.bytes_received,
                "attempts": response.attempts,
                "duration_s": round(time.monotonic() - started, 3),
                "new_fields": ", ".join(field.name for field in drift.new_fields) or "none",
                "missing_fields": ", ".join(drift.missing_fields) or "none",
                **_snapshot_metadata(endpoint, frame),
            },
        )

    return raw_asset


defs = dg.Definitions(assets=[build_raw_asset(endpoint) for endpoint in ENDPOINTS])
