"""schema_drift: new, missing and retyped raw fields, each named."""

from __future__ import annotations

import polars as pl
import pytest

from mspo_pipeline.lib.drift import RawField, RetypedField, schema_drift
from mspo_pipeline.lib.schemas import SCHEMAS
from mspo_pipeline_tests.unit.test_schemas import SAMPLES, SPOC_SAMPLE, raw_frame

SPOC = "spoc_smallholders"


@pytest.mark.parametrize("table", sorted(SCHEMAS))
def test_the_samples_do_not_drift(table: str) -> None:
    drift = schema_drift(raw_frame([SAMPLES[table]]), table)
    assert not drift.has_drift
    assert drift.message == f"{table}: raw fields match the schema"


def test_a_new_field_is_named_with_its_type() -> None:
    drift = schema_drift(raw_frame([{**SPOC_SAMPLE, "polygon": "POLYGON(...)"}]), SPOC)
    assert drift.new_fields == (RawField("polygon", "String"),)
    assert (drift.missing_fields, drift.retyped_fields) == ((), ())
    assert drift.message == f"{SPOC}: schema drift: new (kept, not typed): polygon (String)"


def test_a_missing_field_is_named() -> None:
    record = {k: v for k, v in SPOC_SAMPLE.items() if k != "geolocation"}
    drift = schema_drift(raw_frame([record]), SPOC)
    assert drift.missing_fields == ("geolocation",)
    assert "missing (typed as null): geolocation" in drift.message


def test_a_field_sent_with_mixed_json_types_is_retyped() -> None:
    drift = schema_drift(raw_frame([SPOC_SAMPLE, {**SPOC_SAMPLE, "stateId": "3"}]), SPOC)
    assert drift.retyped_fields == (RetypedField("stateId", "Int64", "String"),)
    assert "retyped: stateId (String, expected Int64)" in drift.message


def test_numeric_areas_are_retyped() -> None:
    drift = schema_drift(raw_frame([{**SPOC_SAMPLE, "planted_area": 2.43}]), SPOC)
    assert drift.retyped_fields == (RetypedField("planted_area", "String", "Float64"),)


def test_all_null_fields_and_other_integer_widths_are_not_retyped() -> None:
    raw = raw_frame([SPOC_SAMPLE]).with_columns(
        pl.col("stateId").cast(pl.Int32),
        pl.lit(None, dtype=pl.String).alias("daerahId"),
        pl.lit(None, dtype=pl.Null).alias("planted_area"),
    )
    assert not schema_drift(raw, SPOC).has_drift


def test_all_kinds_at_once() -> None:
    record = {k: v for k, v in SPOC_SAMPLE.items() if k != "zoneId"}
    raw = raw_frame([{**record, "deleted": "false", "extra": 1}])
    drift = schema_drift(raw, SPOC)
    assert drift.message == (
        f"{SPOC}: schema drift: new (kept, not typed): extra (Int64); "
        "missing (typed as null): zoneId; retyped: deleted (String, expected Boolean)"
    )
