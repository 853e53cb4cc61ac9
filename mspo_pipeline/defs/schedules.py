"""The daily job over the whole graph, and its 06:00 schedule in Kuala Lumpur."""

import dagster as dg

from mspo_pipeline.defs.partitions import daily_partitions

mspo_daily = dg.define_asset_job(
    name="mspo_daily",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions,
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
