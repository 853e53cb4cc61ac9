"""The capture ledger: for every day and endpoint, was the raw snapshot on time, late or missing?

The MSPO API keeps no history, so whether a stored day is that day's register is the one fact a
reader of history must be able to trust. The ledger is built from what is stored, the raw files
and their footers (``storage.read_footer``), never from Dagster's event log: it is true on any
storage a run can write to (a folder, ``gs://``), for history written by any instance, and it can
be rebuilt at any time without calling the API.

One ``Entry`` per (day, endpoint):

- **missing**: no raw file for that day;
- **late**: the file holds the register of a later day (a backfill; ``capture.CaptureTiming``
  decides, from the footer's ``captured_at``), or its footer does not say when it was captured,
  so it cannot be shown to be on time;
- **on_time**: the file holds that day's own register.

The table's columns are declared once, in ``schemas.CURATED``: they make the frame's schema,
the UI's column schema and the README's column table (a test holds the README to them).
``mspo status`` renders the same entries as a calendar (``calendar_report``), reading footers
only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

import polars as pl

from mspo_pipeline.lib import layout, storage
from mspo_pipeline.lib.catalog import ENDPOINTS, Endpoint, Kind
from mspo_pipeline.lib.days import folder_name, today_in_malaysia
from mspo_pipeline.lib.late_capture import CaptureTiming
from mspo_pipeline.lib.provenance import Source
from mspo_pipeline.lib.schemas import curated_table
from mspo_pipeline.lib.tables import CAPTURES

TABLE = CAPTURES

REFERENCES_GROUP = "references"


class Status(StrEnum):
    """What a stored day holds for one endpoint, best first."""

    ON_TIME = "on_time"
    LATE = "late"
    MISSING = "missing"


SCHEMA = curated_table(TABLE).schema


def columns_markdown() -> str:
    """The columns as a Markdown table: the README's, kept equal to the declaration by a test."""
    lines = ["| column | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{c.name}` | {c.dtype} | {c.description} |" for c in curated_table(TABLE).columns]
    return "\n".join(lines)


def group_of(endpoint: Endpoint) -> str:
    """``references`` for every reference table; a register by its name (``spoc_smallholders``
    → ``SPOC``), so a new register in the catalogue gets its own group without a second list."""
    if endpoint.kind is Kind.REFERENCE:
        return REFERENCES_GROUP
    return endpoint.name.removesuffix("_smallholders").upper()


GROUPS: tuple[str, ...] = tuple(dict.fromkeys(group_of(e) for e in ENDPOINTS))
"""The endpoint groups in catalogue order: references, SPOC, OSH, GM."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger row: what the store holds for one endpoint on one day."""

    partition_date: dt.date
    endpoint: str
    endpoint_group: str
    status: Status
    snapshot_date: dt.date | None = None
    captured_at: dt.datetime | None = None
    lag_days: int | None = None
    rows: int | None = None
    response_bytes: int | None = None
    sha256: str | None = None
    raw_file: str | None = None
    source_url: str | None = None
    """Not a column (``captures`` is about timing); it goes into the ledger file's sources."""


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _instant(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _day(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def entry_from_footer(
    day: dt.date, endpoint: Endpoint, rows: int, provenance: Mapping[str, str]
) -> Entry:
    """The ledger row of a stored raw file, from its footer alone.

    Timing is re-derived from ``captured_at`` by ``CaptureTiming``, the rule the capture itself
    used; a footer with only ``snapshot_date`` (older files) is read as that; a footer with
    neither is late, with the timing left empty.
    """
    captured_at = _instant(provenance.get("captured_at"))
    snapshot: dt.date | None
    lag: int | None
    if captured_at is not None:
        timing = CaptureTiming(day, captured_at.astimezone(dt.UTC))
        snapshot, lag, late = timing.snapshot_date, timing.lag_days, timing.late
    else:
        snapshot = _day(provenance.get("snapshot_date"))
        lag = (snapshot - day).days if snapshot else None
        late = lag is None or lag > 0
    return Entry(
        partition_date=day,
        endpoint=endpoint.name,
        endpoint_group=group_of(endpoint),
        status=Status.LATE if late else Status.ON_TIME,
        snapshot_date=snapshot,
        captured_at=captured_at.astimezone(dt.UTC) if captured_at else None,
        lag_days=lag,
        rows=rows,
        response_bytes=_int(provenance.get("response_bytes")),
        raw_file=endpoint.raw_key(folder_name(day)),
        source_url=provenance.get("source_url"),
    )


def read_entry(root: str, endpoint: Endpoint, day: dt.date, *, with_sha256: bool = True) -> Entry:
    """The ledger row of ``endpoint`` on ``day`` under ``root``; ``missing`` when no file.

    ``with_sha256=False`` reads the footer only (``mspo status``); the ledger asset hashes the
    whole file so a later change to a stored snapshot can be told from the original.
    """
    path = storage.storage_path(root, ["raw", endpoint.name], day.isoformat())
    try:
        rows, provenance = storage.read_footer(path)
    except FileNotFoundError:
        return Entry(day, endpoint.name, group_of(endpoint), Status.MISSING)
    entry = entry_from_footer(day, endpoint, rows, provenance)
    if not with_sha256:
        return entry
    return dataclasses.replace(entry, sha256=storage.file_sha256(path))


READ_THREADS = 8
"""Footers read at once: each is a small request on ``gs://``, so they overlap well."""


def read_entries(
    root: str,
    days: Iterable[dt.date],
    *,
    endpoints: Sequence[Endpoint] = ENDPOINTS,
    with_sha256: bool = True,
) -> list[Entry]:
    """Every (day, endpoint) entry under ``root``, in day then catalogue order."""
    pairs = [(day, endpoint) for day in days for endpoint in endpoints]
    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        return list(
            pool.map(lambda p: read_entry(root, p[1], p[0], with_sha256=with_sha256), pairs)
        )


def frame(entries: Iterable[Entry]) -> pl.DataFrame:
    """The ledger rows as a frame with exactly ``SCHEMA``."""
    rows = [
        {**{name: getattr(entry, name) for name in SCHEMA}, "status": entry.status.value}
        for entry in entries
    ]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row") if rows else SCHEMA.to_frame()


def sources(entries: Iterable[Entry]) -> dict[str, Source]:
    """The raw snapshots a day's ledger was read from, as every derived file names them."""
    return {
        entry.endpoint: Source(
            endpoint=entry.endpoint,
            source_url=entry.source_url or "unknown",
            captured_at=entry.captured_at.isoformat(timespec="seconds")
            if entry.captured_at
            else "unknown",
            snapshot_date=entry.snapshot_date.isoformat() if entry.snapshot_date else "unknown",
            late_capture=entry.status is Status.LATE,
            lag_days=entry.lag_days or 0,
            raw_sha256=entry.sha256,
        )
        for entry in entries
        if entry.status is not Status.MISSING
    }


def counts(entries: Iterable[Entry]) -> dict[Status, int]:
    """How many entries have each status (every status present, zero included)."""
    found = Counter(entry.status for entry in entries)
    return {status: found.get(status, 0) for status in Status}


def stored_days(root: str) -> list[dt.date]:
    """Days with at least one stored raw file, oldest first (one listing per endpoint)."""
    base = storage.root_upath(root)
    days = {day for e in ENDPOINTS for day in layout.stored_days(base, ["raw", e.name])}
    return sorted(days)


# --- the calendar of `mspo status` -------------------------------------------------------------

SYMBOLS: Mapping[Status, str] = {Status.ON_TIME: "✓", Status.LATE: "L", Status.MISSING: "✗"}
LEGEND = (
    "✓ on time   L+n late: holds the register of n days later   ✗ missing   "
    "k/n: k of the group's n endpoints"
)
_WORST_FIRST = (Status.MISSING, Status.LATE, Status.ON_TIME)
_LISTED_DAYS = 10


def cell(entries: Sequence[Entry]) -> str:
    """One group on one day: its worst status, with how many of the group share it if not all.

    Late shows the largest lag (``L+3``); a day that is all on time is a bare ``✓``.
    """
    worst = next(s for s in _WORST_FIRST if any(e.status is s for e in entries))
    hit = [e for e in entries if e.status is worst]
    text = SYMBOLS[worst]
    if worst is Status.LATE:
        lags = [e.lag_days for e in hit if e.lag_days is not None]
        text += f"+{max(lags)}" if lags else "+?"
    if len(hit) < len(entries):
        text += f" {len(hit)}/{len(entries)}"
    return text


def _days_text(days: Sequence[dt.date]) -> str:
    shown = ", ".join(day.isoformat() for day in days[:_LISTED_DAYS])
    return shown + (f" and {len(days) - _LISTED_DAYS} more" if len(days) > _LISTED_DAYS else "")


def window(today: dt.date, days: int, first_day: dt.date) -> list[dt.date]:
    """The last ``days`` days up to ``today``, none before ``first_day`` (no partition there)."""
    if days < 1:
        raise ValueError(f"--days must be at least 1, not {days}")
    start = max(today - dt.timedelta(days=days - 1), first_day)
    return [start + dt.timedelta(days=i) for i in range((today - start).days + 1)]


def calendar_report(
    entries: Sequence[Entry], *, today: dt.date, root: str, first_day: dt.date | None = None
) -> str:
    """``mspo status``: one line per day, one column per endpoint group, a legend, a summary.

    ``first_day`` is named in the header when it cut the window short, so a short history is not
    mistaken for a complete one.
    """
    by_day: dict[dt.date, dict[str, list[Entry]]] = {}
    for entry in entries:
        groups = by_day.setdefault(entry.partition_date, {})
        groups.setdefault(entry.endpoint_group, []).append(entry)
    days = sorted(by_day)
    if not days:
        return f"no days to show under {root}"
    header = f"Captures under {root}, {days[0]} to {days[-1]} (Asia/Kuala_Lumpur)"
    if first_day is not None and days[0] == first_day:
        header += f"; history starts {first_day} (MSPO_FIRST_DAY)"
    table = [["day", *GROUPS, ""]]
    for day in days:
        cells = [cell(by_day[day][g]) if g in by_day[day] else "" for g in GROUPS]
        table.append([f"{day:%a} {day}", *cells, "today" if day == today else ""])
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [header, ""]
    lines += [
        "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]

    def days_with(status: Status) -> list[dt.date]:
        return [d for d in days if any(e.status is status for g in by_day[d].values() for e in g)]

    total = counts(entries)
    endpoints = len({entry.endpoint for entry in entries})
    summary = (
        f"{len(days)} days x {endpoints} endpoints: {total[Status.ON_TIME]} on time, "
        f"{total[Status.LATE]} late, {total[Status.MISSING]} missing"
    )
    for status, label in ((Status.LATE, "late"), (Status.MISSING, "missing")):
        if found := days_with(status):
            summary += f"; {label}: {_days_text(found)}"
    lines += ["", LEGEND, summary]
    if total[Status.MISSING] == len(entries):
        lines.append(f"nothing is stored under {root} for these days: is it the right data root?")
    return "\n".join(lines)


def status_report(root: str, *, days: int, today: dt.date | None = None, first_day: dt.date) -> str:
    """Read the footers of the last ``days`` days under ``root`` and render the calendar.

    Footers only (no data, no hashes), read a few at a time: fast on a folder and on ``gs://``,
    and true whether or not the ledger asset ever ran.
    """
    today = today or today_in_malaysia()
    entries = read_entries(root, window(today, days, first_day), with_sha256=False)
    return calendar_report(entries, today=today, root=root, first_day=first_day)
