"""Curated tables: one declaration each, named by the light registry, and enforced on write."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from mspo_pipeline.lib import tables
from mspo_pipeline.lib.schemas import (
    CANONICAL_NAMES,
    CURATED,
    REFERENCE_FLAGS,
    REGISTER_TABLES,
    SOFT_FLAGS,
    CuratedSchemaError,
    curated_table,
    table_schema,
)


def test_the_light_registry_names_exactly_the_declared_tables() -> None:
    """``lib/tables.py`` (read by the warehouse and ``mspo sql`` without polars) and the
    declarations (read by the IO manager and the UI) list the same tables."""
    named = {*tables.CURATED_TABLES, tables.CAPTURES, tables.PLOT_HISTORY}
    assert set(CURATED) == named


@pytest.mark.parametrize("table", sorted(CURATED))
def test_every_curated_column_is_described_once(table: str) -> None:
    columns = curated_table(table).columns
    names = [c.name for c in columns]
    assert len(names) == len(set(names))
    assert [c.name for c in columns if not c.description.strip()] == []


def test_smallholders_carries_every_register_column_and_flag() -> None:
    """A column added to a register's tidy schema reaches the curated declaration by itself."""
    declared = curated_table("smallholders").schema
    for table in REGISTER_TABLES.values():
        for column in table_schema(table).columns:
            assert column.name in declared, (table, column.name)
            if column.name not in CANONICAL_NAMES:
                assert declared[column.name] == column.dtype, column.name
    for name in CANONICAL_NAMES:
        assert declared[f"{name}_reported"] == pl.String
    flags = curated_table("smallholders").flags
    assert flags == (*(f.name for f in SOFT_FLAGS), *REFERENCE_FLAGS)


def test_a_column_one_register_lacks_is_nullable_in_smallholders() -> None:
    """OSH has no zone: zone_id may not be null in SPOC's tidy table, but is for OSH rows."""
    assert table_schema("spoc_smallholders").column("zone_id").nullable is False
    columns = {c.name: c for c in curated_table("smallholders").columns}
    assert columns["zone_id"].nullable is True
    assert columns["state_id"].nullable is False


def test_plot_history_is_a_plots_key_its_versions_and_its_tidy_columns() -> None:
    smallholders = curated_table("smallholders").schema.names()
    history = curated_table(tables.PLOT_HISTORY).schema.names()
    versions = [c.name for c in tables.VERSION_COLUMNS]
    tidy = [c for c in smallholders if c not in ("partition_date", "snapshot_date", "late_capture")]
    assert history == [*tidy[:2], *versions, *tidy[2:]]


def _captures(**overrides: pl.Series) -> pl.DataFrame:
    declared = curated_table(tables.CAPTURES).schema
    row = pl.DataFrame(
        {
            "partition_date": [dt.date(2026, 11, 22)],
            "endpoint": ["states"],
            "endpoint_group": ["references"],
            "status": ["on_time"],
        }
    )
    frame = pl.DataFrame(schema=declared).vstack(
        row.select(pl.col(c).cast(declared[c]) for c in row.columns).with_columns(
            pl.lit(None, dtype).alias(name)
            for name, dtype in declared.items()
            if name not in row.columns
        )
    )
    return frame.with_columns(**overrides)


def test_conform_orders_the_declared_columns() -> None:
    frame = _captures()
    shuffled = frame.select(reversed(frame.columns))
    assert curated_table(tables.CAPTURES).conform(shuffled).equals(frame)


def test_conform_types_an_all_null_column_of_no_type() -> None:
    frame = _captures().with_columns(pl.lit(None).alias("sha256"))
    assert frame.schema["sha256"] == pl.Null
    conformed = curated_table(tables.CAPTURES).conform(frame)
    assert conformed.schema == curated_table(tables.CAPTURES).schema


def test_conform_names_every_difference() -> None:
    frame = (
        _captures()
        .drop("raw_file")
        .with_columns(pl.col("lag_days").cast(pl.Int64), extra=pl.lit(1))
    )
    with pytest.raises(CuratedSchemaError) as raised:
        curated_table(tables.CAPTURES).conform(frame)
    message = str(raised.value)
    assert "curated/captures" in message
    assert "missing column(s) raw_file" in message
    assert "undeclared column(s) extra" in message
    assert "lag_days is Int64, declared Int32" in message
    assert "mspo_pipeline/lib/schemas.py" in message


def test_conform_refuses_nulls_where_the_declaration_forbids_them() -> None:
    frame = _captures(status=pl.Series([None], dtype=pl.String))
    with pytest.raises(CuratedSchemaError, match="status has 1 null"):
        curated_table(tables.CAPTURES).conform(frame)


def test_an_undeclared_table_names_the_declared_ones() -> None:
    with pytest.raises(KeyError, match=r"declared: .*smallholders"):
        curated_table("smallholder")
