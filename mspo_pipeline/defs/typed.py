"""The typed layer: every raw row renamed and cast to its tidy schema, and the raw schema's drift.

The asset is a thin wrapper around ``casting.to_typed``; what it adds is what a person looking at
the UI needs to trust the cast: how many values failed per column and what they looked like,
which raw columns were carried on or missing, and a ``schema_drift`` check that names every
field the API added, dropped or retyped.

The drift is computed here, once, rather than on the raw asset: this is the step that reads the
raw snapshot against the declared schema anyway, and the raw capture keeps every field as sent
whatever the drift (a check on the raw asset would load the raw Parquet a second time).
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl

from mspo_pipeline.defs.partitions import daily_partitions
from mspo_pipeline.lib import schemas
from mspo_pipeline.lib.casting import TypedResult, to_typed
from mspo_pipeline.lib.catalog import ENDPOINTS, Endpoint
from mspo_pipeline.lib.drift import Drift, schema_drift
from mspo_pipeline.lib.provenance import StoredFrame, lineage_metadata, sources_of
from mspo_pipeline.lib.records import json_text_fields
from mspo_pipeline.lib.ui_metadata import documented_columns, preview

TYPED_GROUP = "typed"
SCHEMA_DRIFT_CHECK = "schema_drift"
CAST_EXAMPLES = 3
"""Distinct original texts shown per column in the cast-failure table."""
CARRIED_DESCRIPTION = "Carried on from the raw snapshot unchanged: the declared schema lacks it."


def layer_column_schema(table: str, layer: schemas.Layer, frame: pl.DataFrame) -> dg.TableSchema:
    """``dagster/column_schema`` of one layer: declared columns with their docs and rules, then
    any carried-on raw column the schema does not know, with its polars type."""
    docs = schemas.column_schema(table, layer)
    declared = {doc.name for doc in docs}
    return dg.TableSchema(
        columns=documented_columns(docs)
        + [
            dg.TableColumn(name, str(dtype), CARRIED_DESCRIPTION)
            for name, dtype in frame.schema.items()
            if name not in declared
        ]
    )


def cast_failure_table(result: TypedResult) -> pl.DataFrame:
    """One row per column with failed casts: how many, and a few original texts."""
    errors = result.frame.get_column(schemas.CAST_ERRORS)
    rows = []
    for column, count in result.cast_failures.items():
        texts = errors.str.extract(rf'(?:^|; ){column}="((?:[^"\\]|\\.)*)"', group_index=1)
        examples = texts.drop_nulls().unique(maintain_order=True).head(CAST_EXAMPLES)
        rows.append((column, count, ", ".join(f'"{text}"' for text in examples)))
    return pl.DataFrame(
        rows,
        schema={"column": pl.String, "failed_values": pl.Int64, "examples": pl.String},
        orient="row",
    )


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names) or "none"


def typed_metadata(result: TypedResult) -> dict[str, Any]:
    """What the typed materialisation shows: sizes, cast failures, carried and missing columns."""
    failures = cast_failure_table(result)
    return {
        "dagster/row_count": result.frame.height,
        "dagster/column_schema": layer_column_schema(result.table, "typed", result.frame),
        "preview": preview(result.frame),
        "rows_with_cast_errors": result.rows_with_cast_errors,
        "cast_failures": preview(failures, rows=failures.height) if failures.height else "none",
        "unknown_columns": _names(result.unknown_columns),
        "missing_columns": _names(result.missing_columns),
    }


def drift_check_result(drift: Drift, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """``schema_drift``: fails (WARN) when the raw fields differ from the declared ones.

    Drift is a warning, not an error: the raw layer kept every field and the typed layer coped
    (carried on, typed as null, or cast); someone should update the schema, nothing is lost.
    """
    changes = pl.DataFrame(
        [("new", f.name, f.dtype, "(not declared)") for f in drift.new_fields]
        + [("missing", name, "(absent)", "declared") for name in drift.missing_fields]
        + [("retyped", f.name, f.actual, f.expected) for f in drift.retyped_fields],
        schema={"change": pl.String, "field": pl.String, "sent": pl.String, "expected": pl.String},
        orient="row",
    )
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=SCHEMA_DRIFT_CHECK,
        passed=not drift.has_drift,
        severity=dg.AssetCheckSeverity.WARN,
        description=drift.message,
        metadata={
            "new_fields": _names(tuple(f.name for f in drift.new_fields)),
            "missing_fields": _names(drift.missing_fields),
            "retyped_fields": _names(tuple(f.name for f in drift.retyped_fields)),
            "changes": preview(changes, rows=changes.height) if changes.height else "none",
        },
    )


def build_typed_asset(endpoint: Endpoint) -> dg.AssetsDefinition:
    """The typed asset of one catalogue row, with its schema-drift check."""
    key = dg.AssetKey(["typed", endpoint.name])

    @dg.asset(
        key=key,
        ins={"raw": dg.AssetIn(key=["raw", endpoint.name])},
        group_name=TYPED_GROUP,
        kinds={"polars", "parquet"},
        partitions_def=daily_partitions,
        description=(
            f"{endpoint.description} Every raw row renamed to snake_case and cast to the tidy "
            "schema. A value that does not cast is null and its original text is kept in "
            "`cast_errors`; raw columns the schema does not know are carried on."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                SCHEMA_DRIFT_CHECK,
                asset=key,
                description="The raw snapshot has the declared fields with their JSON types.",
            )
        ],
    )
    def typed_asset(
        context: dg.AssetExecutionContext, raw: StoredFrame
    ) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
        text_fields = json_text_fields(raw.provenance)
        result = to_typed(raw.frame, endpoint.name, json_text_fields=text_fields)
        drift = schema_drift(raw.frame, endpoint.name, json_text_fields=text_fields)
        if drift.has_drift:
            context.log.warning(
                f"partition {context.partition_key}: {drift.message}; the raw snapshot keeps "
                "every field as sent"
            )
        if result.rows_with_cast_errors:
            context.log.info(
                f"{endpoint.name} partition {context.partition_key}: "
                f"{result.rows_with_cast_errors} row(s) with values that did not cast "
                f"({dict(result.cast_failures)}); see the cast_failures metadata"
            )
        lineage = lineage_metadata(sources_of(endpoint.name, raw))
        yield dg.Output(result.frame, metadata={**typed_metadata(result), **lineage})
        yield drift_check_result(drift, key)

    return typed_asset


defs = dg.Definitions(assets=[build_typed_asset(endpoint) for endpoint in ENDPOINTS])
