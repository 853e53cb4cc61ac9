"""The one partitioning every asset shares: a day in Malaysia, and how days depend on days."""

import os
import warnings

import dagster as dg

from mspo_pipeline.lib.days import FIRST_DAY_ENV, MALAYSIA, first_day

FIRST_DAY = first_day(os.environ.get(FIRST_DAY_ENV)).isoformat()
"""The first day this deployment keeps (``MSPO_FIRST_DAY``, read when the code location loads):
a day before its history would only show as missing, and backfilling it would store a later
register under its date."""

API_POOL = "mspo_api"
"""Concurrency pool of every step that calls the MSPO API (limit it in dagster.yaml)."""

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=FIRST_DAY,
    timezone=MALAYSIA.key,
    # The API serves today's register: today's partition must exist as soon as the day starts.
    end_offset=1,
)

GAP_LOOKBACK_DAYS = 31
"""How far back a day-chained asset (``changes``, ``plot_history``) looks for the stored day it
builds on: a gap of missed days up to this long heals by itself when it is filled in later."""

with warnings.catch_warnings():
    # Beta in Dagster 1.13, and needed: the first days of a history have no earlier days.
    warnings.simplefilter("ignore", dg.BetaWarning)
    earlier_days = dg.TimeWindowPartitionMapping(
        start_offset=-GAP_LOOKBACK_DAYS, end_offset=-1, allow_nonexistent_upstream_partitions=True
    )
"""The ``GAP_LOOKBACK_DAYS`` days before a partition: the dependency of a day-chained asset on
the days it may build on, so filling any of them marks it stale (and re-derives it).

No asset sets a backfill policy: without one, a backfill of N days is N runs (Dagster's
default), so each day's capture and checks stand or fail alone and the Parquet IO manager writes
exactly one partition per output."""
