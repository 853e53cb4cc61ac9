"""Gaps heal: a day filled in late re-derives the days built on it, by the daemon.

``curated/changes`` and ``curated/plot_history`` for day D are built on the newest *stored* day
before D. When a missed day before D is captured later (a backfill, or one partition in the UI),
D's result is out of date: ``changes`` of the next stored day compares with the wrong day, and
every later ``plot_history`` lacks the filled day. Both assets depend on the ``earlier_days`` of
their chain, so the UI shows those partitions stale as soon as the earlier day lands, and the
condition below has the daemon re-derive them: only partitions that exist (a missing day stays
missing: only a capture can fill it), not while anything they read is being written, and as one
backfill per tick, which runs ``plot_history`` day after day in date order.
"""

import dagster as dg

rederive_when_an_earlier_day_changes = (
    ~dg.AutomationCondition.missing()
    & dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("re-derive when a day it builds on changes")

HEALING_SENSOR = "mspo_heal_history"

defs = dg.Definitions(
    sensors=[
        dg.AutomationConditionSensorDefinition(
            HEALING_SENSOR,
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=60,
            description=(
                "Re-derives curated/changes and curated/plot_history partitions after a day "
                "they build on is filled in or rebuilt (the assets' automation conditions)."
            ),
        )
    ]
)
