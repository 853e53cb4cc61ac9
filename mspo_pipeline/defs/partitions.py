"""The one partitioning every asset shares: a day in Malaysia (DESIGN.md §5)."""

import os

import dagster as dg

from mspo_pipeline.lib.capture import FIRST_DAY_ENV, first_day

FIRST_DAY = first_day(os.environ.get(FIRST_DAY_ENV)).isoformat()
"""The first day this deployment keeps (``MSPO_FIRST_DAY``, read when the code location loads):
a day before its history would only show as missing, and backfilling it would store a later
register under its date."""

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
