"""Parsing response bodies into frames: types, order, drift and bad bodies."""

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import catalog, records
from mspo_pipeline.lib.records import BadResponseError, ResponseContext, read_records, records_frame

SPOC = catalog.endpoint("spoc_smallholders")
OSH = catalog.endpoint("osh_smallholders")
STATES = catalog.endpoint("states")
URL = "http://127.0.0.1:1/api/spoc/get-spoc-list-public?page=1&pageSize=10"
CONTEXT = ResponseContext(endpoint=SPOC, url=URL, status=200, partition="2026-11-22")

SAMPLE = dict(SPOC.sample or {})


def spoc_body(records: list[Any]) -> bytes:
    return json.dumps({"data": {"page_size": "10", "results": records}}).encode()


def test_spoc_sample_keeps_json_types_and_api_order(tmp_path: Path) -> None:
    second = {**SAMPLE, "entity_smallholder_id": 73043, "deleted": True}
    body = tmp_path / "body.json"
    body.write_bytes(spoc_body([SAMPLE, second]))

    frame = read_records(body, SPOC, url=URL, status=200, partition="2026-11-22").frame

    assert frame.columns == list(SPOC.fields)
    assert frame.schema["entity_smallholder_id"] == pl.Int64
    assert frame.schema["planted_area"] == pl.String
    assert frame.schema["deleted"] == pl.Boolean
    assert frame.schema["daerahId"] == pl.Null  # null in every record: type unknown, kept
    assert frame.row(0, named=True) == SAMPLE
    assert frame["deleted"].to_list() == [False, True]


def test_osh_and_reference_shapes() -> None:
    osh = json.dumps({"data": {"page_size": 10, "data": [{"entity_code": "ORS15721"}]}}).encode()
    states = b'{"data": [{"stateId": 1, "state": "Johor"}, {"stateId": 2, "state": "Kedah"}]}'
    assert records_frame(osh, ResponseContext(OSH, URL, 200, None)).frame[
        "entity_code"
    ].to_list() == ["ORS15721"]
    assert records_frame(states, ResponseContext(STATES, URL, 200, None)).frame.to_dicts() == [
        {"stateId": 1, "state": "Johor"},
        {"stateId": 2, "state": "Kedah"},
    ]


def test_unknown_fields_are_kept_by_name_after_the_first_records_order() -> None:
    rows = [{"b": 1, "a": 2}, {"a": 3, "d": 5, "c": "new", "b": 4}]
    frame = records_frame(spoc_body(rows), CONTEXT).frame
    assert frame.columns == ["b", "a", "c", "d"]
    assert frame["c"].to_list() == [None, "new"]


PATTERN_NAMES = ("*", "^entity.*$", "a b")
"""Field names polars reads as every column (``*``) or a pattern (``^...$``) when passed to
``pl.col``, and the name with a space that a select duplicated when ``*`` was read as a pattern."""


@pytest.mark.parametrize("late", [False, True], ids=["fast path", "exact path"])
def test_field_names_polars_would_expand_are_kept_as_names(late: bool) -> None:
    record = {**SAMPLE, **{name: n for n, name in enumerate(PATTERN_NAMES)}}
    rows = [record] * 3 + ([{**record, "*": "now text"}] if late else [])
    frame = records_frame(spoc_body(rows), CONTEXT).frame
    assert frame.columns == [*SAMPLE, *PATTERN_NAMES]  # the first record's order
    assert frame["^entity.*$"].to_list() == [1] * len(rows)


def test_a_late_string_among_integers_makes_the_field_json_text() -> None:
    parsed = records_frame(spoc_body([{"x": 1}] * 500 + [{"x": "late string"}]), CONTEXT)
    assert parsed.json_text_fields == ("x",)
    assert parsed.frame.schema["x"] == pl.String
    assert parsed.frame["x"].to_list() == ["1"] * 500 + ['"late string"']


def test_conflicting_kinds_keep_each_values_json_text_as_sent() -> None:
    body = (
        b'{"data": {"results": ['
        b'{"id": 1, "area": 2.4300, "flag": true, "nested": {"k": [1, 2.50]}},'
        b'{"id": 2, "area": "2.4300", "flag": 3, "nested": 7},'
        b'{"id": 3, "area": 1.5E+2, "flag": null, "nested": null}]}}'
    )
    parsed = records_frame(body, CONTEXT)
    assert parsed.json_text_fields == ("area", "flag", "nested")
    assert parsed.frame.schema == pl.Schema(
        {"id": pl.Int64, "area": pl.String, "flag": pl.String, "nested": pl.String}
    )
    assert parsed.frame.to_dicts() == [
        {"id": 1, "area": "2.4300", "flag": "true", "nested": '{"k": [1, 2.50]}'},
        {"id": 2, "area": '"2.4300"', "flag": "3", "nested": "7"},
        {"id": 3, "area": "1.5E+2", "flag": None, "nested": None},
    ]
    assert [records.json_text_value(text) for text in parsed.frame["area"]] == [
        Decimal("2.4300"),
        "2.4300",
        Decimal("1.5E+2"),
    ]


def test_a_number_sent_as_a_string_in_some_records_stays_a_string() -> None:
    records_ = [{**SAMPLE, "stateId": 3}, {**SAMPLE, "stateId": "03"}]
    parsed = records_frame(spoc_body(records_), CONTEXT)
    assert parsed.frame["stateId"].to_list() == ["3", '"03"']


@pytest.mark.parametrize(
    ("values", "dtype", "stored"),
    [
        # The regressions of issue 10: each of these lost the whole day before.
        ([{"a": True}, True], pl.String, ['{"a": true}', "true"]),
        ([[1, 2], 3, [{"b": None}]], pl.String, ["[1, 2]", "3", '[{"b": null}]']),
        ([1, "1e400"], pl.String, ["1", "1e400"]),  # number text, unquoted below
        # One kind, but beyond what a native column holds exactly.
        (["12345678901234567890123"], pl.String, ["12345678901234567890123"]),
        (["0.1000000000000000055511151231257827"], pl.String, None),
        (["1e-320"], pl.String, ["1e-320"]),
        # A zero is a float, but pyarrow's tokenizer refuses the exponent it is written with.
        (["-0.0E+665", "1.5"], pl.String, ["-0.0E+665", "1.5"]),
        # Exact as native columns.
        (["9007199254740993", "-9223372036854775808"], pl.Int64, None),
        (["1.5E+2", "2.4300", "-0.0", "3"], pl.Float64, [150.0, 2.43, -0.0, 3.0]),
    ],
    ids=[
        "object-bool",
        "array-number-object",
        "1e400",
        "beyond-int64",
        "long-fraction",
        "subnormal",
        "zero-with-a-huge-exponent",
        "wide-int64",
        "exact-fractions",
    ],
)
def test_values_no_column_type_holds_are_kept_as_json_text(
    values: list[Any], dtype: pl.DataType, stored: list[Any] | None
) -> None:
    # Numbers given as text are written into the body unquoted, exactly as written here.
    texts = [v if isinstance(v, str) and v[:1] in "-0123456789" else json.dumps(v) for v in values]
    body = ('{"data": {"results": [' + ", ".join(f'{{"v": {t}}}' for t in texts) + "]}}").encode()
    parsed = records_frame(body, CONTEXT)
    assert parsed.frame.schema["v"] == dtype
    expected = stored if stored is not None else texts
    if dtype == pl.Int64:
        expected = [int(text) for text in texts]
    assert parsed.frame["v"].to_list() == expected
    assert (dtype == pl.String) == (parsed.json_text_fields == ("v",))


def test_strings_with_nul_bom_and_bidi_marks_and_empty_field_names_are_kept() -> None:
    rows = [{"": "x\u0000y", "n": "\ufeff\u200f\u202e"}, {"": "plain", "n": "\u0000"}]
    escaped = spoc_body(rows)
    unescaped = json.dumps({"data": {"results": rows}}, ensure_ascii=False).encode()
    for body in (escaped, b"\xef\xbb\xbf" + unescaped):  # a byte order mark before a body too
        frame = records_frame(body, CONTEXT).frame
        assert frame.columns == ["", "n"]
        assert frame.to_dicts() == rows


def test_empty_list_is_a_zero_row_frame() -> None:
    assert records_frame(spoc_body([]), CONTEXT).frame.height == 0


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<!DOCTYPE html><html><body>Maintenance</body></html>", "HTML page, not JSON"),
        (spoc_body([SAMPLE])[:-40], "not valid JSON (Input data was truncated)"),
        (b'{"data": {"results": [}', "not valid JSON"),
        (
            b'{"data": {"data": []}, "message": "ok"}',
            "not at 'data.results' (Object missing required field `results` - at `$.data`); "
            "the body's top-level keys are 'data', 'message'",
        ),
        (b"[1, 2]", "the top level is not an object"),
        (spoc_body([SAMPLE, 5]), "record 1 at 'data.results' is not a JSON object"),
        (spoc_body([["a"]]), "record 0 at 'data.results' is not a JSON object"),
    ],
)
def test_bad_bodies_name_endpoint_partition_url_status_and_body(body: bytes, problem: str) -> None:
    with pytest.raises(BadResponseError) as raised:
        records_frame(body, CONTEXT)
    message = str(raised.value)
    assert problem in message
    assert "'spoc_smallholders' (partition 2026-11-22)" in message
    assert URL in message
    assert "HTTP 200" in message
    assert repr(body[:200].decode()) in message


def test_pretty_printed_body_parses_record_by_record() -> None:
    records = [SAMPLE, {**SAMPLE, "entity_smallholder_id": 2, "name": "A\nB"}]
    body = json.dumps({"data": {"page_size": "10", "results": records}}, indent=2).encode()
    frame = records_frame(body, CONTEXT).frame
    assert frame.to_dicts() == records


def ndjson(rows: list[dict[str, Any]]) -> tuple[bytes, bytes]:
    """All rows and the fast path's sample of them, as the parser builds them."""
    lines = [json.dumps(row).encode() for row in rows]
    step = max(1, len(lines) // records.SCHEMA_SAMPLE)
    return b"\n".join(lines), b"\n".join(lines[::step])


def test_every_emulator_table_takes_the_fast_path_and_matches_inference_over_every_row(
    emulator: EmulatorServer,
) -> None:
    for endpoint in catalog.ENDPOINTS:
        body = emulator.body(endpoint.name)
        context = ResponseContext(endpoint, URL, 200, None)
        parsed = records._ndjson(body, context)
        assert parsed is not None, endpoint.name
        table = records.read_with_sampled_schema(parsed.lines, parsed.sample)
        assert table is not None, f"{endpoint.name} fell back to the slow path"
        fast = pl.DataFrame(table)
        slow = pl.read_ndjson(parsed.lines, infer_schema_length=None)
        assert fast.equals(slow.select(fast.columns)), endpoint.name
        assert fast.schema == slow.select(fast.columns).schema, endpoint.name
        assert set(fast.columns) == set(slow.columns), endpoint.name


LATE = 2 * records.SCHEMA_SAMPLE + 1
"""An odd row index beyond the sample's reach (the sample takes every second row here)."""


@pytest.mark.parametrize(
    ("late_row", "column", "dtype", "values"),
    [
        ({"id": LATE, "x": 1, "n": None, "new": "field"}, "new", pl.String, ["field"]),
        ({"id": LATE, "x": "N/A", "n": None}, "x", pl.String, ["1", '"N/A"']),
        ({"id": LATE, "x": 2.5, "n": None}, "x", pl.Float64, [1.0, 2.5]),
        ({"id": LATE, "x": 1, "n": 7}, "n", pl.Int64, [7]),
        ({"id": LATE, "x": True, "n": None}, "x", pl.String, ["1", "true"]),
        ({"id": 2**60, "x": 1, "n": None}, "id", pl.Int64, None),
        ({"id": LATE, "x": 1, "n": None, "": {"a": []}}, "", pl.String, ['{"a": []}']),
    ],
    ids=[
        "new field",
        "string in integers",
        "fraction in integers",
        "value in nulls",
        "bool",
        "wide integer",
        "new empty-named object",
    ],
)
def test_a_record_the_sample_missed_sends_the_parse_to_the_exact_path(
    late_row: dict[str, Any], column: str, dtype: pl.DataType, values: list[Any] | None
) -> None:
    rows = [{"id": index, "x": 1, "n": None} for index in range(2 * records.SCHEMA_SAMPLE + 2)]
    rows[LATE] = late_row
    lines, sample = ndjson(rows)
    assert late_row not in [json.loads(line) for line in sample.split(b"\n")]

    if column != "id":  # pyarrow reads 2**60 into int64 fine: that record is exact either way
        assert records.read_with_sampled_schema(lines, sample) is None
    frame = records_frame(spoc_body(rows), CONTEXT).frame
    assert frame.height == len(rows)
    assert frame.schema[column] == dtype
    assert frame.row(LATE, named=True) | {column: None} == rows[LATE] | {column: None}
    if values is not None:
        assert frame[column].drop_nulls().unique(maintain_order=True).to_list() == values


def test_an_integer_in_a_float_column_stays_on_the_fast_path_as_a_float() -> None:
    rows = [{"x": 0.5}] * (2 * records.SCHEMA_SAMPLE + 2)
    rows[LATE] = {"x": 3}
    lines, sample = ndjson(rows)
    table = records.read_with_sampled_schema(lines, sample)
    assert table is not None
    frame = pl.DataFrame(table)
    assert frame.schema["x"] == pl.Float64
    assert frame["x"][LATE] == 3.0
    assert frame.equals(pl.read_ndjson(lines, infer_schema_length=None))


def test_a_null_record_is_refused_before_the_fast_path_could_read_it_as_empty() -> None:
    rows: list[Any] = [{"x": 1}] * (2 * records.SCHEMA_SAMPLE + 2)
    rows[LATE] = None
    with pytest.raises(BadResponseError, match=f"record {LATE} at 'data.results' is not a JSON"):
        records_frame(spoc_body(rows), CONTEXT)


JSON_NUMBER = st.from_regex(
    r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][+-]?[0-9]{1,4})?\Z", fullmatch=True
)


@given(st.lists(JSON_NUMBER, min_size=1, max_size=8))
def test_any_json_number_is_kept_as_the_number_sent(texts: list[str]) -> None:
    """Whatever the magnitude, digits or exponent: a native column only where it is exact, the
    text as sent otherwise, and never a failed parse."""
    body = ('{"data": {"results": [' + ", ".join(f'{{"v": {t}}}' for t in texts) + "]}}").encode()
    parsed = records_frame(body, CONTEXT)
    stored = parsed.frame["v"].to_list()
    if parsed.json_text_fields == ("v",):
        assert stored == texts
    else:
        assert [Decimal(repr(v)) if isinstance(v, float) else Decimal(v) for v in stored] == [
            Decimal(t) for t in texts
        ]
