"""The capture ledger and ``mspo status`` over raw files written by the project's own writer.

Each fixture file is written with ``storage.write_parquet_atomic`` and the footer keys the raw
asset writes, so the ledger reads exactly what a run would have left behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from mspo_pipeline.lib import ledger, storage
from mspo_pipeline.lib.catalog import ENDPOINTS, Kind, endpoint
from mspo_pipeline.lib.days import MALAYSIA, today_in_malaysia
from mspo_pipeline.lib.ledger import Status
from mspo_pipeline_tests import REPO_ROOT

README = REPO_ROOT / "README.md"
MSPO = Path(sys.executable).parent / "mspo"
DAY = dt.date(2026, 11, 20)


def captured_at(snapshot: dt.date, hour: int = 6) -> dt.datetime:
    """An instant on ``snapshot``'s Malaysian day, in UTC, as the raw asset records it."""
    return dt.datetime.combine(snapshot, dt.time(hour), tzinfo=MALAYSIA).astimezone(dt.UTC)


def write_raw(
    root: Path, name: str, day: dt.date, *, snapshot: dt.date | None = None, rows: int = 3
) -> Path:
    """A raw file of ``name`` for ``day`` holding the register of ``snapshot`` (default: on
    time), with the provenance footer the raw asset writes; ``snapshot=None`` and no timing
    keys at all when ``snapshot`` is ``dt.date.min``."""
    path = root / storage.relative_path(["raw", name], day.isoformat())
    values: dict[str, object] = {"source_url": f"http://api/{name}", "response_bytes": 1234}
    if snapshot != dt.date.min:
        taken = snapshot or day
        values |= {
            "captured_at": captured_at(taken).isoformat(timespec="seconds"),
            "snapshot_date": taken.isoformat(),
            "late_capture": taken > day,
            "lag_days": (taken - day).days,
        }
    frame = pl.DataFrame({"id": list(range(rows))})
    storage.write_parquet_atomic(frame, storage.as_upath(path), storage.provenance_metadata(values))
    return path


def entry(root: Path, name: str, day: dt.date = DAY) -> ledger.Entry:
    return ledger.read_entry(str(root), endpoint(name), day)


def test_on_time_file(tmp_path: Path) -> None:
    path = write_raw(tmp_path, "states", DAY, rows=16)
    found = entry(tmp_path, "states")
    assert found.status is Status.ON_TIME
    assert (found.snapshot_date, found.lag_days, found.rows) == (DAY, 0, 16)
    assert found.captured_at == captured_at(DAY)
    assert found.response_bytes == 1234
    assert found.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert found.raw_file == "raw/mspo/api/references/states/20261120/states.parquet"
    assert (found.endpoint, found.endpoint_group) == ("states", "references")


def test_late_file_holds_a_later_register(tmp_path: Path) -> None:
    write_raw(tmp_path, "spoc_smallholders", DAY, snapshot=DAY + dt.timedelta(days=3))
    found = entry(tmp_path, "spoc_smallholders")
    assert found.status is Status.LATE
    assert (found.snapshot_date, found.lag_days) == (DAY + dt.timedelta(days=3), 3)
    assert found.endpoint_group == "SPOC"


def test_late_is_decided_in_malaysia_not_utc(tmp_path: Path) -> None:
    """01:00 in Kuala Lumpur on the next day is still the previous day in UTC: late by one."""
    path = tmp_path / storage.relative_path(["raw", "zones"], DAY.isoformat())
    instant = dt.datetime.combine(DAY + dt.timedelta(days=1), dt.time(1), tzinfo=MALAYSIA)
    metadata = storage.provenance_metadata({"captured_at": instant.astimezone(dt.UTC).isoformat()})
    storage.write_parquet_atomic(pl.DataFrame({"id": [1]}), storage.as_upath(path), metadata)
    found = entry(tmp_path, "zones")
    assert (found.status, found.lag_days) == (Status.LATE, 1)


def test_no_file_is_missing(tmp_path: Path) -> None:
    write_raw(tmp_path, "states", DAY - dt.timedelta(days=1))  # another day's file
    found = entry(tmp_path, "states")
    assert found == ledger.Entry(DAY, "states", "references", Status.MISSING)


def test_a_footer_without_timing_cannot_be_on_time(tmp_path: Path) -> None:
    write_raw(tmp_path, "cb", DAY, snapshot=dt.date.min)
    found = entry(tmp_path, "cb")
    assert found.status is Status.LATE
    assert (found.snapshot_date, found.lag_days, found.captured_at) == (None, None, None)
    assert found.rows == 3


def test_footer_only_read_leaves_the_hash_out(tmp_path: Path) -> None:
    write_raw(tmp_path, "states", DAY)
    found = ledger.read_entry(str(tmp_path), endpoint("states"), DAY, with_sha256=False)
    assert found.status is Status.ON_TIME
    assert found.sha256 is None


def test_a_day_has_one_row_per_endpoint_with_the_declared_schema(tmp_path: Path) -> None:
    write_raw(tmp_path, "states", DAY)
    write_raw(tmp_path, "gm_smallholders", DAY, snapshot=DAY + dt.timedelta(days=1))
    entries = ledger.read_entries(str(tmp_path), [DAY])
    frame = ledger.frame(entries)
    assert frame.schema == ledger.SCHEMA
    assert frame.get_column("endpoint").to_list() == [e.name for e in ENDPOINTS]
    statuses = dict(zip(frame["endpoint"], frame["status"], strict=True))
    assert statuses["states"] == "on_time"
    assert statuses["gm_smallholders"] == "late"
    assert statuses["osh_smallholders"] == "missing"
    assert ledger.counts(entries) == {
        Status.ON_TIME: 1,
        Status.LATE: 1,
        Status.MISSING: len(ENDPOINTS) - 2,
    }
    assert ledger.frame([]).schema == ledger.SCHEMA


def test_groups_come_from_the_catalogue() -> None:
    assert ledger.GROUPS == ("references", "SPOC", "OSH", "GM")
    for e in ENDPOINTS:
        assert (ledger.group_of(e) == "references") == (e.kind is Kind.REFERENCE), e.name


def test_stored_days_lists_days_with_a_raw_file(tmp_path: Path) -> None:
    write_raw(tmp_path, "states", DAY)
    write_raw(tmp_path, "gm_smallholders", DAY - dt.timedelta(days=4))
    (tmp_path / "raw" / "mspo" / "api" / "references" / "states" / "20261101").mkdir()
    assert ledger.stored_days(str(tmp_path)) == [DAY - dt.timedelta(days=4), DAY]
    assert ledger.stored_days(str(tmp_path / "empty")) == []


def test_readme_documents_the_declared_columns() -> None:
    assert ledger.columns_markdown() in README.read_text()


def _entries(group: str, *statuses: tuple[Status, int | None]) -> list[ledger.Entry]:
    return [
        ledger.Entry(DAY, f"e{i}", group, status, lag_days=lag)
        for i, (status, lag) in enumerate(statuses)
    ]


@pytest.mark.parametrize(
    ("statuses", "text"),
    [
        ([(Status.ON_TIME, 0)] * 3, "✓"),
        ([(Status.LATE, 1), (Status.LATE, 2)], "L+2"),
        ([(Status.ON_TIME, 0), (Status.LATE, 4), (Status.ON_TIME, 0)], "L+4 1/3"),
        ([(Status.MISSING, None)] * 2, "✗"),
        ([(Status.LATE, 1), (Status.MISSING, None), (Status.ON_TIME, 0)], "✗ 1/3"),
        ([(Status.LATE, None)], "L+?"),
    ],
)
def test_a_group_cell_shows_its_worst_status(
    statuses: list[tuple[Status, int | None]], text: str
) -> None:
    assert ledger.cell(_entries("references", *statuses)) == text


def test_window_stops_at_the_first_day() -> None:
    assert ledger.window(DAY, 3, dt.date(2026, 11, 1)) == [
        DAY - dt.timedelta(days=2),
        DAY - dt.timedelta(days=1),
        DAY,
    ]
    assert ledger.window(DAY, 14, DAY - dt.timedelta(days=1)) == [DAY - dt.timedelta(days=1), DAY]
    with pytest.raises(ValueError, match="at least 1"):
        ledger.window(DAY, 0, DAY)


def write_history(root: Path, today: dt.date) -> None:
    """Four days up to ``today``: on time, then missing, then late (a backfill made today),
    then today on time except the GM register."""
    days = [today - dt.timedelta(days=n) for n in (3, 2, 1, 0)]
    for e in ENDPOINTS:
        write_raw(root, e.name, days[0])
        write_raw(root, e.name, days[2], snapshot=today)
        if e.name != "gm_smallholders":
            write_raw(root, e.name, days[3])


def test_status_command_prints_the_calendar(tmp_path: Path) -> None:
    """``mspo status`` as a user runs it: a real process over a store with a late and a missing
    day (the real clock decides today, so the fixture is written relative to it)."""
    today = today_in_malaysia()
    write_history(tmp_path, today)
    env = {k: v for k, v in os.environ.items() if k not in ("MSPO_FIRST_DAY", "MSPO_DATA_ROOT")}
    done = subprocess.run(
        [str(MSPO), "status", "--days", "4", "--data-root", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if today_in_malaysia() != today:  # midnight in Kuala Lumpur passed while it ran
        pytest.skip("the day changed during the test")
    assert done.returncode == 0, done.stderr
    day = [today - dt.timedelta(days=n) for n in (3, 2, 1, 0)]
    lines = done.stdout.splitlines()
    assert lines[0] == f"Captures under {tmp_path}, {day[0]} to {today} (Asia/Kuala_Lumpur)"
    table = [line.split() for line in lines[2:7]]
    assert table == [
        ["day", "references", "SPOC", "OSH", "GM"],
        [f"{day[0]:%a}", str(day[0]), "✓", "✓", "✓", "✓"],
        [f"{day[1]:%a}", str(day[1]), "✗", "✗", "✗", "✗"],
        [f"{day[2]:%a}", str(day[2]), "L+1", "L+1", "L+1", "L+1"],
        [f"{today:%a}", str(today), "✓", "✓", "✓", "✗", "today"],
    ]
    assert lines[8] == ledger.LEGEND
    assert lines[9] == (
        f"4 days x 14 endpoints: 27 on time, 14 late, 15 missing; late: {day[2]}; "
        f"missing: {day[1]}, {today}"
    )


def test_status_report_names_the_first_day_and_an_empty_root(tmp_path: Path) -> None:
    report = ledger.status_report(str(tmp_path), days=14, today=DAY, first_day=DAY)
    lines = report.splitlines()
    assert lines[0].endswith(f"; history starts {DAY} (MSPO_FIRST_DAY)")
    assert len([line for line in lines if line.startswith(f"{DAY:%a} {DAY}")]) == 1
    assert lines[-1].startswith(f"nothing is stored under {tmp_path}")
