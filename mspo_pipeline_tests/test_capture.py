import datetime as dt

import pytest

from mspo_pipeline.lib.capture import (
    CaptureTiming,
    LateCaptureRefusedError,
    LatePolicy,
    check_late_policy,
    is_past,
    partition_date,
    server_time,
    today_in_malaysia,
)

FALLBACK = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def test_snapshot_date_is_the_malaysian_day() -> None:
    # 17:30 UTC on the 21st is 01:30 on the 22nd in Kuala Lumpur (UTC+8).
    timing = CaptureTiming(dt.date(2026, 11, 21), dt.datetime(2026, 11, 21, 17, 30, tzinfo=dt.UTC))
    assert timing.snapshot_date == dt.date(2026, 11, 22)
    assert timing.lag_days == 1
    assert timing.late


def test_on_time_capture() -> None:
    timing = CaptureTiming(dt.date(2026, 11, 22), dt.datetime(2026, 11, 21, 22, 0, tzinfo=dt.UTC))
    assert timing.lag_days == 0
    assert not timing.late


def test_server_time_reads_the_date_header() -> None:
    parsed = server_time("Fri, 20 Nov 2026 01:02:03 GMT", FALLBACK)
    assert parsed == dt.datetime(2026, 11, 20, 1, 2, 3, tzinfo=dt.UTC)


@pytest.mark.parametrize("header", [None, "", "not a date", "Fri, 20 Nov 2026 01:02:03"])
def test_server_time_falls_back_to_our_clock(header: str | None) -> None:
    assert server_time(header, FALLBACK) == FALLBACK


def test_refuse_policy_names_the_endpoint_and_the_way_out() -> None:
    timing = CaptureTiming(dt.date(2026, 11, 19), dt.datetime(2026, 11, 22, 1, tzinfo=dt.UTC))
    with pytest.raises(LateCaptureRefusedError, match=r"references/states.*3 day.*allow"):
        check_late_policy(timing, LatePolicy.REFUSE, endpoint_path="references/states")
    check_late_policy(timing, LatePolicy.ALLOW, endpoint_path="references/states")


def test_refuse_policy_lets_on_time_captures_through() -> None:
    timing = CaptureTiming(dt.date(2026, 11, 22), dt.datetime(2026, 11, 22, 1, tzinfo=dt.UTC))
    check_late_policy(timing, LatePolicy.REFUSE, endpoint_path="references/states")


def test_past_partitions() -> None:
    now = dt.datetime(2026, 11, 22, 1, tzinfo=dt.UTC)  # 09:00 in Kuala Lumpur
    assert today_in_malaysia(now) == dt.date(2026, 11, 22)
    assert is_past("2026-11-21", now)
    assert not is_past("2026-11-22", now)


def test_bad_partition_key_is_named() -> None:
    with pytest.raises(ValueError, match="'20261122'"):
        partition_date("20261122")
