"""When a snapshot was taken, and whether the pipeline may keep it.

The MSPO API has no history: whatever day a partition names, a request returns the register as it
is *now*. A snapshot taken on its partition's own day (in Malaysia) is **on time**; one taken later
for a missed day is a **late capture**: still worth keeping (it is the closest thing to that day
anyone can get), but it must say so. These rules are plain functions so they are tested without
Dagster and read the same in the asset, the docs and the tests.

Which day a response holds is known from its ``Date`` header, before its body: ``CaptureGate``
decides it there, so a refused late capture never downloads the register it would throw away.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum

from mspo_pipeline.lib.api import ResponseHead, failure_message
from mspo_pipeline.lib.days import MALAYSIA, partition_date


class LatePolicy(StrEnum):
    """``MSPO_LATE_CAPTURE``: whether a missed day may be filled with a later snapshot."""

    ALLOW = "allow"
    REFUSE = "refuse"


class LateCaptureRefusedError(RuntimeError):
    """A past partition was requested while ``MSPO_LATE_CAPTURE=refuse``.

    Carries the same parts as ``MspoApiError`` (its message names them too), so every capture
    failure can be handled alike.
    """

    def __init__(
        self, message: str, *, endpoint: str, partition: str, url: str, status: int | None
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.partition = partition
        self.url = url
        self.status = status


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


def check_late_policy(
    timing: CaptureTiming, policy: LatePolicy, *, endpoint: str, url: str, status: int | None
) -> None:
    """Refuse a late capture when the deployment asked for on-time snapshots only.

    ``endpoint`` (the catalogue name), ``url`` and ``status`` describe the response being judged,
    so the refusal reads like every other capture failure.
    """
    if timing.late and policy is LatePolicy.REFUSE:
        partition = timing.partition_date.isoformat()
        raise LateCaptureRefusedError(
            failure_message(
                endpoint=endpoint,
                partition=partition,
                problem=(
                    f"the partition is {timing.lag_days} day(s) in the past and the API only "
                    f"serves today's register ({timing.snapshot_date}, by the server's clock); "
                    "MSPO_LATE_CAPTURE=refuse forbids storing it as that day's snapshot, so its "
                    "body was not downloaded"
                ),
                url=url,
                status=status,
                advice=(
                    "Set MSPO_LATE_CAPTURE=allow to fill the gap with a late capture, or leave "
                    "the partition empty."
                ),
            ),
            endpoint=endpoint,
            partition=partition,
            url=url,
            status=status,
        )


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CaptureGate:
    """Dates a response by its headers and applies the late-capture policy, before its body.

    Pass it as ``on_headers`` to ``MspoClient.fetch``: the server's ``Date`` says which day's
    register the response holds as soon as the headers arrive, so a late capture that the policy
    refuses raises there and the body (~190 MB for SPOC) is never downloaded. Afterwards
    ``timing`` is the timing of the response that was downloaded (a retry is judged again, by its
    own headers).
    """

    def __init__(
        self, partition_key: str, policy: LatePolicy, *, clock: Callable[[], dt.datetime] = _utc_now
    ) -> None:
        self.partition_date = partition_date(partition_key)  # a bad key fails before any request
        self.policy = policy
        self._clock = clock
        self._timing: CaptureTiming | None = None

    def __call__(self, head: ResponseHead) -> None:
        timing = CaptureTiming(
            self.partition_date, server_time(head.headers.get("Date"), fallback=self._clock())
        )
        check_late_policy(
            timing, self.policy, endpoint=head.endpoint, url=head.url, status=head.status
        )
        self._timing = timing

    @property
    def timing(self) -> CaptureTiming:
        """The timing of the last response let through."""
        if self._timing is None:
            raise RuntimeError(
                "no response has been judged yet: pass the gate to fetch() as on_headers"
            )
        return self._timing


def stored_capture(
    provenance: Mapping[str, str], partition_key: str
) -> dict[str, str | int | bool]:
    """A stored snapshot's capture facts, typed as a fresh capture reports them.

    A Parquet footer keeps every value as text (``"true"``, ``"3"``), but a reused snapshot's
    output metadata must carry a bool and an int like a fresh one, or the UI cannot plot
    ``late_capture`` and ``lag_days`` across partitions. A value the footer lacks or garbles (an
    older file) is derived again from ``captured_at``; a typed value that cannot be known at all is
    left out rather than reported as text of the wrong type.
    """
    captured = _instant(provenance.get("captured_at"))
    timing = CaptureTiming(partition_date(partition_key), captured) if captured else None
    facts: dict[str, str | int | bool] = {
        "captured_at": provenance.get("captured_at") or "unknown",
        "source_url": provenance.get("source_url") or "unknown",
    }
    snapshot = _day(provenance.get("snapshot_date"))
    if snapshot is None and timing is not None:
        snapshot = timing.snapshot_date
    facts["snapshot_date"] = snapshot.isoformat() if snapshot else "unknown"
    lag = _integer(provenance.get("lag_days"))
    if lag is None and timing is not None:
        lag = timing.lag_days
    if lag is not None:
        facts["lag_days"] = lag
    late = {"true": True, "false": False}.get((provenance.get("late_capture") or "").lower())
    if late is None and lag is not None:
        late = lag > 0
    if late is not None:
        facts["late_capture"] = late
    return facts


def _instant(text: str | None) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(text or "")
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _day(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text or "")
    except ValueError:
        return None


def _integer(text: str | None) -> int | None:
    try:
        return int(text or "")
    except ValueError:
        return None
