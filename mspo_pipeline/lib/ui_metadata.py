"""What a materialisation shows in the Dagster UI: schemas, previews and sizes of polars frames."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import polars as pl

from mspo_pipeline.lib.schemas import ColumnDoc, curated_table

PREVIEW_ROWS = 5


def column_schema(
    frame: pl.DataFrame | pl.Schema, descriptions: Mapping[str, str] | None = None
) -> dg.TableSchema:
    """The frame's columns and polars types, for ``dagster/column_schema``."""
    schema = frame.schema if isinstance(frame, pl.DataFrame) else frame
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=descriptions.get(name))
            for name, dtype in schema.items()
        ]
    )


def documented_columns(docs: Iterable[ColumnDoc]) -> list[dg.TableColumn]:
    """Declared columns as the UI shows them: type, description, nullability, rules."""
    return [
        dg.TableColumn(
            doc.name,
            doc.type,
            doc.description,
            dg.TableColumnConstraints(
                nullable=doc.nullable, unique=doc.unique, other=list(doc.rules)
            ),
        )
        for doc in docs
    ]


def curated_columns(table: str) -> dict[str, Any]:
    """``dagster/column_schema`` of a curated table, from its declaration: what every file of it
    holds, since the IO manager writes no other."""
    columns = documented_columns(curated_table(table).column_docs())
    return {"dagster/column_schema": dg.TableSchema(columns=columns)}


def curated_metadata(table: str, frame: pl.DataFrame) -> dict[str, Any]:
    """Row count, declared column schema and preview of one curated frame."""
    return {"dagster/row_count": frame.height, **curated_columns(table), "preview": preview(frame)}


def counts(frame: pl.DataFrame, conditions: Mapping[str, pl.Expr]) -> dict[str, int]:
    """How many rows meet each condition, in one pass over the frame: filtering a day's frame
    to count its rows would copy every column of the rows it keeps (80 MB and more at full
    scale, at the peak of the steps that count)."""
    row = frame.select(condition.sum().alias(name) for name, condition in conditions.items()).row(
        0, named=True
    )
    return {name: int(value) for name, value in row.items()}


def flag_counts(table: str, frame: pl.DataFrame) -> dict[str, int]:
    """How many rows raise each of the table's declared flags: plain ints the UI plots by day."""
    return counts(frame, {flag: pl.col(flag) for flag in curated_table(table).flags})


def preview(frame: pl.DataFrame, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    """The first rows as a Markdown table, every column shown, long text cut short."""
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_dataframe_shape=True,
        tbl_hide_column_data_types=True,
        tbl_cols=-1,
        tbl_rows=rows,
        fmt_str_lengths=40,
        tbl_width_chars=65_000,
    ):
        return dg.MetadataValue.md(str(frame.head(rows)))


def frame_metadata(frame: pl.DataFrame, descriptions: Mapping[str, str] | None = None) -> dict:
    """Row count, column schema and preview: what every layer publishes for its frame."""
    return {
        "dagster/row_count": frame.height,
        "dagster/column_schema": column_schema(frame, descriptions),
        "preview": preview(frame),
    }
