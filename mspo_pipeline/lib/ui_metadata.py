"""What a materialisation shows in the Dagster UI: schemas, previews and sizes of polars frames."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg
import polars as pl

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
