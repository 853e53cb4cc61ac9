"""Validated and quarantine: one step per table splits the typed rows, and checks the split.

``validation.split_valid`` does the work (pandera on the collected frame, so the full 306k-row
table is one call); the multi-asset keeps its two outputs together so that
``rows(validated) + rows(quarantine) == rows(typed) == rows(raw)`` holds for every partition that
was ever written. Three checks ride along:

- ``primary_key_unique`` (validated): holds by construction, since every row of a duplicated key
  is quarantined; it reports how many were, with examples.
- ``quarantine_share`` (quarantine): WARN above 1 %, ERROR above 10 % of rows quarantined.
- ``row_count_vs_previous`` (validated, blocking): the table's row count against the most recent
  earlier partition with a materialisation; a drop above 5 % warns, above 20 % errors, and the
  error stops every downstream step, so one bad capture cannot flow into the curated layer.

Thresholds are run config (``QualityThresholds``) with the constants below as defaults.
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl

from mspo_pipeline.defs.partitions import daily_partitions
from mspo_pipeline.defs.typed import layer_column_schema
from mspo_pipeline.lib.catalog import ENDPOINTS, Endpoint
from mspo_pipeline.lib.provenance import StoredFrame, lineage_metadata, sources_of
from mspo_pipeline.lib.schemas import REASONS, table_schema
from mspo_pipeline.lib.ui_metadata import preview
from mspo_pipeline.lib.validation import ValidationResult, split_valid

VALIDATED_GROUP = "validated"
QUARANTINE_GROUP = "quarantine"
PRIMARY_KEY_CHECK = "primary_key_unique"
QUARANTINE_SHARE_CHECK = "quarantine_share"
ROW_COUNT_CHECK = "row_count_vs_previous"
TYPED_ROWS = "typed_rows"
"""Validated metadata: the table's rows before the split (the capture's size)."""

QUARANTINE_WARN_SHARE = 0.01
QUARANTINE_ERROR_SHARE = 0.10
ROW_DROP_WARN = 0.05
ROW_DROP_ERROR = 0.20
EXAMPLE_ROWS = 5
"""Rows shown in a check's example table."""


class QualityThresholds(dg.Config):
    """When the checks warn and when they fail; override per table in run config."""

    quarantine_warn_share: float = QUARANTINE_WARN_SHARE
    quarantine_error_share: float = QUARANTINE_ERROR_SHARE
    row_drop_warn: float = ROW_DROP_WARN
    """Fractional drop against the previous partition above which the row count warns."""
    row_drop_error: float = ROW_DROP_ERROR
    """Fractional drop above which the row count errors and blocks downstream steps."""


def _percent(share: float) -> str:
    return f"{share:.2%}"


def _examples(frame: pl.DataFrame) -> dg.MetadataValue | str:
    return preview(frame, rows=EXAMPLE_ROWS) if frame.height else "none"


def _duplicate_reason() -> pl.Expr:
    return pl.col(REASONS).str.contains("duplicate primary key", literal=True)


def primary_key_check_result(result: ValidationResult, key: dg.AssetKey) -> dg.AssetCheckResult:
    """``primary_key_unique``: no key appears twice among the validated rows."""
    primary_key = list(table_schema(result.table).primary_key)
    duplicated = result.validated.filter(pl.struct(primary_key).is_duplicated())
    quarantined = result.quarantine.filter(_duplicate_reason())
    passed = duplicated.height == 0
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=PRIMARY_KEY_CHECK,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{', '.join(primary_key)} is unique among validated rows; "
            f"{quarantined.height} row(s) with a duplicated key were quarantined"
            if passed
            else f"{duplicated.height} validated row(s) share a primary key "
            f"({', '.join(primary_key)}): validation let duplicates through"
        ),
        metadata={
            "primary_key": ", ".join(primary_key),
            "duplicate_rows_validated": duplicated.height,
            "duplicate_rows_quarantined": quarantined.height,
            "examples": _examples(
                duplicated.select(primary_key).sort(primary_key)
                if not passed
                else quarantined.select(*primary_key, REASONS).sort(primary_key)
            ),
        },
    )


def quarantine_share_check_result(
    result: ValidationResult, key: dg.AssetKey, thresholds: QualityThresholds
) -> dg.AssetCheckResult:
    """``quarantine_share``: WARN above the warn share, ERROR above the error share."""
    share = result.quarantine_share
    if share > thresholds.quarantine_error_share:
        severity, passed = dg.AssetCheckSeverity.ERROR, False
    else:
        severity, passed = dg.AssetCheckSeverity.WARN, share <= thresholds.quarantine_warn_share
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=QUARANTINE_SHARE_CHECK,
        passed=passed,
        severity=severity,
        description=(
            f"{result.quarantine.height} of {result.rows} row(s) quarantined ({_percent(share)}; "
            f"warn above {_percent(thresholds.quarantine_warn_share)}, error above "
            f"{_percent(thresholds.quarantine_error_share)})"
        ),
        metadata={
            "quarantine_rows": result.quarantine.height,
            "rows": result.rows,
            "quarantine_share": share,
            "warn_above": thresholds.quarantine_warn_share,
            "error_above": thresholds.quarantine_error_share,
            "rules": dg.MetadataValue.md(result.rule_summary_markdown()),
        },
    )


def row_count_check_result(
    rows: int,
    previous: tuple[str, int] | None,
    key: dg.AssetKey,
    thresholds: QualityThresholds,
) -> dg.AssetCheckResult:
    """``row_count_vs_previous``: this partition's rows against ``(partition, rows)`` before it.

    Only a drop counts: registers grow, and a sudden growth is not a lost capture.
    """
    if previous is None:
        return dg.AssetCheckResult(
            asset_key=key,
            check_name=ROW_COUNT_CHECK,
            passed=True,
            description="no earlier partition has a recorded row count: nothing to compare with",
            metadata={"rows": rows, "previous_partition": "none"},
        )
    previous_partition, previous_rows = previous
    drop = (previous_rows - rows) / previous_rows if previous_rows else 0.0
    if drop > thresholds.row_drop_error:
        severity, passed = dg.AssetCheckSeverity.ERROR, False
    else:
        severity, passed = dg.AssetCheckSeverity.WARN, drop <= thresholds.row_drop_warn
    verdict = (
        "within limits"
        if passed
        else f"a drop above {_percent(thresholds.row_drop_error)}: downstream steps are held "
        "back; check the capture (raw metadata, API status) before rematerialising"
        if severity == dg.AssetCheckSeverity.ERROR
        else f"a drop above {_percent(thresholds.row_drop_warn)}"
    )
    comparison = pl.DataFrame(
        {"partition": [previous_partition, "this one"], "rows": [previous_rows, rows]}
    )
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=ROW_COUNT_CHECK,
        passed=passed,
        severity=severity,
        description=(
            f"{rows} row(s) against {previous_rows} in partition {previous_partition} "
            f"({-drop:+.2%}): {verdict}"
        ),
        metadata={
            "rows": rows,
            "previous_partition": previous_partition,
            "previous_rows": previous_rows,
            "drop_share": drop,
            "warn_above": thresholds.row_drop_warn,
            "error_above": thresholds.row_drop_error,
            "comparison": preview(comparison),
        },
    )


def previous_rows(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str
) -> tuple[str, int] | None:
    """``(partition, rows)`` of the latest materialisation of the most recent earlier partition.

    Daily partition keys are ISO dates, so text order is date order.
    """
    earlier = [p for p in instance.get_materialized_partitions(key) if p < partition]
    if not earlier:
        return None
    previous = max(earlier)
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[previous]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    entry = materialization.metadata.get(TYPED_ROWS) if materialization else None
    if entry is None or not isinstance(entry.value, int):
        return None
    return previous, entry.value


def validated_metadata(result: ValidationResult, table: str) -> dict[str, Any]:
    """Sizes, share and flag counts: the numbers the UI plots partition by partition."""
    return {
        "dagster/row_count": result.validated.height,
        "dagster/column_schema": layer_column_schema(table, "validated", result.validated),
        "preview": preview(result.validated),
        TYPED_ROWS: result.rows,
        "quarantine_rows": result.quarantine.height,
        "quarantine_share": result.quarantine_share,
        **result.flag_counts,
    }


def quarantine_metadata(result: ValidationResult, table: str) -> dict[str, Any]:
    """Sizes and the rule summary; the reasons of a few rows as the examples."""
    primary_key = list(table_schema(table).primary_key)
    return {
        "dagster/row_count": result.quarantine.height,
        "dagster/column_schema": layer_column_schema(table, "quarantine", result.quarantine),
        "quarantine_share": result.quarantine_share,
        "rules_broken": result.rule_summary.height,
        "rule_summary": dg.MetadataValue.md(result.rule_summary_markdown()),
        "reasons": _examples(result.quarantine.select(*primary_key, REASONS)),
    }


def build_validation_assets(endpoint: Endpoint) -> dg.AssetsDefinition:
    """The validated and quarantine assets of one table, and their checks, as one step."""
    name = endpoint.name
    validated_key = dg.AssetKey(["validated", name])
    quarantine_key = dg.AssetKey(["quarantine", name])

    @dg.multi_asset(
        name=f"validate_{name}",
        ins={"typed": dg.AssetIn(key=["typed", name])},
        outs={
            "validated": dg.AssetOut(
                key=validated_key,
                group_name=VALIDATED_GROUP,
                kinds={"polars", "pandera", "parquet"},
                description=(
                    f"{endpoint.description} Typed rows that pass every hard rule, with "
                    "boolean flag columns for soft problems (smallholder tables)."
                ),
            ),
            "quarantine": dg.AssetOut(
                key=quarantine_key,
                group_name=QUARANTINE_GROUP,
                kinds={"polars", "pandera", "parquet"},
                description=(
                    f"{endpoint.description} Typed rows that broke a hard rule, each with "
                    "`reasons` naming every rule broken and the offending value."
                ),
            ),
        },
        partitions_def=daily_partitions,
        check_specs=[
            dg.AssetCheckSpec(
                PRIMARY_KEY_CHECK,
                asset=validated_key,
                description="No primary key appears twice among validated rows.",
            ),
            dg.AssetCheckSpec(
                QUARANTINE_SHARE_CHECK,
                asset=quarantine_key,
                description=(
                    f"Share of rows quarantined: WARN above {_percent(QUARANTINE_WARN_SHARE)}, "
                    f"ERROR above {_percent(QUARANTINE_ERROR_SHARE)} (run config can change)."
                ),
            ),
            dg.AssetCheckSpec(
                ROW_COUNT_CHECK,
                asset=validated_key,
                blocking=True,
                description=(
                    "Rows against the most recent earlier partition: WARN on a drop above "
                    f"{_percent(ROW_DROP_WARN)}, ERROR above {_percent(ROW_DROP_ERROR)}, "
                    "which holds back every downstream step."
                ),
            ),
        ],
    )
    def validation_assets(
        context: dg.AssetExecutionContext, config: QualityThresholds, typed: StoredFrame
    ) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
        result = split_valid(typed.frame, name)
        lineage = lineage_metadata(sources_of(name, typed))
        if result.quarantine.height:
            context.log.info(
                f"{name} partition {context.partition_key}: {result.quarantine.height} of "
                f"{result.rows} row(s) quarantined; rules broken:\n"
                + result.rule_summary_markdown()
            )
        yield dg.Output(
            result.validated,
            output_name="validated",
            metadata={**validated_metadata(result, name), **lineage},
        )
        yield dg.Output(
            result.quarantine,
            output_name="quarantine",
            metadata={**quarantine_metadata(result, name), **lineage},
        )
        yield primary_key_check_result(result, validated_key)
        yield quarantine_share_check_result(result, quarantine_key, config)
        yield row_count_check_result(
            result.rows,
            previous_rows(context.instance, validated_key, context.partition_key),
            validated_key,
            config,
        )

    return validation_assets


defs = dg.Definitions(assets=[build_validation_assets(endpoint) for endpoint in ENDPOINTS])
