"""The daily job over the whole graph, and its 06:00 schedule in Kuala Lumpur.

The job takes its daily partitions from the assets it selects (all share ``daily_partitions``).
"""

import dagster as dg

mspo_daily = dg.define_asset_job(
    name="mspo_daily",
    selection=dg.AssetSelection.all(),
    description="Capture today's MSPO snapshot and rebuild every layer for it.",
)

mspo_daily_schedule = dg.build_schedule_from_partitioned_job(
    mspo_daily,
    name="mspo_daily_schedule",
    hour_of_day=6,
    minute_of_hour=0,
    description="06:00 Asia/Kuala_Lumpur: today's partition (end_offset=1 makes it today's).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
