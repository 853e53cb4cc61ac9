"""The emulator over real HTTP: shapes, the trailing ``?``, reference tables, data, evolution."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import math
import re
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from mspo_pipeline.emulator import generator as gen
from mspo_pipeline.emulator import references as ref
from mspo_pipeline.lib.catalog import ENDPOINTS, ENDPOINTS_BY_NAME, Kind
from mspo_pipeline_tests.conftest import EMULATOR_DATE, EMULATOR_SCALE, EMULATOR_SEED, fetch

SMALLHOLDERS = [e for e in ENDPOINTS if e.kind is Kind.SMALLHOLDERS]
EXPECTED_REFERENCE_ROWS = {
    "states": (16, 16),
    "countries": (200, 260),
    "cb": (25, 35),
    "audit_scopes": (8, 12),
    "audit_types": (4, 6),
    "entity_types": (8, 12),
    "groupmanagers": (40, 60),
    "zones": (11, 11),
    "zone_state": (16, 24),
    "spocs": (162, 162),
    "daerah": (140, 170),
}


def records_of(body: bytes, records_at: tuple[str, ...]) -> list[dict[str, Any]]:
    document = json.loads(body)
    for key in records_at:
        document = document[key]
    assert isinstance(document, list)
    return document


def by_id(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {r["entity_smallholder_id"]: r for r in records}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_every_endpoint_answers_with_the_documented_shape(emulator, endpoint):
    reply = fetch(emulator.url(endpoint.name))

    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/json")
    document = json.loads(reply.body)
    records = records_of(reply.body, endpoint.records_at)
    assert records
    assert all(list(record) == list(endpoint.fields) for record in records)
    if endpoint.kind is Kind.REFERENCE:
        assert list(document) == ["data"]
        low, high = EXPECTED_REFERENCE_ROWS[endpoint.name]
        assert low <= len(records) <= high
    else:
        expected_page_size = 10 if endpoint.name == "osh_smallholders" else "10"
        assert document["data"]["page_size"] == expected_page_size
        assert list(document["data"]) == ["page_size", endpoint.records_at[-1]]
        full = gen.FULL_SCALE_ROWS[endpoint.name] * EMULATOR_SCALE
        assert 0.8 * full <= len(records) <= 1.3 * full + 10


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.trailing_question_mark], ids=lambda e: e.name
)
def test_spoc_reference_endpoints_need_the_literal_trailing_question_mark(emulator, endpoint):
    bare = f"{emulator.base_url}/{endpoint.path}"

    without = fetch(bare)
    with_query = fetch(bare + "?page=1")
    with_mark = fetch(bare + "?")

    assert without.status == 404
    assert json.loads(without.body)["error"]["status"] == 404
    assert with_query.status == 404
    assert with_mark.status == 200
    assert f"GET /api/{endpoint.path}? HTTP/1.1" in emulator.request_lines


def test_other_endpoints_accept_and_ignore_query_parameters(emulator):
    spoc = ENDPOINTS_BY_NAME["spoc_smallholders"]
    plain = fetch(f"{emulator.base_url}/{spoc.path}")
    paged = fetch(f"{emulator.base_url}/{spoc.path}?page=3&pageSize=10")
    states = fetch(f"{emulator.base_url}/references/states?")

    assert plain.status == paged.status == states.status == 200
    assert plain.body == paged.body


@pytest.mark.parametrize("path", ["/api/references/nope", "/api/spoc", "/nothing", "/api/"])
def test_unknown_paths_answer_404_with_a_json_error(emulator, path):
    reply = fetch(emulator.root_url + path)

    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("application/json")
    assert "message" in json.loads(reply.body)["error"]


def test_reference_tables_agree_with_the_docs(emulator):
    def table(name: str) -> list[dict[str, Any]]:
        return records_of(fetch(emulator.url(name)).body, ("data",))

    states = {r["stateId"]: r["state"] for r in table("states")}
    zones = {r["zoneId"]: r["zone"] for r in table("zones")}
    zone_state = table("zone_state")
    pairs = {(r["zoneId"], r["stateId"]) for r in zone_state}
    spocs = {r["spocCode"]: r for r in table("spocs")}
    daerah = {r["daerahId"]: r for r in table("daerah")}
    cb = table("cb")
    countries = {r["countryCode"]: r["country"] for r in table("countries")}

    assert states[1] == "Johor" and states[10] == "Sabah" and states[16] == "Putrajaya"
    assert list(states) == list(range(1, 17))
    assert zones[1] == "Zon Utara 1" and zones[8] == "Zon Timur 2" and zones[11] == "Zon Sarawak"
    assert zone_state[:2] == [
        {"zoneId": 1, "stateId": 8, "state": "Perlis"},
        {"zoneId": 1, "stateId": 2, "state": "Kedah"},
    ]
    assert {(2, 9), (2, 7), (1, 2), (2, 2), (10, 15), (3, 16), (3, 14), (11, 11)} <= pairs
    assert {s for _, s in pairs} == set(states)
    assert all(r["state"] == states[r["stateId"]] for r in zone_state)
    assert (spocs["A1"]["spocId"], spocs["A2"]["spocId"], spocs["B1"]["spocId"]) == (5, 6, 28)
    prefixes: dict[str, set[int]] = {}
    for code, row in spocs.items():
        prefixes.setdefault(code[0], set()).add(row["zoneId"])
    assert prefixes == {
        "A": {1}, "B": {2}, "N": {2}, "M": {2}, "C": {3}, "J": {4, 5}, "S": {6, 7},
        "Q": {8, 9}, "K": {10}, "P": {10}, "T": {11}, "D": {11},
    }  # fmt: skip
    assert {f"A{n}" for n in range(1, 24)} | {"K3", "P1", "T3", "D2", "J43", "Q32"} <= set(spocs)
    assert daerah[4] == {"daerahId": 4, "daerah": "KOTA TINGGI", "stateId": 1}
    assert {r["stateId"] for r in daerah.values()} == set(states)
    assert cb[:2] == [
        {"cbId": 1, "cbCode": "CB001", "cbName": "SIRIM QAS International Sdn Bhd"},
        {"cbId": 2, "cbCode": "CB002", "cbName": "SGS (Malaysia) Sdn Bhd"},
    ]
    assert countries["MY"] == "Malaysia"


@pytest.mark.parametrize("name", sorted(gen.SAMPLE_RECORDS))
def test_the_docs_sample_records_are_served_verbatim(emulator, name):
    sample = dict(gen.SAMPLE_RECORDS[name])
    body = fetch(emulator.url(name)).body
    later = emulator.body(name, dt.date(2028, 6, 1))

    assert (
        by_id(records_of(body, ENDPOINTS_BY_NAME[name].records_at))[sample["entity_smallholder_id"]]
        == sample
    )
    assert json.dumps(sample, separators=(",", ":")).encode() in body
    assert json.dumps(sample, separators=(",", ":")).encode() in later


def test_same_seed_and_date_give_byte_identical_bodies_across_processes(emulator):
    spoc = emulator.body("spoc_smallholders")
    script = (
        "import datetime, hashlib, sys\n"
        "from mspo_pipeline.emulator import generator as g\n"
        "from mspo_pipeline.lib.catalog import ENDPOINTS_BY_NAME as E\n"
        f"d = g.Dataset({EMULATOR_SEED}, {EMULATOR_SCALE})\n"
        f"frame = d.frame('spoc_smallholders', datetime.date.fromisoformat('{EMULATOR_DATE}'))\n"
        "sys.stdout.write(hashlib.sha256(g.encode(E['spoc_smallholders'], frame)).hexdigest())\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )

    assert fetch(emulator.url("spoc_smallholders")).body == spoc
    assert other.stdout == hashlib.sha256(spoc).hexdigest()


def test_different_seeds_give_different_registers(emulator, emulator_factory):
    other = emulator_factory(seed=8)

    for endpoint in SMALLHOLDERS:
        assert fetch(other.url(endpoint.name)).body != fetch(emulator.url(endpoint.name)).body
    assert fetch(other.url("states")).body == fetch(emulator.url("states")).body


def test_gzip_and_content_length(emulator):
    url = emulator.url("spoc_smallholders")

    plain = fetch(url)
    zipped = fetch(url, headers={"Accept-Encoding": "gzip, deflate"})
    refused = fetch(url, headers={"Accept-Encoding": "gzip;q=0"})

    assert "Content-Encoding" not in plain.headers
    assert int(plain.headers["Content-Length"]) == len(plain.body)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert int(zipped.headers["Content-Length"]) == len(zipped.body) < len(plain.body)
    assert gzip.decompress(zipped.body) == plain.body
    assert "Content-Encoding" not in refused.headers


def test_the_served_date_can_be_pinned_and_moved(emulator):
    first = fetch(emulator.url("spoc_smallholders")).body
    emulator.set_date(dt.date(2027, 3, 1))
    later = fetch(emulator.url("spoc_smallholders")).body

    assert first == emulator.body("spoc_smallholders", EMULATOR_DATE)
    assert later != first
    with pytest.raises(ValueError, match="serves dates from 2026-01-01"):
        emulator.set_date(dt.date(2025, 12, 31))


def _diff(endpoint_name: str, before: bytes, after: bytes) -> gen.RegisterChanges:
    """An independent, plain-Python reading of what changed between two bodies."""
    records_at = ENDPOINTS_BY_NAME[endpoint_name].records_at
    a, b = by_id(records_of(before, records_at)), by_id(records_of(after, records_at))
    newly_deleted = {i for i in a.keys() & b.keys() if b[i].get("deleted") and not a[i]["deleted"]}
    changed = {}
    for i in a.keys() & b.keys() - newly_deleted:
        fields = frozenset(f for f in a[i] if a[i][f] != b[i][f])
        if fields:
            changed[i] = fields
    return gen.RegisterChanges(
        new=frozenset(b.keys() - a.keys()),
        removed=frozenset((a.keys() - b.keys()) | newly_deleted),
        changed=changed,
    )


@pytest.mark.parametrize(
    ("date_a", "date_b"),
    [(EMULATOR_DATE, dt.date(2027, 2, 20)), (EMULATOR_DATE, dt.date(2026, 11, 21))],
)
def test_changes_between_agrees_with_the_served_bodies(emulator, date_a, date_b):
    truth = gen.changes_between(EMULATOR_SEED, EMULATOR_SCALE, date_a, date_b)

    for endpoint in SMALLHOLDERS:
        emulator.set_date(date_a)
        before = fetch(emulator.url(endpoint.name)).body
        emulator.set_date(date_b)
        after = fetch(emulator.url(endpoint.name)).body
        observed = _diff(endpoint.name, before, after)
        assert truth[endpoint.name].new == observed.new
        assert truth[endpoint.name].removed == observed.removed
        assert dict(truth[endpoint.name].changed) == observed.changed


def test_the_register_evolves_like_a_live_one(emulator):
    later = dt.date(2027, 2, 20)
    spoc = ENDPOINTS_BY_NAME["spoc_smallholders"]
    before = by_id(records_of(emulator.body(spoc.name, EMULATOR_DATE), spoc.records_at))
    after = by_id(records_of(emulator.body(spoc.name, later), spoc.records_at))
    changes = gen.changes_between(EMULATOR_SEED, EMULATOR_SCALE, EMULATOR_DATE, later)[spoc.name]

    new, gone = after.keys() - before.keys(), before.keys() - after.keys()
    status_changes = [
        i for i in before.keys() & after.keys()
        if before[i]["cert_status"] != after[i]["cert_status"]
    ]  # fmt: skip
    soft_deleted = [
        i for i in before.keys() & after.keys() if after[i]["deleted"] and not before[i]["deleted"]
    ]
    sample_id = gen.SAMPLE_RECORDS[spoc.name]["entity_smallholder_id"]
    assert len(new) >= 10 and min(new) > max(before.keys() - {sample_id})
    assert all(after[i]["created_at"].startswith(("2026-11", "2026-12", "2027")) for i in new)
    assert len(status_changes) >= 10
    for i in set(status_changes) - changes.removed:
        assert after[i]["record_status"] == "UPDATED"
        assert after[i]["updated_at"] > before[i]["updated_at"]
        assert changes.changed[i] >= {"cert_status", "updated_at"}
    assert soft_deleted and set(soft_deleted) <= changes.removed
    assert gone and gone <= changes.removed


def _rate_ok(count: int, total: int, rate: float) -> bool:
    """``count`` out of ``total`` is within four standard deviations (+1) of ``rate``."""
    expected = total * rate
    return abs(count - expected) <= 4 * math.sqrt(total * rate * (1 - rate)) + 1


@pytest.fixture(scope="module")
def register_sample() -> dict[str, list[dict[str, Any]]]:
    """The three registers at a tenth of full scale, for rates that need more than 3k rows."""
    from mspo_pipeline.emulator.server import EmulatorServer

    with EmulatorServer(scale=0.1, seed=EMULATOR_SEED, date=EMULATOR_DATE) as server:
        return {
            e.name: records_of(fetch(server.url(e.name)).body, e.records_at) for e in SMALLHOLDERS
        } | {
            name: records_of(fetch(server.url(name)).body, ("data",))
            for name in ("states", "zones", "zone_state", "spocs", "daerah", "groupmanagers")
        }


def test_smallholder_ids_point_into_the_reference_tables(register_sample):
    data = register_sample
    states = {r["stateId"]: r["state"] for r in data["states"]}
    zones = {r["zoneId"] for r in data["zones"]}
    covers = {(r["zoneId"], r["stateId"]) for r in data["zone_state"]}
    spoc_zone = {r["spocCode"]: r["zoneId"] for r in data["spocs"]}
    daerah_state = {r["daerahId"]: r["stateId"] for r in data["daerah"]}
    gm_codes = {r["gmCode"] for r in data["groupmanagers"]}

    for name in ("spoc_smallholders", "osh_smallholders", "gm_smallholders"):
        records = data[name]
        assert len({r["entity_smallholder_id"] for r in records}) == len(records)
        assert all(states[r["stateId"]] == r["state"] for r in records)
        known = [r for r in records if r["daerahId"] is not None]
        unknown = [r for r in known if r["daerahId"] not in daerah_state]
        assert all(r["daerahId"] >= gen.UNKNOWN_DAERAH_ID_BASE for r in unknown)
        assert all(daerah_state[r["daerahId"]] == r["stateId"] for r in known if r not in unknown)
        assert _rate_ok(len(unknown), len(records), gen.UNKNOWN_DAERAH_ID_RATE)
        assert _rate_ok(len(records) - len(known), len(records), gen.DAERAH_NULL_RATE[name])
        if "zoneId" in ENDPOINTS_BY_NAME[name].fields:
            assert {r["zoneId"] for r in records} <= zones
            outside = sum((r["zoneId"], r["stateId"]) not in covers for r in records)
            rate = gen.STATE_NOT_IN_ZONE_RATE if name == "spoc_smallholders" else 0
            assert _rate_ok(outside, len(records), rate)
    spoc = data["spoc_smallholders"]
    strangers = [r for r in spoc if r["spoc_code"] not in spoc_zone]
    assert {r["spoc_code"] for r in strangers} <= set(gen.UNKNOWN_SPOC_CODES)
    assert _rate_ok(len(strangers), len(spoc), gen.UNKNOWN_SPOC_CODE_RATE)
    assert all(spoc_zone[r["spoc_code"]] == r["zoneId"] for r in spoc if r not in strangers)
    assert {r["gm_code"] for r in data["gm_smallholders"]} <= gm_codes


PATTERNS = {
    "spoc_smallholders": {"track_id": r"OPMC\d{6}", "cert_no": r"MSPO-\d{1,3}/\d\d"},
    "gm_smallholders": {"track_id": r"GMPC\d{6}", "cert_no": r"MSPO-\d{1,3}/\d\d"},
    "osh_smallholders": {
        "track_id": r"MTS\d{7}",
        "cert_no": r"MYMS\d{8}",
        "entity_code": r"ORS\d{5}",
        "entity_name": r"(FELDA|FELCRA|RISDA|KESEDAR|KEJORA|KETENGAH|KEDA) [A-Z0-9 ]+",
    },
}
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def _gps_quirks(name: str, records: list[dict[str, Any]]) -> Counter[str]:
    """Counts of each GPS quirk; well-formed coordinates must lie inside the plot's state."""
    decimals = 5 if name == "osh_smallholders" else 6
    gps = re.compile(rf"\d{{1,3}}\.\d{{{decimals}}}")
    kinds: Counter[str] = Counter()
    for r in records:
        lat, long = r["gps_coordinate_lat"], r["gps_coordinate_long"]
        if "geolocation" in r:
            assert r["geolocation"] == (None if lat is None else f"{lat}, {long}")
        if lat is None:
            kinds["null"] += 1
        elif lat == "N/A":
            kinds["text"] += 1
        elif "." not in lat:
            kinds["no_decimal"] += 1
        elif float(lat) == 0:
            kinds["zero"] += 1
        elif float(lat) > 90:
            kinds["swapped"] += 1
        else:
            assert gps.fullmatch(lat) and gps.fullmatch(long)
            south, north, west, east = ref.STATE_BOXES[r["stateId"]]
            if r["entity_smallholder_id"] not in (73042, 474748):
                assert south <= float(lat) <= north and west <= float(long) <= east
    return kinds


@pytest.mark.parametrize("name", [e.name for e in SMALLHOLDERS])
def test_smallholder_gps_is_in_the_state_or_quirky_at_pinned_rates(register_sample, name):
    records = register_sample[name]
    kinds = _gps_quirks(name, records)

    assert _rate_ok(kinds["null"], len(records), gen.GPS_NULL_RATE)
    assert _rate_ok(kinds["text"], len(records), gen.GPS_TEXT_RATE)
    assert _rate_ok(kinds["no_decimal"], len(records), gen.GPS_NO_DECIMAL_RATE)
    assert _rate_ok(kinds["zero"], len(records), gen.GPS_ZERO_RATE)
    assert _rate_ok(kinds["swapped"], len(records), gen.GPS_SWAPPED_RATE)


@pytest.mark.parametrize("name", [e.name for e in SMALLHOLDERS])
def test_smallholder_fields_have_the_documented_formats_and_quirk_rates(register_sample, name):
    records = register_sample[name]
    n = len(records)
    commas = 0
    for r in records:
        for field, pattern in PATTERNS[name].items():
            assert re.fullmatch(pattern, r[field]), (field, r[field])
        assert re.fullmatch(TIMESTAMP, r["created_at"]) and re.fullmatch(TIMESTAMP, r["updated_at"])
        assert r["mpob_no"] is None or re.fullmatch(r"\d{12}", r["mpob_no"])
        assert re.fullmatch(r"\d+\.\d{4}", r["certified_area"])
        if re.fullmatch(r"\d+,\d\d", r["planted_area"]):
            commas += 1
        else:
            assert re.fullmatch(r"\d+\.\d{4}", r["planted_area"])
        assert r["cert_status"] in {s for s, _ in gen.STATUSES[name]}
    assert _rate_ok(commas, n, gen.AREA_DECIMAL_COMMA_RATE)
    later_created = sum(r["created_at"] > r["updated_at"] for r in records)
    assert later_created > n * gen.CREATED_AFTER_UPDATED_RATE * 0.5
    mpobs = Counter(r["mpob_no"] for r in records if r["mpob_no"] is not None)
    shared = sum(c for c in mpobs.values() if c > 1)
    assert shared > n * gen.MPOB_SHARED_RATE * (1 - gen.MPOB_NULL_RATE[name]) ** 2
    above = sum(
        float(r["certified_area"]) > float(r["planted_area"].replace(",", ".")) for r in records
    )
    assert _rate_ok(above, n, gen.CERTIFIED_ABOVE_PLANTED_RATE)
    if "deleted" in records[0]:
        exposure = gen.SOFT_DELETE_RATE * (EMULATOR_DATE - gen.EPOCH).days
        assert _rate_ok(sum(r["deleted"] for r in records), n, gen.DELETED_RATE + exposure)
        zone_names = dict(ref.ZONES)
        wrong_zone = sum(zone_names[r["zoneId"]] != r["zone"] for r in records)
        assert _rate_ok(wrong_zone, n, gen.ZONE_NAME_MISMATCH_RATE)


def test_an_endpoint_without_a_profile_fails_at_once_and_says_where_to_add_it(
    emulator_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalogue endpoint the emulator cannot serve answers 404 with the file to edit; before,
    its handler crashed and the client retried five times, blaming the API."""
    from mspo_pipeline.lib.api import MspoApiError, MspoClient

    without = {name: rows for name, rows in ref.REFERENCE_ROWS.items() if name != "countries"}
    monkeypatch.setattr(ref, "REFERENCE_ROWS", without)
    server = emulator_factory(date=EMULATOR_DATE - dt.timedelta(days=3))
    reply = fetch(server.url("countries"))
    assert reply.status == 404
    message = json.loads(reply.body)["error"]["message"]
    assert "no records for endpoint 'countries'" in message
    assert "emulator/references.py" in message
    before = len(server.request_lines)
    with MspoClient(server.base_url, backoff_base_s=0.0) as client, pytest.raises(MspoApiError):
        client.fetch(ENDPOINTS_BY_NAME["countries"], partition="2026-11-17")
    assert len(server.request_lines) - before == 1
