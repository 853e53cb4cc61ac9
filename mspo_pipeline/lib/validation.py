"""Typed frame -> validated rows + quarantined rows, each quarantined row with its reasons.

Every row lands in exactly one of the two frames (``validated.height + quarantine.height ==
typed.height``). The hard rules are the table's pandera schema (``schemas.pandera_schema``),
run lazily so every broken rule of every row is reported at once; pandera's failure cases are
grouped by row into one ``reasons`` string per quarantined row (each broken rule with the
offending value) and a ``rules`` list (the rules' names alone, so a query can count them), and
summarised per rule, never dumped whole.

A duplicated primary key quarantines every row that carries it: the API gives no way to tell
which copy is right (``updated_at`` cannot be trusted), and keeping one arbitrarily would make
the validated table depend on row order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from mspo_pipeline.lib.schemas import (
    CAST_ERRORS,
    REASONS,
    RULES,
    SOFT_FLAGS,
    TableSchema,
    hard_cast_pattern,
    pandera_schema,
    table_schema,
)

EXAMPLES = 3
"""Distinct offending values shown per rule in the summary."""
_UNIQUENESS = ("field_uniqueness", "multiple_fields_uniqueness")
_INDEX = "__mspo_row"
"""Row number of the typed frame (pandera calls it ``index``; ours cannot clash with data)."""


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The validated and quarantined rows of one table, and figures about them."""

    table: str
    validated: pl.DataFrame
    """Typed columns minus ``cast_errors``, plus the soft-flag columns (smallholder tables)."""
    quarantine: pl.DataFrame
    """Typed columns plus ``reasons`` (rules with values) and ``rules`` (their names alone)."""
    rule_summary: pl.DataFrame
    """One row per broken rule: ``rule``, ``column``, ``rows`` (UInt32), ``examples`` (String)."""
    flag_counts: Mapping[str, int]
    """Soft flag -> validated rows carrying it (empty for reference tables)."""

    @property
    def rows(self) -> int:
        return self.validated.height + self.quarantine.height

    @property
    def quarantine_share(self) -> float:
        """Quarantined rows as a fraction of all rows (0.0 for an empty table)."""
        return self.quarantine.height / self.rows if self.rows else 0.0

    @property
    def rule_counts(self) -> dict[str, int]:
        """Rule -> number of rows that broke it."""
        return dict(zip(self.rule_summary["rule"], self.rule_summary["rows"], strict=True))

    def rule_summary_markdown(self) -> str:
        """The rule summary as a Markdown table, for asset-check metadata."""
        lines = ["| rule | column | rows | examples |", "| --- | --- | --- | --- |"]
        lines.extend(
            "| " + " | ".join(_cell(v) for v in row) + " |" for row in self.rule_summary.iter_rows()
        )
        return "\n".join(lines)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _failure_cases(typed: pl.DataFrame, table: str) -> pl.DataFrame:
    """Pandera's row-level failure cases (``index``, ``column``, ``check``, ``failure_case``).

    A failure that names no row means the frame itself is wrong (a missing column, a wrong
    dtype): no row is to blame, so it is raised instead of quarantining everything. Only the
    declared columns are handed to pandera: nothing checks the carried-on ones, and pandera's
    composite-key report breaks on a frame with a column called ``index``.

    pandera is imported here, not with the module: it imports pandas whenever pandas is
    installed (the image and the development environment have it), and a process that loads
    the definitions without validating (the code server the webserver and the daemon ask)
    would carry both for nothing.
    """
    from pandera.errors import SchemaErrors

    schema = pandera_schema(table)
    checked = typed.select(c for c in typed.columns if c in schema.columns)
    try:
        schema.validate(checked, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return pl.DataFrame(
            schema={
                "failure_case": pl.String,
                "column": pl.String,
                "check": pl.String,
                _INDEX: pl.Int32,
            }
        )
    structural = cases.filter(pl.col("index").is_null())
    if structural.height:
        problems = "; ".join(
            f"{r['column']}: {r['check']} ({r['failure_case']})"
            for r in structural.iter_rows(named=True)
        )
        raise ValueError(
            f"typed frame for {table!r} does not match its tidy schema ({problems}); "
            "build it with mspo_pipeline.lib.casting.to_typed from the raw snapshot"
        )
    return cases.select("failure_case", "column", "check", pl.col("index").alias(_INDEX))


def _described(cases: pl.DataFrame, typed: pl.DataFrame, schema: TableSchema) -> pl.DataFrame:
    """Each failure case with its ``rule`` and the offending ``value`` as the reasons show it."""
    key = ", ".join(schema.primary_key)
    if cases.filter(pl.col("check").is_in(_UNIQUENESS)).height:
        keys = typed.select(
            pl.int_range(typed.height, dtype=pl.Int32).alias(_INDEX),
            pl.concat_str(
                [pl.col(k).cast(pl.String).fill_null("null") for k in schema.primary_key],
                separator=", ",
            ).alias("key"),
        )
        cases = cases.join(keys, on=_INDEX, how="left", maintain_order="left")
    else:
        cases = cases.with_columns(key=pl.lit(None, dtype=pl.String))
    text_columns = [c.name for c in schema.columns if c.dtype == pl.String]
    check, column, case = pl.col("check"), pl.col("column"), pl.col("failure_case")
    hard_casts = case.str.extract_all(hard_cast_pattern(schema)).list.eval(
        pl.element().str.strip_prefix("; ")
    )
    return cases.select(
        _INDEX,
        column,
        pl.when(check == "not_nullable")
        .then(column + " is null")
        .when(check.is_in(_UNIQUENESS))
        .then(pl.lit(f"duplicate primary key ({key})"))
        .otherwise(check)
        .alias("rule"),
        pl.when(check == "not_nullable")
        .then(None)
        .when(check.is_in(_UNIQUENESS))
        .then(pl.col("key"))
        .when(column == CAST_ERRORS)
        .then(hard_casts.list.join("; "))
        .when(column.is_in(text_columns))
        .then('"' + case + '"')
        .otherwise(case)
        .alias("value"),
    )


def _summary(described: pl.DataFrame) -> pl.DataFrame:
    return (
        described.group_by("rule", "column")
        .agg(
            pl.col(_INDEX).n_unique().alias("rows"),
            pl.col("value")
            .drop_nulls()
            .unique(maintain_order=True)
            .head(EXAMPLES)
            .str.join(", ")
            .alias("examples"),
        )
        .sort(["rows", "rule"], descending=[True, False])
    )


def split_valid(typed: pl.DataFrame, table: str) -> ValidationResult:
    """Split the typed frame of ``table`` into validated and quarantined rows (module docstring)."""
    schema = table_schema(table)
    described = _described(_failure_cases(typed, table), typed, schema)
    reasons = (
        described.with_columns(
            pl.when(pl.col("value").is_null())
            .then(pl.col("rule"))
            .otherwise(pl.col("rule") + ": " + pl.col("value"))
            .alias(REASONS)
        )
        .group_by(_INDEX, maintain_order=True)
        .agg(
            pl.col(REASONS).unique(maintain_order=True).str.join("; "),
            pl.col("rule").unique(maintain_order=True).alias(RULES),
        )
    )
    indexed = typed.with_row_index(_INDEX).with_columns(pl.col(_INDEX).cast(pl.Int32))
    quarantine = indexed.join(reasons, on=_INDEX, how="inner", maintain_order="left").drop(_INDEX)
    validated = indexed.filter(pl.col(_INDEX).is_in(reasons[_INDEX].implode()).not_()).drop(
        _INDEX, CAST_ERRORS
    )
    flag_counts: dict[str, int] = {}
    if schema.has_flags:
        validated = validated.with_columns(f.expr.alias(f.name) for f in SOFT_FLAGS)
        flag_counts = validated.select(pl.col(f.name).sum() for f in SOFT_FLAGS).row(0, named=True)
    return ValidationResult(
        table=table,
        validated=validated,
        quarantine=quarantine,
        rule_summary=_summary(described),
        flag_counts=flag_counts,
    )
