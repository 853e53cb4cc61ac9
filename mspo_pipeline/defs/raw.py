"""The raw layer: one asset per catalogue endpoint, the API's records exactly as it sent them."""

import datetime as dt
import json
import time

import dagster as dg
import polars as pl

from mspo_pipeline.defs.partitions import API_POOL, daily_partitions
from mspo_pipeline.lib import storage
from mspo_pipeline.lib.api import failure_message
from mspo_pipeline.lib.catalog import ENDPOINTS, Endpoint
from mspo_pipeline.lib.days import is_past
from mspo_pipeline.lib.late_capture import CaptureGate, stored_capture
from mspo_pipeline.lib.parquet_io import ParquetUPathIOManager
from mspo_pipeline.lib.records import JSON_TEXT_FIELDS, BadResponseError, read_records
from mspo_pipeline.lib.resources import CaptureSettings, MspoApi
from mspo_pipeline.lib.schemas import table_schema
from mspo_pipeline.lib.ui_metadata import PREVIEW_ROWS, frame_metadata

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
) -> dg.Output[pl.DataFrame | None] | None:
    """Keep a stored snapshot of a day that is over: the API can only offer a later one now."""
    partition = context.partition_key
    if not is_past(partition):
        return None
    path = storage.storage_path(root, ["raw", endpoint.name], partition)
    try:
        provenance = storage.read_provenance(path)
    except FileNotFoundError:
        return None
    # Only the preview's rows: the typed step reads the day whole, once. The row count comes
    # from the footer (the IO manager adds it when it keeps the file).
    head = storage.read_parquet(storage.as_upath(path), rows=PREVIEW_ROWS)
    # Typed as a fresh capture's (bool, int), not the footer's text: the UI plots them.
    capture = stored_capture(provenance, partition)
    context.log.info(
        f"{endpoint.path}: partition {partition} already has a snapshot captured at "
        f"{capture['captured_at']} (late_capture={capture.get('late_capture', 'unknown')}); the "
        "API can only serve a later one now, so the stored snapshot is kept and not re-fetched"
    )
    metadata = _snapshot_metadata(endpoint, head)
    del metadata["dagster/row_count"]  # the head's, not the file's
    return dg.Output(
        None,
        metadata={storage.REUSE_EXISTING: True, "reused_snapshot": True, **capture, **metadata},
    )


def build_raw_asset(endpoint: Endpoint) -> dg.AssetsDefinition:
    """The raw asset of one catalogue row."""

    @dg.asset(
        key=["raw", endpoint.name],
        group_name=RAW_GROUP,
        kinds={"python", "polars", "parquet"},
        partitions_def=daily_partitions,
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
    ) -> dg.Output[pl.DataFrame | None]:
        reused = _reuse_stored(context, endpoint, io_manager.root)
        if reused is not None:
            return reused

        partition = context.partition_key
        started = time.monotonic()
        # Judged on the headers: a refused late capture stops before its body is downloaded.
        gate = CaptureGate(partition, capture_settings.late_policy)
        with mspo_api.fetch(
            endpoint, partition=partition, log=context.log, on_headers=gate
        ) as response:
            timing = gate.timing
            try:
                parsed = read_records(
                    response.body_path,
                    endpoint,
                    url=response.url,
                    status=response.status,
                    partition=partition,
                )
            except BadResponseError as error:
                kept = storage.keep_rejected_body(
                    io_manager.root,
                    endpoint.name,
                    partition,
                    timing.captured_at,
                    response.body_path,
                )
                raise type(error)(
                    f"{error} The response body is kept at {kept} for inspection."
                ) from error
        frame = parsed.frame
        if frame.is_empty():
            raise EmptySnapshotError(
                failure_message(
                    endpoint=endpoint.name,
                    partition=partition,
                    problem=(
                        f"the API returned no records at {endpoint.records_path}, but this "
                        f"register is never empty (~{endpoint.expected_rows:,} records)"
                    ),
                    url=response.url,
                    status=response.status,
                    advice="Nothing was written; any stored snapshot is untouched. Retry later.",
                )
            )
        if parsed.json_text_fields:
            context.log.warning(
                f"{endpoint.path}: partition {partition}: no one column type keeps every value of "
                f"{', '.join(map(repr, parsed.json_text_fields))}, so each value is stored as its "
                "JSON text exactly as sent (strings keep their quotes)"
            )
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
                JSON_TEXT_FIELDS: json.dumps(parsed.json_text_fields),
                **_snapshot_metadata(endpoint, frame),
            },
        )

    return raw_asset


defs = dg.Definitions(assets=[build_raw_asset(endpoint) for endpoint in ENDPOINTS])
