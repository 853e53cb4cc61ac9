"""The daily job over the whole graph, its 06:00 schedule in Kuala Lumpur, and the job that
re-derives stored days without the raw layer.

The jobs take their daily partitions from the assets they select (all share
``daily_partitions``).
"""

import dagster as dg

mspo_daily = dg.define_asset_job(
    name="mspo_daily",
    selection=dg.AssetSelection.all(),
    description="Capture today's MSPO snapshot and rebuild every layer for it.",
)

mspo_rederive = dg.define_asset_job(
    name="mspo_rederive",
    selection=dg.AssetSelection.groups("raw").downstream(include_self=False),
    description=(
        "Rebuild every layer above raw from the stored raw snapshots (after a code change, or "
        "to heal a range): backfill it over the days to rebuild. The raw layer is not in the "
        "job, so nothing is fetched or re-read twice, and a day without a stored snapshot fails "
        "its run with the missing file's path instead of capturing a later register."
    ),
)

mspo_daily_schedule = dg.build_schedule_from_partitioned_job(
    mspo_daily,
    name="mspo_daily_schedule",
    hour_of_day=6,
    minute_of_hour=0,
    description="06:00 Asia/Kuala_Lumpur: today's partition (end_offset=1 makes it today's).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(jobs=[mspo_daily, mspo_rederive], schedules=[mspo_daily_schedule])
