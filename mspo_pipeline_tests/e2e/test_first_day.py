"""``MSPO_FIRST_DAY``: the first partition of every asset, read when the code location loads."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mspo_pipeline import demo
from mspo_pipeline.lib.catalog import endpoint
from mspo_pipeline.lib.days import DEFAULT_FIRST_DAY, FIRST_DAY_ENV, first_day

TODAY = dt.date(2026, 11, 30)
FIRST_PARTITIONS = """
from mspo_pipeline.definitions import defs
graph = defs().resolve_asset_graph()
firsts = {graph.get(k).partitions_def.get_first_partition_key() for k in graph.get_all_asset_keys()}
job = defs().resolve_job_def("mspo_daily")
print(sorted(firsts), job.partitions_def.get_first_partition_key())
"""


def load_definitions(value: str | None) -> subprocess.CompletedProcess[str]:
    """Load the code location in a fresh interpreter, as ``dagster dev`` would, with the
    variable set to ``value`` (or unset)."""
    env = {k: v for k, v in os.environ.items() if k != FIRST_DAY_ENV}
    if value is not None:
        env[FIRST_DAY_ENV] = value
    return subprocess.run(
        [sys.executable, "-c", FIRST_PARTITIONS],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_every_partition_starts_on_the_given_day() -> None:
    loaded = load_definitions("2026-11-25")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == ["['2026-11-25']", "2026-11-25"]


def test_unset_starts_on_the_projects_first_day() -> None:
    loaded = load_definitions(None)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split()[0] == f"['{DEFAULT_FIRST_DAY}']"


def test_a_bad_value_stops_the_load_with_the_reason() -> None:
    loaded = load_definitions("25/11/2026")
    assert loaded.returncode != 0
    assert "MSPO_FIRST_DAY='25/11/2026' is not a date" in loaded.stderr
    assert "YYYY-MM-DD" in loaded.stderr


@pytest.mark.parametrize("value", ["", "  ", None])
def test_empty_is_the_default(value: str | None) -> None:
    assert first_day(value, TODAY) == DEFAULT_FIRST_DAY


def test_a_day_is_taken_as_given() -> None:
    assert first_day(" 2026-11-30 ", TODAY) == TODAY


@pytest.mark.parametrize("value", ["20261130", "2026-11-31", "today", "2026-11-30T00:00"])
def test_not_a_date_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"MSPO_FIRST_DAY=.* is not a date"):
        first_day(value, TODAY)


def test_a_future_day_is_refused() -> None:
    with pytest.raises(ValueError, match=r"'2026-12-01' is in the future \(today is 2026-11-30"):
        first_day("2026-12-01", TODAY)


def test_the_demo_starts_where_its_history_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FIRST_DAY_ENV, raising=False)
    today = demo.today_in_malaysia().isoformat()
    assert demo.demo_first_day(tmp_path) == today  # nothing stored: today, no missing days
    earlier = "2026-11-03"
    path = tmp_path / endpoint("states").raw_key("20261103")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert demo.demo_first_day(tmp_path) == earlier
    monkeypatch.setenv(FIRST_DAY_ENV, "2026-11-10")
    assert demo.demo_first_day(tmp_path) == "2026-11-10"
