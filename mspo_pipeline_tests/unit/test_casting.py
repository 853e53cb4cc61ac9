"""to_typed: renames, casts, and every value that did not survive the cast is recorded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest

from mspo_pipeline.lib.casting import MAX_TEXT, to_typed
from mspo_pipeline.lib.schemas import CAST_ERRORS, SCHEMAS, table_schema
from mspo_pipeline_tests.unit.test_schemas import OSH_SAMPLE, SAMPLES, SPOC_SAMPLE, raw_frame

SPOC = "spoc_smallholders"


def _typed_row(record: dict[str, Any], table: str = SPOC) -> dict[str, Any]:
    result = to_typed(raw_frame([record]), table)
    return result.frame.row(0, named=True)


def test_spoc_sample_casts_to_the_documented_values() -> None:
    row = _typed_row(SPOC_SAMPLE)
    assert row["planted_area"] == 2.43
    assert row["gps_coordinate_lat"] == 5.55106
    assert row["gps_coordinate_long"] == 101.920321
    assert row["state_id"] == 3
    assert row["zone_id"] == 11
    assert row["daerah_id"] is None
    assert row["created_at"] == datetime(2025, 6, 3, 4, 46, 41, 581000, tzinfo=UTC)
    assert row["deleted"] is False
    assert row[CAST_ERRORS] is None
    assert "geolocation" not in row


def test_osh_sample_null_mpob_no_is_not_a_cast_error() -> None:
    result = to_typed(raw_frame([OSH_SAMPLE]), "osh_smallholders")
    assert result.frame["mpob_no"].to_list() == [None]
    assert result.cast_failures == {}
    assert result.rows_with_cast_errors == 0


@pytest.mark.parametrize("table", sorted(SCHEMAS))
def test_every_table_gets_its_declared_schema_then_cast_errors(table: str) -> None:
    result = to_typed(raw_frame([SAMPLES[table]]), table)
    expected = {c.name: c.dtype for c in table_schema(table).columns}
    assert dict(result.frame.schema) == {**expected, CAST_ERRORS: pl.String()}
    assert result.frame[CAST_ERRORS].to_list() == [None]
    assert (result.unknown_columns, result.missing_columns) == ((), ())


@pytest.mark.parametrize(
    ("field", "text", "column"),
    [
        ("planted_area", "2,43", "planted_area"),
        ("certified_area", "N/A", "certified_area"),
        ("planted_area", "NaN", "planted_area"),
        ("planted_area", "inf", "planted_area"),
        ("gps_coordinate_lat", "N/A", "gps_coordinate_lat"),
        ("gps_coordinate_long", "", "gps_coordinate_long"),
        ("created_at", "yesterday", "created_at"),
        ("updated_at", "2024-07-24 01:17:06", "updated_at"),
        ("stateId", "3a", "state_id"),
        ("zoneId", "11.0", "zone_id"),
        ("deleted", "maybe", "deleted"),
    ],
)
def test_a_value_that_does_not_cast_is_null_and_recorded(
    field: str, text: str, column: str
) -> None:
    """The bad value sits next to a good row, as it would in a real snapshot."""
    result = to_typed(raw_frame([SPOC_SAMPLE, {**SPOC_SAMPLE, field: text}]), SPOC)
    assert result.frame[column][1] is None
    assert result.frame[column][0] is not None
    assert result.frame[CAST_ERRORS].to_list() == [None, f'{column}="{text}"']
    assert result.cast_failures == {column: 1}


def test_mixed_json_types_cast_when_the_text_is_a_number() -> None:
    """stateId sent as "3" in one row arrives as a String column; it is still state 3."""
    result = to_typed(raw_frame([SPOC_SAMPLE, {**SPOC_SAMPLE, "stateId": "3"}]), SPOC)
    assert result.frame.schema["state_id"] == pl.Int32
    assert result.frame["state_id"].to_list() == [3, 3]
    assert result.cast_failures == {}


def test_lost_decimal_point_casts_and_is_left_to_validation() -> None:
    row = _typed_row({**SPOC_SAMPLE, "gps_coordinate_lat": "5551060"})
    assert row["gps_coordinate_lat"] == 5551060.0
    assert row[CAST_ERRORS] is None


def test_boolean_text_and_offsets_cast() -> None:
    row = _typed_row(
        {**SPOC_SAMPLE, "deleted": "TRUE", "created_at": "2025-06-03T12:46:41.581+08:00"}
    )
    assert row["deleted"] is True
    assert row["created_at"] == datetime(2025, 6, 3, 4, 46, 41, 581000, tzinfo=UTC)


def test_integer_overflow_and_fractional_ids_fail() -> None:
    frame = pl.DataFrame(
        {"stateId": [3, 2**40], "zoneId": [11.0, 3.5], "entity_smallholder_id": [1, 2]}
    )
    result = to_typed(frame, SPOC)
    assert result.frame["state_id"].to_list() == [3, None]
    assert result.frame["zone_id"].to_list() == [11, None]
    assert result.frame[CAST_ERRORS][1] == f'state_id="{2**40}"; zone_id="3.5"'


def test_nested_values_fail_with_their_json_text() -> None:
    frame = pl.DataFrame({"entity_smallholder_id": [1], "name": [["A", "B"]]})
    result = to_typed(frame, SPOC)
    assert result.frame["name"].to_list() == [None]
    assert result.frame[CAST_ERRORS][0] == 'name="[\\"A\\",\\"B\\"]"'


def test_quotes_are_escaped_and_long_texts_cut() -> None:
    long = "x" * (MAX_TEXT + 10)
    row = _typed_row({**SPOC_SAMPLE, "planted_area": 'a"; b="', "certified_area": long})
    assert row[CAST_ERRORS] == (f'planted_area="a\\"; b=\\""; certified_area="{"x" * MAX_TEXT}…"')


def test_missing_columns_become_typed_nulls_and_are_reported() -> None:
    record = {k: v for k, v in SPOC_SAMPLE.items() if k not in {"zoneId", "deleted"}}
    result = to_typed(raw_frame([record]), SPOC)
    assert result.missing_columns == ("zoneId", "deleted")
    assert result.frame.schema["zone_id"] == pl.Int32
    assert result.frame["zone_id"].to_list() == [None]
    assert result.frame[CAST_ERRORS].to_list() == [None]


def test_unknown_columns_are_carried_on_unchanged_after_cast_errors() -> None:
    record = {**SPOC_SAMPLE, "new_field": 7, "state_id": "3"}
    result = to_typed(raw_frame([record]), SPOC)
    assert result.unknown_columns == ("new_field", "state_id")
    assert result.frame.columns[-3:] == [CAST_ERRORS, "new_field", "state_id_raw"]
    assert result.frame["new_field"].to_list() == [7]
    assert result.frame["state_id_raw"].to_list() == ["3"]


def test_unknown_fields_polars_would_expand_are_carried_by_name() -> None:
    record = {**SPOC_SAMPLE, "*": 1, "^entity.*$": 2, "cast_errors": 3}
    result = to_typed(raw_frame([record]), SPOC)
    assert result.frame.columns[-4:] == [CAST_ERRORS, "*", "^entity.*$", "cast_errors_raw"]
    row = result.frame.row(0, named=True)
    assert (row["*"], row["^entity.*$"], row["cast_errors_raw"]) == (1, 2, 3)


def test_a_renamed_unknown_field_never_takes_a_name_the_api_also_sent() -> None:
    record = {**SPOC_SAMPLE, "cast_errors": 1, "cast_errors_raw": 2, "cast_errors_raw_raw": 3}
    result = to_typed(raw_frame([record]), SPOC)
    carried = result.frame.columns[-3:]
    assert carried == ["cast_errors_raw_raw_raw", "cast_errors_raw", "cast_errors_raw_raw"]
    assert [result.frame[c].item() for c in carried] == [1, 2, 3]


def test_all_null_columns_of_null_type_cast_cleanly() -> None:
    frame = pl.DataFrame(
        {"entity_smallholder_id": [1, 2], "planted_area": [None, None], "created_at": [None, None]}
    )
    assert frame.schema["planted_area"] == pl.Null
    result = to_typed(frame, SPOC)
    assert result.frame.schema["planted_area"] == pl.Float64
    assert result.cast_failures == {}


@pytest.mark.parametrize("table", sorted(SCHEMAS))
def test_row_count_is_kept_even_when_everything_fails(table: str) -> None:
    raw = pl.DataFrame({field: ["x", None, "y"] for field in table_schema(table).raw_fields})
    result = to_typed(raw, table)
    assert result.frame.height == raw.height
    assert result.frame[CAST_ERRORS].null_count() == 1


def test_a_raw_frame_with_no_declared_field_keeps_every_row() -> None:
    """Found by the lossless-raw property test: 250 records holding only ``geolocation`` (known,
    but not typed) came out of the typed layer as one row."""
    raw = pl.DataFrame({"geolocation": ["[]", "{}", "[false]"]})

    typed = to_typed(raw, "spoc_smallholders").frame

    assert typed.height == 3
    assert typed["entity_smallholder_id"].null_count() == 3
