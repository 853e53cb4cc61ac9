"""The pipeline's day: the Kuala Lumpur clock, partition keys, folder names and the first day.

The API's register changes at midnight in Malaysia, so every partition is a Malaysian calendar
day: its key is ``YYYY-MM-DD`` (Dagster's daily partitions) and its folder in the store is
``YYYYMMDD`` (the API docs' layout). Everything that turns one into the other, or asks which day
it is, does it here.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

MALAYSIA = ZoneInfo("Asia/Kuala_Lumpur")
"""The API's day boundary, and the partitions'."""

_FOLDER_FORMAT = "%Y%m%d"
FOLDER_PATTERN = re.compile(r"\d{8}")
"""A partition folder's name: ``YYYYMMDD``."""

FIRST_DAY_ENV = "MSPO_FIRST_DAY"
DEFAULT_FIRST_DAY = dt.date(2026, 11, 1)
"""The project's first day: the first partition when ``MSPO_FIRST_DAY`` is not set."""


def today_in_malaysia(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(MALAYSIA).date()


def partition_date(partition_key: str) -> dt.date:
    """``2026-11-22`` → ``date(2026, 11, 22)``, with an error that names the bad key."""
    try:
        return dt.datetime.strptime(partition_key, "%Y-%m-%d").date()
    except ValueError:
        raise ValueError(
            f"partition key {partition_key!r} is not a day (YYYY-MM-DD); every MSPO asset uses "
            "the daily partitions in Asia/Kuala_Lumpur"
        ) from None


def is_past(partition_key: str, now: dt.datetime | None = None) -> bool:
    """A partition whose Malaysian day is over: the API can no longer serve its snapshot."""
    return partition_date(partition_key) < today_in_malaysia(now)


def folder_name(day: dt.date) -> str:
    """``date(2026, 11, 22)`` → ``20261122``: the folder of one daily partition."""
    return day.strftime(_FOLDER_FORMAT)


def partition_folder(partition_key: str) -> str:
    """``2026-11-22`` → ``20261122``."""
    return folder_name(partition_date(partition_key))


def folder_day(name: str) -> dt.date | None:
    """``20261122`` → ``date(2026, 11, 22)``; None for a name that is not a partition folder."""
    if not FOLDER_PATTERN.fullmatch(name):
        return None
    try:
        return dt.datetime.strptime(name, _FOLDER_FORMAT).date()
    except ValueError:
        return None


def first_day(value: str | None, today: dt.date | None = None) -> dt.date:
    """The first daily partition a deployment shows: ``MSPO_FIRST_DAY``, else the default.

    Every partition before a deployment's first capture can only ever be filled with a later
    register, so a first day earlier than the history shows days as missing that were never
    meant to exist, and a "backfill missing" in the UI would fabricate them. A bad value fails
    the code location's load with the reason, rather than silently shifting every partition.
    """
    text = (value or "").strip()
    if not text:
        return DEFAULT_FIRST_DAY
    try:
        day = dt.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ValueError(
            f"{FIRST_DAY_ENV}={text!r} is not a date; give the first day of this deployment's "
            "history as YYYY-MM-DD (in Asia/Kuala_Lumpur), or unset it for "
            f"{DEFAULT_FIRST_DAY.isoformat()}"
        ) from None
    today = today or today_in_malaysia()
    if day > today:
        raise ValueError(
            f"{FIRST_DAY_ENV}={text!r} is in the future (today is {today.isoformat()} in "
            "Asia/Kuala_Lumpur); the first partition must be a day the API has already served"
        )
    return day
