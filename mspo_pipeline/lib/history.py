"""Plot history: one row per plot and version, kept up to date one captured day at a time.

``curated.smallholders`` keeps each day whole, so "what did the register say on 3 March" or
"when did this plot's certificate change" would otherwise mean scanning every daily snapshot.
The history keeps only what changed: a **version** is a run of captured days over which a plot's
tidy columns (every column of ``curated.smallholders`` except the per-day ``DAY_COLUMNS``:
``partition_date``, ``snapshot_date``, ``late_capture``) did not change. A plot that changes and
later changes back gets a new version, not its old one again: the timeline shows both changes.

Boundaries are partition days, and only captured days count (a day with no stored partition is
not evidence of anything):

- ``valid_from``: the first partition day the version was seen.
- ``valid_to``: the **last partition day on which the version was seen (inclusive)**; null while
  the version is current (it was seen on the history's own, newest day).
- ``replaced_on``: the partition day the next version (or the plot's absence) was first seen;
  null while current. Days strictly between ``valid_to`` and ``replaced_on`` were not captured:
  the change happened after ``valid_to`` and no later than ``replaced_on``.
- ``valid_from_late`` / ``valid_to_late``: that boundary day's partition is a late capture (it
  holds a later day's register, the scheme's ``late_capture`` that day), so the boundary is only
  as good as that later register: the version may have begun later, or lasted longer.
- ``removed``: the row records that the plot was absent from the register from ``valid_from``
  (its tidy columns are null). A soft delete is not a removal: it is a version whose ``deleted``
  is true. A plot that comes back after a removal starts a new version.

Every plot ever seen has exactly one row with ``replaced_on`` null: its current version, or its
removal. As of a day D, the register is the versions with ``valid_from <= D`` and ``replaced_on``
null or after D, removals left out: on a captured day, exactly that day's ``smallholders``; on a
day that was not captured, the register as last captured before it.

``merge_history`` builds day D from the history of the previous captured day and D's
``smallholders``, in polars: one hash per row over the tidy columns, computed on both sides in the
same call (polars' hash is not promised to be stable across versions, so stored hashes would be a
liability), one join of the current versions' keys and hashes with today's, three columns rewritten
where a version ends, and each new version placed after its plot's kept ones (the stored history is
in plot order, so a binary search finds the place). The kept versions are not copied: the result is
slices of them with the new rows between, so the day holds little more than the history and its
inputs (a day of very many changes gathers one copy). Its cost depends on the number of plots and
versions, not on the number of days kept, but the versions grow with the days (about 340k after 30
days at full scale, 540k after 1,095: ``benchmarks.history`` times the day's fold at each age).
``build_history`` derives the same table from every day at once in DuckDB, a different algorithm
(gaps and islands over the plot-by-day grid, DuckDB's own hash): the oracle the incremental chain is
tested against, and a one-shot rebuild from stored ``smallholders`` partitions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import polars as pl

from mspo_pipeline.lib.curated import DAY_COLUMNS, KEY, partition_date
from mspo_pipeline.lib.schemas import curated_table
from mspo_pipeline.lib.tables import PLOT_HISTORY, VERSION_COLUMNS

_VERSION_NAMES = tuple(column.name for column in VERSION_COLUMNS)
_NOT_TIDY = frozenset({*KEY, *_VERSION_NAMES, *DAY_COLUMNS})
_ORDER = [*KEY, "version"]
"""The history's order: by plot, then version."""
_MAX_PIECES = 10_000
"""Most pieces a day's history is put together from without copying: a frame of 10,000 chunks
wrote and counted as fast as one of 4 at full scale; a day that changes more is gathered."""


def tidy_columns(columns: Sequence[str]) -> list[str]:
    """The columns of a ``smallholders`` or ``plot_history`` frame that make up a version."""
    return [c for c in columns if c not in _NOT_TIDY]


def history_schema(smallholders: pl.Schema) -> pl.Schema:
    """The schema of ``plot_history`` over ``smallholders`` frames of this schema: the key and
    tidy columns as the frames have them, the version columns as declared."""
    declared = curated_table(PLOT_HISTORY).schema
    return pl.Schema(
        {
            **{k: smallholders[k] for k in KEY},
            **{name: declared[name] for name in _VERSION_NAMES},
            **{c: smallholders[c] for c in tidy_columns(smallholders.names())},
        }
    )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _hash(columns: Sequence[str]) -> str:
    """DuckDB's hash over ``columns`` (one UBIGINT): equal rows, equal hashes."""
    return f"hash({', '.join(_ident(c) for c in columns)})"


def _check_smallholders(columns: Sequence[str], partition: str | None = None) -> None:
    missing = [c for c in (*KEY, "partition_date", "late_capture") if c not in columns]
    if missing:
        where = f" of {partition}" if partition else ""
        raise ValueError(
            f"plot_history needs curated.smallholders{where} with {', '.join(missing)}; build it "
            "with curated.smallholders(...) (or add the capture columns with with_captures)"
        )


def merge_history(
    *,
    history: pl.DataFrame | None,
    history_partition: str | None,
    history_late: Mapping[str, bool | None],
    smallholders: pl.DataFrame,
    partition: str,
) -> pl.DataFrame:
    """The history as of ``partition``: ``history`` (as of ``history_partition``, the previous
    captured day; None for the first) with ``smallholders`` of ``partition`` folded in.

    ``history_late`` is, per scheme, whether ``history_partition`` was a late capture (its raw
    footers): it becomes ``valid_to_late`` of the versions that end there. Sorted by plot and
    version. Raises ``ValueError`` unless ``partition`` is after ``history_partition``.
    """
    _check_smallholders(smallholders.columns, partition)
    if (history is None) != (history_partition is None):
        raise ValueError(
            f"plot_history for {partition}: pass the previous history and its partition together "
            f"(got partition {history_partition!r} and {'no' if history is None else 'a'} frame)"
        )
    day = partition_date(partition)
    if history is None or history_partition is None:
        history = pl.DataFrame(schema=history_schema(smallholders.schema))
        before = day - dt.timedelta(days=1)  # never used: an empty history closes nothing
    else:
        before = partition_date(history_partition)
        if before >= day:
            raise ValueError(
                f"plot_history for {partition} cannot build on the history of "
                f"{history_partition}: days are folded in date order"
            )
    new_tidy = tidy_columns(smallholders.columns)
    old_tidy = tidy_columns(history.columns)
    tidy = [*new_tidy, *(c for c in old_tidy if c not in new_tidy)]
    common = pl.concat(
        [
            pl.DataFrame(schema=frame.select(columns).schema)
            for frame, columns in ((smallholders, new_tidy), (history, old_tidy))
        ],
        how="diagonal_relaxed",
    ).schema

    versions = history.select(*KEY, "version", "removed", "replaced_on").with_columns(
        pl.when(~pl.col("removed"))
        .then(_row_hashes(history, tidy, common, old_tidy))
        .alias("row_hash")
    )
    current = versions.lazy().filter(pl.col("replaced_on").is_null()).drop("replaced_on")
    today = smallholders.select(*KEY).with_columns(
        _row_hashes(smallholders, tidy, common, new_tidy).alias("today_hash")
    )
    pairs = current.join(today.lazy(), on=KEY, how="full", coalesce=True)
    present = pl.col("today_hash").is_not_null()
    ends = pl.col("version").is_not_null() & pl.when(pl.col("removed")).then(present).otherwise(
        ~present | (pl.col("today_hash") != pl.col("row_hash"))
    )
    starts = (
        pairs.filter(ends | pl.col("version").is_null())
        .select(*KEY, "version", ends.alias("ends"), present.alias("present"))
        .collect()
    )

    # Close the current versions that end: only three columns change, the rest is shared.
    closing = (
        history.select(*KEY, "replaced_on")
        .join(
            starts.filter("ends").select(*KEY, pl.lit(True).alias("ends")),
            on=KEY,
            how="left",
            maintain_order="left",
        )
        .select(pl.col("ends").fill_null(False) & pl.col("replaced_on").is_null())
        .to_series()
    )
    late_before = pl.col("scheme").replace_strict(
        dict(history_late), default=None, return_dtype=pl.Boolean
    )
    closed = history.with_columns(
        pl.when(closing).then(pl.lit(before)).otherwise("valid_to").alias("valid_to"),
        pl.when(closing).then(late_before).otherwise("valid_to_late").alias("valid_to_late"),
        pl.when(closing).then(pl.lit(day)).otherwise("replaced_on").alias("replaced_on"),
    )
    opened = smallholders.join(starts.filter("present").select(*KEY, "version"), on=KEY).select(
        *KEY,
        (pl.col("version").fill_null(0) + 1).alias("version"),
        pl.lit(day).alias("valid_from"),
        pl.col("late_capture").alias("valid_from_late"),
        pl.lit(False).alias("removed"),
        *new_tidy,
    )
    day_late = smallholders.group_by("scheme").agg(
        pl.col("late_capture").drop_nulls().first().alias("valid_from_late")
    )
    removals = (
        starts.filter(~pl.col("present"))
        .join(day_late, on="scheme", how="left")
        .select(
            *KEY,
            (pl.col("version") + 1).alias("version"),
            pl.lit(day).alias("valid_from"),
            "valid_from_late",
            pl.lit(True).alias("removed"),
        )
    )
    merged = pl.concat([closed, opened, removals], how="diagonal_relaxed")
    declared = curated_table(PLOT_HISTORY).schema
    merged = merged.select(
        *KEY, *(pl.col(name).cast(declared[name]) for name in _VERSION_NAMES), *tidy
    )
    return _in_plot_order(merged, kept=closed.height)


def _in_plot_order(merged: pl.DataFrame, *, kept: int) -> pl.DataFrame:
    """``merged`` sorted by scheme, plot id and version: its first ``kept`` rows are the previous
    day's history, stored in that order, the others the day's new versions, at most one per plot
    and later than its kept ones.

    Each new row then belongs right after the kept rows of its plot, a place a binary search
    finds: the day costs a search per new version, not a sort of every version kept (at 1,095
    days, 536k versions, the sort was 0.33 s of the merge's 0.84). The result is then the kept
    rows cut where new ones go in, and the pieces put together without copying them: on a day
    of a few thousand changes the history is not copied at all (a gather of every row was one
    more copy of it, about 100 MiB at its peak at 1,095 days). The order is checked first: a
    history stored out of order, or a plot twice in one day, is sorted whole instead, and a
    day that cuts the history into more than ``_MAX_PIECES`` pieces is gathered in one copy.
    """
    if merged.is_empty():
        return merged
    schemes = merged.get_column(KEY[0]).unique().sort()
    rank = pl.col(KEY[0]).replace_strict(schemes, range(schemes.len()), return_dtype=pl.UInt32)
    keys = merged.select(rank, *_ORDER[1:])  # the schemes as numbers in the same order: smaller
    rows = _placed(keys, kept)
    if rows is None or not _in_order(keys[rows]):
        return merged[keys.select(pl.arg_sort_by(*_ORDER)).to_series()]
    order = rows.to_numpy()
    cuts = np.flatnonzero(np.diff(order) != 1) + 1  # where the next row is not the one after
    if len(cuts) >= _MAX_PIECES:
        return merged[rows]
    starts, ends = np.concatenate([[0], cuts]), np.concatenate([cuts, [len(order)]])
    pieces = [merged.slice(int(order[a]), int(b - a)) for a, b in zip(starts, ends, strict=True)]
    return pl.concat(pieces, rechunk=False)


def _placed(keys: pl.DataFrame, kept: int) -> pl.Series | None:
    """Row numbers that put the new rows of ``keys`` after the kept rows of their plot, or None
    if the searches say the kept rows are not in order."""
    old, new = keys.head(kept), keys.slice(kept).with_row_index("row").sort(KEY)
    schemes, ids = old.get_column(KEY[0]), old.get_column(KEY[1])
    positions = np.empty(new.height, dtype=np.int64)
    done = 0
    for (scheme,), added in new.group_by(KEY[0], maintain_order=True):
        first = schemes.search_sorted(scheme, side="left")
        last = schemes.search_sorted(scheme, side="right")
        found = ids.slice(first, last - first).search_sorted(added.get_column(KEY[1]), "right")
        positions[done : done + added.height] = first + found.to_numpy()
        done += added.height
    if np.any(np.diff(positions) < 0):
        return None
    order = np.empty(keys.height, dtype=np.uint32)
    landing = positions + np.arange(new.height)  # where each new row lands among all rows
    from_kept = np.ones(keys.height, dtype=bool)
    from_kept[landing] = False
    order[from_kept] = np.arange(kept)
    order[landing] = kept + new.get_column("row").to_numpy()
    return pl.Series("row", order)


def _in_order(frame: pl.DataFrame) -> bool:
    """Whether every row's (scheme, plot id, version) is greater than the row's before."""
    scheme, plot, version = (pl.col(c) for c in _ORDER)
    greater = (scheme > scheme.shift()) | (
        (scheme == scheme.shift())
        & ((plot > plot.shift()) | ((plot == plot.shift()) & (version > version.shift())))
    )
    return bool(frame.select(greater.slice(1).fill_null(False).all()).item())


def _row_hashes(
    frame: pl.DataFrame, tidy: Sequence[str], common: pl.Schema, present: Sequence[str]
) -> pl.Series:
    """One hash per row over the ``tidy`` columns of ``frame``, which has the ``present`` ones,
    each cast to its ``common`` type across the two days (an absent column counts as null):
    equal values hash alike whichever day sent them, even if a column's type or presence
    differs between the days. ``hash_rows`` hashes the columns in place; a struct of them cost
    about 64 MiB and 0.14 s more over a day's history."""
    return frame.select(
        pl.col(c).cast(common[c]) if c in present else pl.lit(None, common[c]).alias(c)
        for c in tidy
    ).hash_rows(seed=0)


def _select_history(tidy: Sequence[str]) -> str:
    """The history's columns in their order, version columns cast to their declared types."""
    versions = [f"{_ident(c.name)}::{c.sql_type} AS {_ident(c.name)}" for c in VERSION_COLUMNS]
    return ", ".join([*KEY, *versions, *(_ident(c) for c in tidy)])


def _run(
    conn: duckdb.DuckDBPyConnection, sql: str, frames: Mapping[str, pl.DataFrame]
) -> pl.DataFrame:
    """``sql`` over ``frames`` exposed as Arrow views (strings scanned in place), then dropped."""
    conn.execute("SET TimeZone = 'UTC'")
    for name, frame in frames.items():
        conn.register(name, frame.to_arrow(compat_level=pl.CompatLevel.newest()))
    try:
        return conn.sql(sql).pl()
    finally:
        for name in frames:
            conn.unregister(name)


def build_history(
    conn: duckdb.DuckDBPyConnection, smallholders: pl.DataFrame | duckdb.DuckDBPyRelation
) -> pl.DataFrame:
    """The history of every day in ``smallholders`` (all partitions stacked) at once.

    The captured days are the distinct ``partition_date`` values (a day without a single row is
    not one; the raw layer never stores an empty register). Equal to folding the days in one by
    one with ``merge_history``; costs the number of plots times the number of days, which is why
    the asset does not use it.
    """
    columns = smallholders.columns
    _check_smallholders(columns)
    tidy = tidy_columns(columns)
    key = ", ".join(KEY)
    plot = "PARTITION BY scheme, entity_smallholder_id ORDER BY partition_date"
    sql = f"""
        WITH seen AS (
            SELECT partition_date, {key}, late_capture, {_hash(tidy)} AS row_hash
            FROM _mspo_all
        ),
        days AS (SELECT DISTINCT partition_date FROM seen),
        day_late AS (
            SELECT partition_date, scheme, any_value(late_capture) AS late
            FROM seen GROUP BY ALL
        ),
        grid AS (
            SELECT f.scheme, f.entity_smallholder_id, d.partition_date, s.row_hash
            FROM (
                SELECT {key}, min(partition_date) AS first_day FROM seen GROUP BY ALL
            ) AS f
            JOIN days AS d ON d.partition_date >= f.first_day
            LEFT JOIN seen AS s USING ({key}, partition_date)
        ),
        islands AS (
            SELECT *, sum(starts) OVER (
                {plot} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            )::INTEGER AS version
            FROM (
                SELECT *, (lag(row_hash) OVER ({plot}) IS DISTINCT FROM row_hash
                           OR row_number() OVER ({plot}) = 1)::INTEGER AS starts
                FROM grid
            )
        ),
        versions AS (
            SELECT {key}, version, min(partition_date) AS valid_from,
                   max(partition_date) AS last_seen, bool_and(row_hash IS NULL) AS removed
            FROM islands GROUP BY ALL
        ),
        spans AS (
            SELECT *, lead(valid_from) OVER (
                PARTITION BY scheme, entity_smallholder_id ORDER BY version
            ) AS replaced_on
            FROM versions
        )
        SELECT {_select_history(tidy)} FROM (
            SELECT v.{KEY[0]}, v.{KEY[1]}, v.version, v.valid_from,
                   fl.late AS valid_from_late,
                   CASE WHEN v.replaced_on IS NOT NULL THEN v.last_seen END AS valid_to,
                   CASE WHEN v.replaced_on IS NOT NULL THEN tl.late END AS valid_to_late,
                   v.replaced_on, v.removed, {", ".join("r." + _ident(c) for c in tidy)}
            FROM spans AS v
            LEFT JOIN _mspo_all AS r
                ON NOT v.removed AND r.partition_date = v.valid_from
                AND r.scheme = v.scheme AND r.entity_smallholder_id = v.entity_smallholder_id
            LEFT JOIN day_late AS fl
                ON fl.partition_date = v.valid_from AND fl.scheme = v.scheme
            LEFT JOIN day_late AS tl
                ON tl.partition_date = v.last_seen AND tl.scheme = v.scheme
        )
        ORDER BY scheme, entity_smallholder_id, version
    """
    if isinstance(smallholders, pl.DataFrame):
        return _run(conn, sql, {"_mspo_all": smallholders})
    conn.execute("SET TimeZone = 'UTC'")
    smallholders.create_view("_mspo_all", replace=True)
    try:
        return conn.sql(sql).pl()
    finally:
        conn.execute("DROP VIEW IF EXISTS _mspo_all")


def as_of(history: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The register as it stood on ``day`` according to ``history`` (see the module docstring):
    the plots' tidy columns, in key order, without the version columns."""
    valid = history.filter(
        pl.col("valid_from") <= day,
        pl.col("replaced_on").is_null() | (pl.col("replaced_on") > day),
        ~pl.col("removed"),
    )
    return valid.select(*KEY, *tidy_columns(history.columns)).sort(KEY)
