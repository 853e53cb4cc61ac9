"""Every fault the emulator injects, observed from the client's side of a real socket."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from mspo_pipeline.emulator.faults import Fault
from mspo_pipeline.lib.catalog import ENDPOINTS_BY_NAME
from mspo_pipeline_tests.conftest import fetch

SPOC = ENDPOINTS_BY_NAME["spoc_smallholders"]
OSH = ENDPOINTS_BY_NAME["osh_smallholders"]


def _records(body: bytes, *keys: str) -> list[dict]:
    document = json.loads(body)
    for key in keys:
        document = document[key]
    return document


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_for_the_next_n_requests_then_normal_service(emulator, status):
    emulator.inject("spoc_smallholders", "server_error", times=2, status=status)
    url = emulator.url("spoc_smallholders")

    replies = [fetch(url) for _ in range(3)]

    assert [r.status for r in replies] == [status, status, 200]
    assert json.loads(replies[0].body)["error"]["status"] == status
    assert replies[2].body == emulator.body("spoc_smallholders")


def test_rate_limit_says_when_to_retry(emulator):
    emulator.inject("osh/all-smallholder", "rate_limited", retry_after=7)

    reply = fetch(emulator.url("osh_smallholders"))

    assert reply.status == 429
    assert reply.headers["Retry-After"] == "7"
    assert fetch(emulator.url("osh_smallholders")).status == 200


def test_a_fault_on_one_endpoint_leaves_the_others_alone(emulator):
    emulator.inject("spoc/zones", "server_error", status=503)

    assert fetch(emulator.url("states")).status == 200
    assert fetch(emulator.url("zones")).status == 503


def test_a_fault_on_every_endpoint(emulator):
    emulator.inject("*", "server_error", times=2, status=502)

    assert fetch(emulator.url("states")).status == 502
    assert fetch(emulator.url("gm_smallholders")).status == 502
    assert fetch(emulator.url("states")).status == 200


def test_slow_response_times_out_a_client_that_will_not_wait(emulator):
    emulator.inject("states", "slow", delay=1.5)

    with pytest.raises(TimeoutError):
        fetch(emulator.url("states"), timeout=0.2)


def test_slow_body_still_arrives_whole(emulator):
    emulator.inject("zones", "slow", delay=0.0, body_delay=0.2)

    reply = fetch(emulator.url("zones"))

    assert reply.status == 200
    assert reply.body == emulator.body("zones")


def test_cut_connection_delivers_less_than_the_promised_length(emulator):
    emulator.inject("spoc_smallholders", "cut_connection", fraction=0.3)
    connection = http.client.HTTPConnection(emulator.root_url.removeprefix("http://"), timeout=10)
    connection.request("GET", "/api/" + SPOC.path)
    response = connection.getresponse()

    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    connection.close()

    promised = int(response.getheader("Content-Length", "0"))
    assert promised == len(emulator.body("spoc_smallholders"))
    assert 0 < len(cut.value.partial) < promised


def test_cut_connection_of_a_gzipped_body(emulator):
    emulator.inject("spoc_smallholders", "cut_connection", fraction=0.5)

    with pytest.raises(http.client.IncompleteRead):
        fetch(emulator.url("spoc_smallholders"), headers={"Accept-Encoding": "gzip"})


def test_truncated_json_has_a_consistent_length_and_does_not_parse(emulator):
    emulator.inject("spoc_smallholders", "truncated_json", fraction=0.5)
    whole = emulator.body("spoc_smallholders")

    reply = fetch(emulator.url("spoc_smallholders"))

    assert reply.status == 200
    assert int(reply.headers["Content-Length"]) == len(reply.body) == len(whole) // 2
    assert whole.startswith(reply.body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.body)


def test_malformed_json_is_complete_but_invalid(emulator):
    emulator.inject("states", "malformed_json")

    reply = fetch(emulator.url("states"))

    assert reply.status == 200
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.body)


def test_html_page_with_status_200(emulator):
    emulator.inject("spoc_smallholders", "html")

    reply = fetch(emulator.url("spoc_smallholders"))

    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.body.lstrip().lower().startswith(b"<!doctype html>")


@pytest.mark.parametrize("name", ["spoc_smallholders", "osh_smallholders", "zones"])
def test_empty_result_list_keeps_the_envelope(emulator, name):
    endpoint = ENDPOINTS_BY_NAME[name]
    emulator.inject(name, "empty")

    body = fetch(emulator.url(name)).body

    assert _records(body, *endpoint.records_at) == []
    if endpoint.records_at != ("data",):
        assert "page_size" in json.loads(body)["data"]


def test_missing_field_is_missing_from_every_record(emulator):
    emulator.inject("spoc_smallholders", "missing_field", field="mpob_no")
    emulator.inject("spoc_smallholders", "missing_field")

    named = _records(fetch(emulator.url("spoc_smallholders")).body, *SPOC.records_at)
    default = _records(fetch(emulator.url("spoc_smallholders")).body, *SPOC.records_at)

    assert named and all(list(r) == [f for f in SPOC.fields if f != "mpob_no"] for r in named)
    assert default and all("entity_name" not in r for r in default)


def test_extra_field_is_appended_to_every_record(emulator):
    emulator.inject("osh_smallholders", "extra_field", field="plot_polygon", value="POLYGON EMPTY")

    records = _records(fetch(emulator.url("osh_smallholders")).body, *OSH.records_at)

    assert records
    assert all(list(r) == [*OSH.fields, "plot_polygon"] for r in records)
    assert {r["plot_polygon"] for r in records} == {"POLYGON EMPTY"}


def test_type_change_sends_numbers_as_strings_and_strings_as_numbers(emulator):
    emulator.inject("spoc_smallholders", "type_change")
    emulator.inject("spoc_smallholders", "type_change", field="planted_area")
    truth = emulator.records("spoc_smallholders")

    ids_as_text = _records(fetch(emulator.url("spoc_smallholders")).body, *SPOC.records_at)
    areas_as_numbers = _records(fetch(emulator.url("spoc_smallholders")).body, *SPOC.records_at)

    assert [r["stateId"] for r in ids_as_text] == [str(r["stateId"]) for r in truth]
    assert all(isinstance(r["planted_area"], float | None) for r in areas_as_numbers)
    assert any(isinstance(r["planted_area"], float) for r in areas_as_numbers)


def test_records_under_the_wrong_key(emulator):
    emulator.inject("spoc_smallholders", "wrong_key")
    emulator.inject("osh_smallholders", "wrong_key")
    emulator.inject("states", "wrong_key", records_at="data.rows")

    spoc = json.loads(fetch(emulator.url("spoc_smallholders")).body)["data"]
    osh = json.loads(fetch(emulator.url("osh_smallholders")).body)["data"]
    states = json.loads(fetch(emulator.url("states")).body)["data"]

    assert "results" not in spoc and len(spoc["data"]) == len(emulator.records(SPOC.name))
    assert "data" not in osh and len(osh["results"]) == len(emulator.records(OSH.name))
    assert len(states["rows"]) == 16


def test_faults_are_used_in_the_order_they_were_queued(emulator):
    emulator.inject("states", "server_error", status=500)
    emulator.inject("states", "rate_limited")

    assert [fetch(emulator.url("states")).status for _ in range(3)] == [500, 429, 200]


def test_control_endpoints_over_http(emulator):
    control = emulator.root_url + "/_emulator"
    queued = fetch(
        control + "/faults",
        method="POST",
        body=json.dumps(
            {"endpoint": "spoc/spocs", "fault": "server_error", "status": 502}
        ).encode(),
    )
    pending = json.loads(fetch(control + "/faults").body)["faults"]
    failed = fetch(emulator.url("spocs"))
    fetch(
        control + "/faults", method="POST", body=b'{"endpoint": "*", "fault": "html", "times": 5}'
    )
    cleared = json.loads(fetch(control + "/faults", method="DELETE").body)
    moved = fetch(control + "/date", method="POST", body=b'{"date": "2027-01-15"}')
    status = json.loads(fetch(control).body)

    assert queued.status == 201
    assert pending == [{"endpoint": "spocs", "fault": "server_error", "times": 1, "status": 502}]
    assert failed.status == 502
    assert cleared == {"cleared": 1}
    assert fetch(emulator.url("states")).status == 200
    assert json.loads(moved.body) == {"date": "2027-01-15"}
    assert status["date"] == "2027-01-15" and status["faults"] == []
    assert emulator.date.isoformat() == "2027-01-15"


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        ({"endpoint": "states", "fault": "explode"}, "unknown fault 'explode'"),
        ({"endpoint": "nowhere", "fault": "html"}, "no endpoint 'nowhere'"),
        ({"endpoint": "states", "fault": "html", "status": 500}, "takes no parameters"),
        ({"endpoint": "states", "fault": "empty", "times": 0}, "times must be a positive"),
    ],
)
def test_bad_fault_requests_are_refused_with_a_reason(emulator, request_body, message):
    reply = fetch(
        emulator.root_url + "/_emulator/faults",
        method="POST",
        body=json.dumps(request_body).encode(),
    )

    assert reply.status == 400
    assert message in json.loads(reply.body)["error"]["message"]
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        params = {k: v for k, v in request_body.items() if k not in ("endpoint", "fault", "times")}
        emulator.inject(
            request_body["endpoint"],
            request_body["fault"],
            times=request_body.get("times", 1),
            **params,
        )


SLOW_S = 0.3
SMOKE_PARAMS: dict[Fault, dict[str, float]] = {Fault.SLOW: {"delay": SLOW_S}}
"""Parameters that make a fault's effect quick to see; every other fault uses its defaults."""


@pytest.mark.parametrize("fault", list(Fault), ids=[fault.value for fault in Fault])
def test_every_fault_changes_what_a_client_gets(emulator, fault):
    """Each kind, a new one too, with no test of its own yet: the client sees another status,
    another body, a broken transfer or a delay, never the normal answer on time."""
    normal = emulator.body("spoc_smallholders")
    emulator.inject("spoc_smallholders", fault.value, **SMOKE_PARAMS.get(fault, {}))
    started = time.monotonic()
    try:
        reply = fetch(emulator.url("spoc_smallholders"))
    except http.client.HTTPException:  # the body stopped short of its Content-Length
        return
    late = time.monotonic() - started >= SLOW_S
    assert reply.status != 200 or reply.body != normal or late
