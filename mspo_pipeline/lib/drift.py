"""Schema drift: how a raw snapshot's fields differ from the fields the schema declares.

Drift is reported, never fatal: the raw layer keeps every field, the typed layer carries unknown
fields on and fills missing ones with nulls, and validation decides what a row is worth.

A field's JSON type is judged from its polars type. A field that is null in every row tells
nothing about its type (polars types it Null, or String after a round trip), so it is never
called retyped; any integer width counts as a JSON integer.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import polars as pl

from mspo_pipeline.lib.schemas import table_schema


@dataclass(frozen=True, slots=True)
class RawField:
    """A raw field and its polars type as it arrived."""

    name: str
    dtype: str


@dataclass(frozen=True, slots=True)
class RetypedField:
    """A known raw field whose JSON type is not the declared one (``stateId`` sent as text)."""

    name: str
    expected: str
    actual: str


@dataclass(frozen=True, slots=True)
class Drift:
    """New, missing and retyped raw fields of one table's snapshot."""

    table: str
    new_fields: tuple[RawField, ...]
    missing_fields: tuple[str, ...]
    retyped_fields: tuple[RetypedField, ...]

    @property
    def has_drift(self) -> bool:
        return bool(self.new_fields or self.missing_fields or self.retyped_fields)

    @property
    def message(self) -> str:
        """One line for a human: what changed, or that nothing did."""
        if not self.has_drift:
            return f"{self.table}: raw fields match the schema"
        parts = []
        if self.new_fields:
            names = ", ".join(f"{f.name} ({f.dtype})" for f in self.new_fields)
            parts.append(f"new (kept, not typed): {names}")
        if self.missing_fields:
            parts.append(f"missing (typed as null): {', '.join(self.missing_fields)}")
        if self.retyped_fields:
            names = ", ".join(
                f"{f.name} ({f.actual}, expected {f.expected})" for f in self.retyped_fields
            )
            parts.append(f"retyped: {names}")
        return f"{self.table}: schema drift: " + "; ".join(parts)


def _same_json_type(expected: pl.DataType, actual: pl.DataType) -> bool:
    return actual == expected or (expected.is_integer() and actual.is_integer())


JSON_TEXT = "JSON text (mixed kinds)"
"""How a raw JSON-text column's type reads in drift reports: its values are of several kinds."""


def schema_drift(raw: pl.DataFrame, table: str, *, json_text_fields: Collection[str] = ()) -> Drift:
    """Compare the raw columns of ``table`` and their types with its declared raw fields.

    A JSON-text column (see ``records.RawRecords``) is String in polars but no JSON type at all:
    a declared field stored that way is always retyped.
    """
    schema = table_schema(table)
    expected = {c.raw: c.raw_dtype for c in schema.columns}
    expected.update(dict.fromkeys(schema.dropped_raw_fields, pl.String()))
    actual = {
        name: JSON_TEXT if name in json_text_fields else str(dtype)
        for name, dtype in raw.schema.items()
    }
    nulls = raw.null_count().row(0, named=True)
    all_null = {name for name, n in nulls.items() if n == raw.height}

    def retyped(name: str) -> bool:
        if name in json_text_fields:
            return True
        return name not in all_null and not _same_json_type(expected[name], raw.schema[name])

    return Drift(
        table=table,
        new_fields=tuple(RawField(n, t) for n, t in actual.items() if n not in expected),
        missing_fields=tuple(n for n in expected if n not in actual),
        retyped_fields=tuple(
            RetypedField(n, str(expected[n]), t)
            for n, t in actual.items()
            if n in expected and retyped(n)
        ),
    )
