"""The pipeline's day: partition keys, folder names and the Kuala Lumpur clock."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mspo_pipeline.lib.days import (
    MALAYSIA,
    folder_day,
    folder_name,
    is_past,
    partition_date,
    partition_folder,
    today_in_malaysia,
)


@given(st.dates(min_value=dt.date(1000, 1, 1)))
def test_a_day_and_its_folder_name_round_trip(day: dt.date) -> None:
    assert folder_day(folder_name(day)) == day
    assert partition_folder(day.isoformat()) == folder_name(day)
    assert partition_date(day.isoformat()) == day


@pytest.mark.parametrize("name", ["2026112", "202611220", "20261301", "2026-11-22", "abcdefgh", ""])
def test_a_name_that_is_not_a_partition_folder_is_none(name: str) -> None:
    assert folder_day(name) is None


@pytest.mark.parametrize("key", ["20261122", "2026-11-31", "yesterday", ""])
def test_a_bad_partition_key_is_named(key: str) -> None:
    with pytest.raises(ValueError, match=f"partition key {key!r} is not a day"):
        partition_date(key)


def test_the_day_turns_at_midnight_in_kuala_lumpur() -> None:
    before = dt.datetime(2026, 11, 21, 15, 59, 59, tzinfo=dt.UTC)  # 23:59:59 in KL
    after = before + dt.timedelta(seconds=1)
    assert today_in_malaysia(before) == dt.date(2026, 11, 21)
    assert today_in_malaysia(after) == dt.date(2026, 11, 22)
    assert is_past("2026-11-21", after) and not is_past("2026-11-22", after)
    assert MALAYSIA.key == "Asia/Kuala_Lumpur"
