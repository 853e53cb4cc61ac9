"""When a snapshot was taken, and whether the pipeline may keep it (DESIGN.md §5).

The MSPO API has no history: whatever day a partition names, a request returns the register as it
is *now*. A snapshot taken on its partition's own day (in Malaysia) is **on time**; one taken later
for a missed day is a **late capture**: still worth keeping (it is the closest thing to that day
anyone can get), but it must say so. These rules are plain functions so they are tested without
Dagster and read the same in the asset, the docs and the tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

MALAYSIA = ZoneInfo("Asia/Kuala_Lumpur")
"""The API's day boundary, and the partitions'."""


class LatePolicy(StrEnum):
    """``MSPO_LATE_CAPTURE``: whether a missed day may be filled with a later snapshot."""

    ALLOW = "allow"
    REFUSE = "refuse"


class LateCaptureRefusedError(RuntimeError):
    """A past partition was requested while ``MSPO_LATE_CAPTURE=refuse``."""


@dataclass(frozen=True, slots=True)
class CaptureTiming:
    """How a snapshot relates to the partition it is stored in."""

    partition_date: dt.date
    captured_at: dt.datetime
    """UTC instant the API answered (its ``Date`` header, else our clock)."""

    @property
    def snapshot_date(self) -> dt.date:
        """The Malaysian calendar day whose register the API returned."""
        return self.captured_at.astimezone(MALAYSIA).date()

    @property
    def lag_days(self) -> int:
        return (self.snapshot_date - self.partition_date).days

    @property
    def late(self) -> bool:
        return self.lag_days > 0


def partition_date(partition_key: str) -> dt.date:
    """``2026-11-22`` → ``date(2026, 11, 22)``, with an error that names the bad key."""
    try:
        return dt.datetime.strptime(partition_key, "%Y-%m-%d").date()
    except ValueError:
        raise ValueError(f"partition key {partition_key!r} is not a YYYY-MM-DD date") from None


def today_in_malaysia(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(MALAYSIA).date()


def server_time(date_header: str | None, fallback: dt.datetime) -> dt.datetime:
    """The instant the server says it answered, from its HTTP ``Date`` header.

    The server's clock, not ours, decides which day's register a response is: it is the API's own
    notion of "today" (and an emulator pinned to a date says so the same way).
    """
    if date_header:
        try:
            parsed = parsedate_to_datetime(date_header)
        except (TypeError, ValueError):
            return fallback
        if parsed.tzinfo is not None:
            return parsed.astimezone(dt.UTC)
    return fallback


def is_past(partition_key: str, now: dt.datetime | None = None) -> bool:
    """A partition whose Malaysian day is over: the API can no longer serve its snapshot."""
    return partition_date(partition_key) < today_in_malaysia(now)


def check_late_policy(timing: CaptureTiming, policy: LatePolicy, *, endpoint_path: str) -> None:
    """Refuse a late capture when the deployment asked for on-time snapshots only."""
    if timing.late and policy is LatePolicy.REFUSE:
        raise LateCaptureRefusedError(
            f"{endpoint_path}: partition {timing.partition_date} is {timing.lag_days} day(s) in "
            f"the past and the API only serves today's register ({timing.snapshot_date}); "
            "MSPO_LATE_CAPTURE=refuse forbids storing it as that day's snapshot. Set "
            "MSPO_LATE_CAPTURE=allow to fill the gap with a late capture, or leave it empty."
        )
