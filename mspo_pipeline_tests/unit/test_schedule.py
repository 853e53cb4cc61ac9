"""The daily schedule asks for today's partition, in Malaysia, at 06:00."""

import datetime as dt

import dagster as dg

from mspo_pipeline.definitions import defs
from mspo_pipeline.defs.schedules import mspo_daily_schedule


def _requested_partitions(at: dt.datetime) -> list[str | None]:
    schedule = defs().resolve_schedule_def(mspo_daily_schedule.name)
    with dg.build_schedule_context(scheduled_execution_time=at) as context:
        requests = schedule.evaluate_tick(context).run_requests or []
    return [request.partition_key for request in requests]


def test_schedule_runs_at_six_in_kuala_lumpur() -> None:
    schedule = defs().resolve_schedule_def(mspo_daily_schedule.name)
    assert schedule.cron_schedule == "0 6 * * *"
    assert schedule.execution_timezone == "Asia/Kuala_Lumpur"


def test_schedule_requests_todays_partition() -> None:
    # 06:00 on 22 November in Kuala Lumpur is 22:00 UTC on the 21st.
    tick = dt.datetime(2026, 11, 21, 22, 0, tzinfo=dt.UTC)
    assert _requested_partitions(tick) == ["2026-11-22"]
