import datetime as dt

import pytest
from requests.structures import CaseInsensitiveDict

from mspo_pipeline.lib.api import ResponseHead
from mspo_pipeline.lib.days import is_past, partition_date, today_in_malaysia
from mspo_pipeline.lib.late_capture import (
    CaptureGate,
    CaptureTiming,
    LateCaptureRefusedError,
    LatePolicy,
    check_late_policy,
    server_time,
    stored_capture,
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


STATES_URL = "https://api.example.test/api/references/states"


def test_refuse_policy_names_endpoint_partition_url_status_and_the_way_out() -> None:
    timing = CaptureTiming(dt.date(2026, 11, 19), dt.datetime(2026, 11, 22, 1, tzinfo=dt.UTC))
    with pytest.raises(LateCaptureRefusedError) as raised:
        check_late_policy(timing, LatePolicy.REFUSE, endpoint="states", url=STATES_URL, status=200)
    message = str(raised.value)
    assert message.startswith("endpoint 'states' (partition 2026-11-19): ")
    assert "3 day(s) in the past" in message and "(2026-11-22," in message
    assert f"URL {STATES_URL}, HTTP 200." in message
    assert "MSPO_LATE_CAPTURE=allow" in message
    error = raised.value
    assert (error.endpoint, error.partition, error.url, error.status) == (
        "states",
        "2026-11-19",
        STATES_URL,
        200,
    )
    check_late_policy(timing, LatePolicy.ALLOW, endpoint="states", url=STATES_URL, status=200)


def test_refuse_policy_lets_on_time_captures_through() -> None:
    timing = CaptureTiming(dt.date(2026, 11, 22), dt.datetime(2026, 11, 22, 1, tzinfo=dt.UTC))
    check_late_policy(timing, LatePolicy.REFUSE, endpoint="states", url=STATES_URL, status=200)


def head(date: str | None) -> ResponseHead:
    headers = CaseInsensitiveDict({"date": date} if date is not None else {})
    return ResponseHead("states", "2026-11-20", STATES_URL, 200, headers)


def test_gate_dates_the_response_by_the_server_clock_and_judges_every_retry() -> None:
    gate = CaptureGate("2026-11-20", LatePolicy.REFUSE, clock=lambda: FALLBACK)
    with pytest.raises(RuntimeError, match="on_headers"):
        gate.timing  # noqa: B018 - nothing judged yet
    gate(head("Fri, 20 Nov 2026 01:02:03 GMT"))
    assert gate.timing.captured_at == dt.datetime(2026, 11, 20, 1, 2, 3, tzinfo=dt.UTC)
    assert not gate.timing.late
    # A retry's response is judged again: the day may have turned since the first attempt.
    with pytest.raises(LateCaptureRefusedError, match=r"partition 2026-11-20\): .*1 day"):
        gate(head("Fri, 20 Nov 2026 16:00:00 GMT"))  # 00:00 on the 21st in Kuala Lumpur


def test_gate_falls_back_to_our_clock_without_a_date_header() -> None:
    ours = dt.datetime(2026, 11, 23, 2, tzinfo=dt.UTC)
    allowing = CaptureGate("2026-11-20", LatePolicy.ALLOW, clock=lambda: ours)
    allowing(head(None))
    assert (allowing.timing.captured_at, allowing.timing.lag_days) == (ours, 3)
    refusing = CaptureGate("2026-11-20", LatePolicy.REFUSE, clock=lambda: ours)
    with pytest.raises(LateCaptureRefusedError):
        refusing(head("not a date"))


def test_gate_rejects_a_bad_partition_key_before_any_request() -> None:
    with pytest.raises(ValueError, match="'20261120'"):
        CaptureGate("20261120", LatePolicy.ALLOW)


def test_stored_capture_is_typed_like_a_fresh_one() -> None:
    footer = {
        "captured_at": "2026-11-22T01:00:00+00:00",
        "snapshot_date": "2026-11-22",
        "lag_days": "2",
        "late_capture": "true",
        "source_url": STATES_URL,
        "pipeline_version": "1.0",
    }
    assert stored_capture(footer, "2026-11-20") == {
        "captured_at": "2026-11-22T01:00:00+00:00",
        "snapshot_date": "2026-11-22",
        "lag_days": 2,
        "late_capture": True,
        "source_url": STATES_URL,
    }
    on_time = {**footer, "lag_days": "0", "late_capture": "false"}
    facts = stored_capture(on_time, "2026-11-22")
    assert facts["late_capture"] is False and facts["lag_days"] == 0


def test_stored_capture_derives_what_an_older_footer_lacks() -> None:
    older = {"captured_at": "2026-11-21T17:30:00+00:00", "late_capture": "unknown"}
    assert stored_capture(older, "2026-11-20") == {
        "captured_at": "2026-11-21T17:30:00+00:00",
        "snapshot_date": "2026-11-22",  # 01:30 on the 22nd in Kuala Lumpur
        "lag_days": 2,
        "late_capture": True,
        "source_url": "unknown",
    }
    # Nothing to go on: the typed keys are left out rather than filled with text.
    assert stored_capture({}, "2026-11-20") == {
        "captured_at": "unknown",
        "snapshot_date": "unknown",
        "source_url": "unknown",
    }


def test_past_partitions() -> None:
    now = dt.datetime(2026, 11, 22, 1, tzinfo=dt.UTC)  # 09:00 in Kuala Lumpur
    assert today_in_malaysia(now) == dt.date(2026, 11, 22)
    assert is_past("2026-11-21", now)
    assert not is_past("2026-11-22", now)


def test_bad_partition_key_is_named() -> None:
    with pytest.raises(ValueError, match="'20261122'"):
        partition_date("20261122")
