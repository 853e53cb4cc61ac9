"""Tidy schemas: the declarations match the catalogue and the typed-layer column contract.

The sample records below are the API documentation's own; the other test modules of the
typed layer build their fixtures from them.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from mspo_pipeline.lib.catalog import ENDPOINTS, endpoint
from mspo_pipeline.lib.schemas import (
    CAST_ERRORS,
    REASONS,
    RULES,
    SCHEMAS,
    SOFT_FLAGS,
    UTC_DATETIME,
    column_schema,
    pandera_schema,
    snake_case,
    table_schema,
)

SPOC_SAMPLE: dict[str, Any] = dict(endpoint("spoc_smallholders").sample or {})
"""001_4588b9e25b4b0202.txt: zone 11 named "Zon Timur 2", created after updated."""

OSH_SAMPLE: dict[str, Any] = dict(endpoint("osh_smallholders").sample or {})
"""002_7c3cf5683692fa34.txt: null mpob_no."""

GM_SAMPLE: dict[str, Any] = {**SPOC_SAMPLE, "entity_smallholder_id": 9001, "gm_code": "GM01"}

REFERENCE_SAMPLES: dict[str, dict[str, Any]] = {
    "states": {"stateId": 1, "state": "Johor"},
    "countries": {"countryId": 1, "countryCode": "MY", "country": "Malaysia"},
    "cb": {"cbId": 1, "cbCode": "CB001", "cbName": "SIRIM QAS International Sdn Bhd"},
    "audit_scopes": {"auditScopeId": 1, "auditScope": "Initial"},
    "audit_types": {"auditTypeId": 1, "auditType": "Surveillance"},
    "entity_types": {"entityTypeId": 1, "entityTypeCode": "ISH", "entityType": "Independent"},
    "groupmanagers": {
        "groupManagerId": 1,
        "gmCode": "GM01",
        "groupManagerName": "Sawit Sdn Bhd",
        "stateId": 10,
    },
    "zones": {"zoneId": 1, "zone": "Zon Utara 1"},
    "zone_state": {"zoneId": 1, "stateId": 8, "state": "Perlis"},
    "spocs": {"spocId": 5, "zoneId": 1, "spocCode": "A1"},
    "daerah": {"daerahId": 4, "daerah": "KOTA TINGGI", "stateId": 1},
}

SAMPLES: dict[str, dict[str, Any]] = {
    **REFERENCE_SAMPLES,
    "spoc_smallholders": SPOC_SAMPLE,
    "osh_smallholders": OSH_SAMPLE,
    "gm_smallholders": GM_SAMPLE,
}


def raw_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Records as the raw layer stores them: JSON types inferred over every row."""
    return pl.DataFrame(records, infer_schema_length=None)


SPOC_CONTRACT = {
    "entity_smallholder_id": pl.Int64(),
    "entity_name": pl.String(),
    "mpob_no": pl.String(),
    "name": pl.String(),
    "planted_area": pl.Float64(),
    "certified_area": pl.Float64(),
    "gps_coordinate_lat": pl.Float64(),
    "gps_coordinate_long": pl.Float64(),
    "state_id": pl.Int32(),
    "state": pl.String(),
    "daerah_id": pl.Int32(),
    "daerah": pl.String(),
    "mukim_id": pl.Int32(),
    "mukim": pl.String(),
    "lot_no": pl.String(),
    "zone_id": pl.Int32(),
    "zone": pl.String(),
    "spoc_code": pl.String(),
    "cert_no": pl.String(),
    "cert_status": pl.String(),
    "track_id": pl.String(),
    "record_status": pl.String(),
    "deleted": pl.Boolean(),
    "created_at": UTC_DATETIME,
    "updated_at": UTC_DATETIME,
}
"""The docs' "Tidy Parquet Schema", copied from the contract rather than from the code."""

OSH_CONTRACT_NAMES = [
    "entity_smallholder_id",
    "entity_code",
    "entity_name",
    "mpob_no",
    "name",
    "planted_area",
    "certified_area",
    "gps_coordinate_lat",
    "gps_coordinate_long",
    "state_id",
    "state",
    "daerah_id",
    "daerah",
    "lot_no",
    "cert_status",
    "cert_no",
    "track_id",
    "created_at",
    "updated_at",
]


def _dtypes(table: str) -> dict[str, pl.DataType]:
    return {c.name: c.dtype for c in table_schema(table).columns}


def test_every_catalogue_endpoint_has_a_schema_naming_exactly_its_raw_fields() -> None:
    assert set(SCHEMAS) == {e.name for e in ENDPOINTS}
    for e in ENDPOINTS:
        assert sorted(table_schema(e.name).raw_fields) == sorted(e.fields), e.name


def test_spoc_schema_is_the_documented_tidy_schema_in_order() -> None:
    assert list(_dtypes("spoc_smallholders").items()) == list(SPOC_CONTRACT.items())


def test_gm_schema_is_spoc_plus_gm_code_after_spoc_code() -> None:
    names = list(_dtypes("gm_smallholders"))
    spoc = list(SPOC_CONTRACT)
    at = spoc.index("spoc_code") + 1
    assert names == [*spoc[:at], "gm_code", *spoc[at:]]


def test_osh_schema_follows_the_contract_with_spoc_dtypes() -> None:
    dtypes = _dtypes("osh_smallholders")
    assert list(dtypes) == OSH_CONTRACT_NAMES
    assert dtypes["entity_code"] == pl.String
    assert all(dtypes[n] == t for n, t in SPOC_CONTRACT.items() if n in dtypes)


@pytest.mark.parametrize("table", sorted(REFERENCE_SAMPLES))
def test_reference_columns_are_snake_case_with_int32_ids(table: str) -> None:
    schema = table_schema(table)
    for column in schema.columns:
        assert column.name == snake_case(column.raw)
        assert column.dtype == (pl.Int32 if column.raw.endswith("Id") else pl.String)
    key = tuple(snake_case(k) for k in endpoint(table).primary_key)
    assert schema.primary_key == key
    assert all(not schema.column(k).nullable for k in key)


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        ("stateId", "state_id"),
        ("cbCode", "cb_code"),
        ("groupManagerId", "group_manager_id"),
        ("gmCode", "gm_code"),
        ("entity_smallholder_id", "entity_smallholder_id"),
    ],
)
def test_snake_case(raw: str, tidy: str) -> None:
    assert snake_case(raw) == tidy


def test_only_gps_casts_are_soft() -> None:
    schema = table_schema("spoc_smallholders")
    soft = {c.name for c in schema.columns if c.soft_cast}
    assert soft == {"gps_coordinate_lat", "gps_coordinate_long"}


def test_column_schema_per_layer() -> None:
    typed = [c.name for c in column_schema("spoc_smallholders", "typed")]
    assert typed == [*SPOC_CONTRACT, CAST_ERRORS]
    validated = [c.name for c in column_schema("spoc_smallholders", "validated")]
    assert validated == [*SPOC_CONTRACT, *(f.name for f in SOFT_FLAGS)]
    quarantine = [c.name for c in column_schema("spoc_smallholders", "quarantine")]
    assert quarantine == [*SPOC_CONTRACT, CAST_ERRORS, REASONS, RULES]
    assert [c.name for c in column_schema("zones", "validated")] == ["zone_id", "zone"]


def test_column_schema_documents_types_keys_and_rules() -> None:
    docs = {c.name: c for c in column_schema("spoc_smallholders")}
    assert docs["created_at"].type == "Datetime(us, UTC)"
    assert docs["planted_area"].type == "Float64"
    assert docs["entity_smallholder_id"].unique
    assert not docs["entity_smallholder_id"].nullable
    assert docs["zone_id"].rules == ("zone_id not in 1..11",)
    assert all(d.description for d in docs.values())


def test_composite_key_uniqueness_is_a_frame_rule() -> None:
    schema = pandera_schema("zone_state")
    assert schema.unique == ["zone_id", "state_id"]
    assert not any(c.unique for c in schema.columns.values())
    assert pandera_schema("states").columns["state_id"].unique


def test_unknown_table_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="spoc_smallholders"):
        table_schema("spoc")


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_raw_field_is_described_under_its_own_name(name: str) -> None:
    described = table_schema(name).raw_descriptions
    assert set(described) == set(endpoint(name).fields)
    assert all(described.values())
    assert not [field for field, text in described.items() if "renamed" in text.lower()]


def test_a_renamed_column_says_its_raw_name_in_the_tidy_layers_only() -> None:
    schema = table_schema("spoc_smallholders")
    assert schema.raw_descriptions["stateId"] == "Malaysian state ID (1-16)."
    tidy = {doc.name: doc.description for doc in column_schema("spoc_smallholders", "validated")}
    assert tidy["state_id"] == "Malaysian state ID (1-16). Renamed from `stateId`."
    assert "renamed" not in tidy["cert_status"].lower()
    assert "gps_coordinate_lat" in schema.raw_descriptions["geolocation"]
