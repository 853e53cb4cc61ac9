"""Raw frame -> typed frame: rename, cast, and record every value that did not survive the cast.

The cast never raises on bad data and never drops a row. Each value is cast with
``strict=False``; a value that was not null before and is null after failed, and the row's
``cast_errors`` names it with its original text (``planted_area="2,43"``). Whether a failure is
hard or soft is the schema's business (``schemas.Column.soft_cast``), judged in validation.
Unknown raw columns are carried on unchanged; known columns missing from the raw frame become
null columns of their declared type. Everything is one vectorised polars pass.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import msgspec
import polars as pl
import polars.selectors as cs

from mspo_pipeline.lib.schemas import CAST_ERRORS, REASONS, SOFT_FLAGS, Column, table_schema

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%#z"
"""ISO 8601 with an explicit offset (``Z`` or ``+08:00``); a timestamp without one is ambiguous
and fails the cast."""
MAX_TEXT = 60
"""Original texts longer than this are cut in ``cast_errors`` (it is a note, not a copy)."""
_TRUE = ("true", "1")
_FALSE = ("false", "0")


@dataclass(frozen=True, slots=True)
class TypedResult:
    """The typed frame of one table and what the cast had to say about it."""

    table: str
    frame: pl.DataFrame
    """Declared columns in schema order, then ``cast_errors``, then unknown raw columns."""
    unknown_columns: tuple[str, ...]
    """Raw columns the schema does not know, carried on (renamed ``<name>_raw`` only if the name
    is taken by a tidy column, ``cast_errors``, ``reasons`` or a soft flag; ``_raw`` again while
    the API sent that name too)."""
    missing_columns: tuple[str, ...]
    """Raw fields the schema expects but the frame lacks; their tidy columns are all null."""
    cast_failures: Mapping[str, int]
    """Tidy column -> values that could not be cast (columns without failures left out)."""

    @property
    def rows_with_cast_errors(self) -> int:
        return self.frame.height - self.frame.get_column(CAST_ERRORS).null_count()


def _original_text(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The raw value as text, as short as ``cast_errors`` needs it."""
    if dtype.is_nested():
        text = pl.struct(raw.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    elif dtype == pl.String:
        text = raw
    else:
        text = raw.cast(pl.String)
    cut = pl.when(text.str.len_chars() > MAX_TEXT).then(text.str.head(MAX_TEXT) + "…")
    return cut.otherwise(text)


def _escaped(text: pl.Expr) -> pl.Expr:
    """Escape backslashes and quotes so ``name="`` only ever starts an entry we wrote."""
    return text.str.replace_all("\\", "\\\\", literal=True).str.replace_all(
        '"', '\\"', literal=True
    )


def _decoded_json_strings(texts: pl.Series) -> pl.Series:
    """Each JSON string literal decoded (``"\"2.43\""`` -> ``2.43``); anything else null."""
    decode = msgspec.json.Decoder(str).decode
    return pl.Series(
        texts.name,
        [decode(text) if text and text[0] == '"' else None for text in texts],
        dtype=pl.String,
    )


def json_scalar_text(json_text: pl.Expr) -> pl.Expr:
    """A raw JSON-text column (``records.RawRecords``) as the text a cast reads: strings decoded,
    numbers and booleans as written, objects and arrays null (no tidy column holds one, so they
    fail the cast and ``cast_errors`` keeps their JSON text)."""
    first = json_text.str.head(1)
    strings = json_text.map_batches(_decoded_json_strings, return_dtype=pl.String)
    return (
        pl.when(first == '"')
        .then(strings)
        .when(first.is_in(["{", "["]))
        .then(pl.lit(None, dtype=pl.String))
        .otherwise(json_text)
    )


def _cast(raw: pl.Expr, source: pl.DataType, column: Column) -> pl.Expr:
    """``raw`` cast to the column's type; null wherever the value does not fit."""
    target = column.dtype
    if source.is_nested():
        return pl.lit(None, dtype=target)
    if target == pl.String:
        return raw.cast(pl.String)
    if target.is_temporal():
        text = raw if source == pl.String else raw.cast(pl.String)
        return text.str.to_datetime(
            format=TIMESTAMP_FORMAT, time_unit="us", time_zone="UTC", strict=False
        )
    if target == pl.Boolean and source == pl.String:
        word = raw.str.strip_chars().str.to_lowercase()
        return pl.when(word.is_in(_TRUE)).then(True).when(word.is_in(_FALSE)).then(False)
    cast = raw.cast(target, strict=False)
    if target.is_float():
        return pl.when(cast.is_finite()).then(cast)
    if target.is_integer() and source.is_float():
        return pl.when(raw == raw.round()).then(cast)
    return cast


def _carried_names(unknown: tuple[str, ...], reserved: set[str]) -> list[tuple[str, str]]:
    """Each unknown field and its typed column: its own name, or with ``_raw`` added (again if
    the API also sent that name) where the typed layer uses the name itself."""
    taken = {*reserved, *unknown}
    names = []
    for field in unknown:
        name = field
        if field in reserved:
            name = f"{field}_raw"
            while name in taken:
                name += "_raw"
            taken.add(name)
        names.append((field, name))
    return names


def to_typed(
    raw: pl.DataFrame, table: str, *, json_text_fields: Collection[str] = ()
) -> TypedResult:
    """The typed layer of ``table`` from its raw frame (see the module docstring).

    ``json_text_fields`` are the raw columns that hold JSON text; their strings are decoded
    before the cast, so ``"2.4300"`` and ``2.4300`` both become 2.43.
    """
    schema = table_schema(table)
    present = raw.schema
    known = set(schema.raw_fields)
    reserved = {*schema.column_names, CAST_ERRORS, REASONS, *(f.name for f in SOFT_FLAGS)}
    unknown = tuple(c for c in raw.columns if c not in known)
    missing = tuple(c.raw for c in schema.columns if c.raw not in present)

    values: list[pl.Expr] = []
    errors: list[pl.Expr] = []
    for column in schema.columns:
        if column.raw not in present:
            # As long as the raw frame: a body with none of the declared fields must not
            # collapse to the one row a select of literals alone would give.
            values.append(pl.repeat(None, raw.height, dtype=column.dtype).alias(column.name))
            continue
        source = present[column.raw]
        raw_col = pl.col(column.raw)
        json_text = column.raw in json_text_fields
        value = _cast(json_scalar_text(raw_col) if json_text else raw_col, source, column)
        values.append(value.alias(column.name))
        if column.dtype == pl.String and not source.is_nested() and not json_text:
            continue  # any scalar has a text form
        failed = raw_col.is_not_null() & value.is_null()
        entry = pl.lit(f'{column.name}="') + _escaped(_original_text(raw_col, source)) + pl.lit('"')
        errors.append(pl.when(failed).then(entry).alias(f"__cast_error_{column.name}"))

    # Unknown fields are named by the API: taken by name exactly (``pl.col`` would read "*" as
    # every column and "^...$" as a pattern).
    carried = [cs.by_name(c).as_expr().alias(name) for c, name in _carried_names(unknown, reserved)]
    staged = raw.lazy().select(*values, *errors, *carried).collect()
    error_names = [e.meta.output_name() for e in errors]
    counts = staged.select(pl.col(error_names).count()).row(0, named=True) if errors else {}
    joined = pl.concat_str(error_names, separator="; ", ignore_nulls=True) if errors else pl.lit("")
    frame = staged.select(
        *schema.column_names,
        pl.when(joined != "").then(joined).otherwise(None).cast(pl.String).alias(CAST_ERRORS),
        cs.by_name([e.meta.output_name() for e in carried]),
    )
    return TypedResult(
        table=table,
        frame=frame,
        unknown_columns=unknown,
        missing_columns=missing,
        cast_failures={name.removeprefix("__cast_error_"): n for name, n in counts.items() if n},
    )
