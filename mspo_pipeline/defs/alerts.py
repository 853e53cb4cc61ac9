"""Three sensors that tell a person when a day needs attention (README: Alerts).

- ``mspo_alert_run_failed``: a run failed; one alert per partition, job, failed steps and error.
- ``mspo_alert_check_error``: an asset check failed at ERROR; one per asset, check and partition.
- ``mspo_alert_capture_missing``: past ``MSPO_CAPTURE_DEADLINE`` (07:00 in Malaysia), today's
  partition of some raw asset is still not materialised; one per day.

They run in the user-code server, so that is where the ``MSPO_ALERT_*`` variables belong. With
none set, every sensor skips with the reason; a bad setting fails the tick with the variable's
name. The first two follow Dagster's run-status events (a public, cursor-paged query that works
on SQLite and PostgreSQL alike) from the first tick with alerts on; the cursor also keeps what
each sink was sent, so a re-evaluation or a retry that fails the same way sends nothing again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import dagster as dg
from dagster import DagsterEventType

from mspo_pipeline.lib.alerts import (
    ALERTS_OFF,
    CAPTURE_MISSING_CAUSE,
    DEADLINE_ENV,
    INTERVAL_ENV,
    Alert,
    AlertKind,
    Delivery,
    SentLog,
    Sink,
    alert_key,
    capture_deadline,
    capture_missing_alert,
    check_error_alert,
    configured_sinks,
    deadline_day,
    run_failed_alert,
    sensor_interval,
)
from mspo_pipeline.lib.catalog import ENDPOINTS

RUN_FAILED_SENSOR = "mspo_alert_run_failed"
CHECK_ERROR_SENSOR = "mspo_alert_check_error"
CAPTURE_MISSING_SENSOR = "mspo_alert_capture_missing"

INTERVAL_SECONDS = sensor_interval(os.environ.get(INTERVAL_ENV))
"""Read when the code location loads (Dagster fixes a sensor's interval in its definition)."""
EVENTS_PER_TICK = 100
RUN_ENDED = (
    DagsterEventType.RUN_SUCCESS,
    DagsterEventType.RUN_FAILURE,
    DagsterEventType.RUN_CANCELED,
)
NO_PARTITION = "(no partition)"
RAW_KEYS = tuple(dg.AssetKey(["raw", endpoint.name]) for endpoint in ENDPOINTS)


def _partition(tags: dict[str, str] | None) -> str:
    """A run's partition: one day, a range of days (a single-run backfill), or none."""
    tags = tags or {}
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if start and end:
        return start if start == end else f"{start}...{end}"
    return NO_PARTITION


def _finish(
    context: dg.SensorEvaluationContext, log: SentLog, delivery: Delivery, idle: str
) -> dg.SensorResult:
    for line in delivery.sent:
        context.log.info(f"sent {line}")
    for line in delivery.failed:
        context.log.error(f"not sent, retried next tick: {line}")
    return dg.SensorResult(skip_reason=None if delivery.sent else idle, cursor=log.dump())


def _follow_runs(
    context: dg.SensorEvaluationContext,
    event_types: Iterable[DagsterEventType],
    alerts_of: Callable[[dg.DagsterInstance, dg.EventLogRecord], Iterable[Alert]],
    sinks: list[Sink],
    idle: str,
) -> dg.SensorResult:
    """Alerts for the run-status events after the cursor; the read position advances only when
    every alert reached every sink, so a failed delivery is tried again next tick (the sinks
    that already have it are skipped)."""
    instance = context.instance
    log = SentLog.parse(context.cursor)
    if not log.started:
        for event_type in event_types:
            newest = instance.fetch_run_status_changes(event_type, limit=1)
            log.after[event_type.value] = newest.cursor
        log.started = True
        return dg.SensorResult(
            skip_reason="alerts start now: earlier runs are not alerted", cursor=log.dump()
        )
    delivery = Delivery()
    read_to: dict[str, str | None] = {}
    for event_type in event_types:
        page = instance.fetch_run_status_changes(
            event_type,
            limit=EVENTS_PER_TICK,
            cursor=log.after.get(event_type.value),
            ascending=True,
        )
        alerts = [alert for record in page.records for alert in alerts_of(instance, record)]
        step = log.deliver(alerts, sinks)
        delivery.sent += step.sent
        delivery.failed += step.failed
        read_to[event_type.value] = page.cursor
    if not delivery.failed:
        log.after.update(read_to)
    return _finish(context, log, delivery, idle)


def _error_of(record: dg.EventLogRecord) -> dg.SerializableErrorInfo | None:
    event = record.event_log_entry.dagster_event
    data = event.event_specific_data if event else None
    error = getattr(data, "error", None)
    # Dagster wraps a step's exception in its own errors: the user's class says what happened.
    while error is not None and error.cls_name.startswith("Dagster") and error.cause is not None:
        error = error.cause
    return error


def _message(error: dg.SerializableErrorInfo) -> str:
    """The error's own words: Dagster prefixes them with the exception's dotted class name."""
    head, separator, rest = error.message.partition(": ")
    return rest if separator and head.split(".")[-1] == error.cls_name else error.message


def run_failed_alerts(instance: dg.DagsterInstance, record: dg.EventLogRecord) -> list[Alert]:
    run_id = record.event_log_entry.run_id
    run = instance.get_run_by_id(run_id)
    step_failures = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.STEP_FAILURE
    ).records
    first = _error_of(step_failures[0]) if step_failures else _error_of(record)
    return [
        run_failed_alert(
            job=run.job_name if run else (record.event_log_entry.job_name or "?"),
            run_id=run_id,
            partition=_partition(dict(run.tags) if run else None),
            failed_steps=sorted({r.event_log_entry.step_key or "?" for r in step_failures}),
            error_class=first.cls_name if first else "no error recorded",
            error_message=_message(first) if first else record.event_log_entry.message,
        )
    ]


def check_error_alerts(instance: dg.DagsterInstance, record: dg.EventLogRecord) -> list[Alert]:
    run_id = record.event_log_entry.run_id
    run = instance.get_run_by_id(run_id)
    alerts = []
    for evaluation_record in instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records:
        event = evaluation_record.event_log_entry.dagster_event
        evaluation = event.asset_check_evaluation_data if event else None
        if (
            evaluation is None
            or evaluation.passed
            or evaluation.severity != dg.AssetCheckSeverity.ERROR
        ):
            continue
        alerts.append(
            check_error_alert(
                asset=evaluation.asset_key.to_user_string(),
                check=evaluation.check_name,
                partition=evaluation.partition or _partition(dict(run.tags) if run else None),
                description=evaluation.description,
                run_id=run_id,
            )
        )
    return alerts


@dg.sensor(
    name=RUN_FAILED_SENSOR,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=INTERVAL_SECONDS,
    description=(
        "Alerts (webhook and/or email) once per failed run's partition, job, failed steps and "
        "error; off until MSPO_ALERT_WEBHOOK_URL or MSPO_ALERT_SMTP_HOST is set."
    ),
)
def alert_run_failed(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    sinks = configured_sinks()
    if not sinks:
        return dg.SkipReason(ALERTS_OFF)
    return _follow_runs(
        context,
        [DagsterEventType.RUN_FAILURE],
        run_failed_alerts,
        sinks,
        idle="no new failed run",
    )


@dg.sensor(
    name=CHECK_ERROR_SENSOR,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=INTERVAL_SECONDS,
    description=(
        "Alerts once per asset, check and partition when an asset check fails at ERROR "
        "severity (read from each run as it ends); off while alerts are unconfigured."
    ),
)
def alert_check_error(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    sinks = configured_sinks()
    if not sinks:
        return dg.SkipReason(ALERTS_OFF)
    return _follow_runs(
        context, RUN_ENDED, check_error_alerts, sinks, idle="no new check failed at ERROR"
    )


@dg.sensor(
    name=CAPTURE_MISSING_SENSOR,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=INTERVAL_SECONDS,
    description=(
        "Alerts once a day when, past MSPO_CAPTURE_DEADLINE (07:00 Asia/Kuala_Lumpur), a raw "
        "asset has no materialisation for today; off while alerts are unconfigured."
    ),
)
def alert_capture_missing(
    context: dg.SensorEvaluationContext,
) -> dg.SensorResult | dg.SkipReason:
    sinks = configured_sinks()
    if not sinks:
        return dg.SkipReason(ALERTS_OFF)
    deadline = capture_deadline(os.environ.get(DEADLINE_ENV))
    day = deadline_day(deadline)
    if day is None:
        return dg.SkipReason(f"before today's deadline ({deadline:%H:%M} Asia/Kuala_Lumpur)")
    log = SentLog.parse(context.cursor)
    key = alert_key(AlertKind.CAPTURE_MISSING, day.isoformat(), CAPTURE_MISSING_CAUSE)
    if all(log.has_sent_key(sink, key) for sink in sinks):
        return dg.SkipReason(f"today's missing captures ({day}) are alerted already")
    missing = [
        key.to_user_string()
        for key in RAW_KEYS
        if not context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[day.isoformat()]), limit=1
        ).records
    ]
    alerts = (
        [capture_missing_alert(day=day, missing=missing, total=len(RAW_KEYS), deadline=deadline)]
        if missing
        else []
    )
    delivery = log.deliver(alerts, sinks)
    return _finish(context, log, delivery, idle=f"today's captures ({day}) are all stored")


defs = dg.Definitions(sensors=[alert_run_failed, alert_check_error, alert_capture_missing])
