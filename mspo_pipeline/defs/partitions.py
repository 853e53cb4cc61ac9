"""The one partitioning every asset shares: a day in Malaysia (DESIGN.md §5)."""

import dagster as dg

FIRST_DAY = "2026-11-01"
"""The first day the pipeline keeps; earlier days can only ever be late captures."""

API_POOL = "mspo_api"
"""Concurrency pool of every step that calls the MSPO API (limit it in dagster.yaml)."""

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=FIRST_DAY,
    timezone="Asia/Kuala_Lumpur",
    # The API serves today's register: today's partition must exist as soon as the day starts.
    end_offset=1,
)

# Every partition is its own run, so each day's capture and checks stand or fail alone and the
# Parquet IO manager writes exactly one partition per output.
one_run_per_day = dg.BackfillPolicy.multi_run(1)
