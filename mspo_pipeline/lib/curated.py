"""The curated layer: validated frames joined on DuckDB into the tables analysts query.

Every function takes a DuckDB connection (in Dagster, ``DuckDBResource.get_connection()``) and
polars frames, exposes the frames to DuckDB as Arrow views for the duration of one query, and
returns a polars frame. The frames are exported with polars' newest Arrow compatibility level:
its string columns become Arrow ``string_view`` arrays that DuckDB scans in place, whereas the
default export (``large_string``) and handing DuckDB the polars frame itself both copy every
string (measured: 3M strings, 54 MB of scan memory against 178 MB).

Decisions an analyst relies on:

- A plot is identified by ``(scheme, entity_smallholder_id)``; the three registers number their
  plots independently.
- Canonical names (``zone``, ``state``, ``daerah``) come from the reference tables of the same
  partition, looked up by id; the row's own text is kept as ``zone_reported``,
  ``state_reported`` and ``daerah_reported``. An id the references do not know gets a null
  canonical name (and a flag), never the row's own text, so a group-by on ``state`` shows the gap.
- Flags are never null: true only when the row has a value and it disagrees with the references.
  Names are compared case- and space-insensitively, so "ZON TIMUR 2" is not a mismatch.
- OSH has no soft delete: a listed OSH plot is live, so its ``deleted`` is false (not null) and
  ``WHERE NOT deleted`` works across schemes. OSH has no zone, mukim, SPOC code or record status.
- "Usable GPS" means none of the validated GPS flags (missing, zero, outside Malaysia, swapped).
- "Active certified hectares" are ``certified_area`` of plots with ``cert_status = 'ACTIVE'``
  that are not deleted.
- The summary leaves out deleted plots: they are no longer in the register.
- ``changes`` compares live plots (present and not deleted). With no earlier partition to compare
  against it is empty: the first snapshot is a baseline, not 350k "new" plots in a day-by-day
  chart; the asset's metadata says there was no baseline.
- The API only ever serves today's register, so a backfilled partition can hold a later day's:
  every row says which day's register it is (``snapshot_date``) and whether that is a later day
  than its partition (``late_capture``), per scheme, from the raw snapshot of that scheme's
  register (``Capture``). A partition date alone would claim a register nobody saw.

Each function sets the session ``TimeZone`` to UTC so timestamps come back as ``Datetime(us,
"UTC")`` and render as UTC text in ``changes``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import polars as pl

from mspo_pipeline.lib.days import partition_date
from mspo_pipeline.lib.late_capture import stored_capture
from mspo_pipeline.lib.schemas import (
    REFERENCE_FLAGS,
    REGISTER_TABLES,
    SOFT_FLAGS,
    curated_table,
    register_columns,
)

SCHEMES = tuple(REGISTER_TABLES)
"""Values of ``curated.smallholders.scheme``, one per smallholder register."""

KEY = ("scheme", "entity_smallholder_id")
"""The key of a plot in ``curated.smallholders`` and ``curated.changes``."""

CAPTURE_COLUMNS = ("snapshot_date", "late_capture")
"""Which day's register a row is, and whether that day is later than its partition."""
DAY_COLUMNS = ("partition_date", *CAPTURE_COLUMNS)
"""The per-day columns of ``smallholders``: not the plot's data, so history does not compare
them (the same plot on the next day is the same version)."""

_SOFT_FLAGS = tuple(flag.name for flag in SOFT_FLAGS)
_GPS_FLAGS = tuple(name for name in _SOFT_FLAGS if name.startswith("flag_gps_"))


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    dtype: pl.DataType
    schemes: frozenset[str]
    """The schemes whose validated table has this column."""


def _source_columns() -> tuple[_Column, ...]:
    """The registers' aligned tidy columns (``schemas.register_columns``), then the soft flags
    all three carry."""
    aligned = tuple(_Column(r.column.name, r.column.dtype, r.schemes) for r in register_columns())
    every_scheme = frozenset(REGISTER_TABLES)
    return (*aligned, *(_Column(flag, pl.Boolean(), every_scheme) for flag in _SOFT_FLAGS))


_SOURCE_COLUMNS = _source_columns()
"""The validated columns ``smallholders`` aligns across the three registers."""

_CANONICAL = {"state": "st", "daerah": "d", "zone": "z"}
"""Alias of the reference lookup giving each reported name (``schemas.CANONICAL_NAMES``) its
canonical one."""

CHANGE_COLUMNS = tuple(
    f"{c.name}_reported" if c.name in _CANONICAL else c.name
    for c in _SOURCE_COLUMNS
    if c.name not in {"entity_smallholder_id", "deleted"} and not c.name.startswith("flag_")
)
"""The columns ``changes`` compares: the plot's own data as sent (deletion is reported as a
removal, derived names and flags would report reference or rule changes as plot changes)."""
CHANGES_READS = (*KEY, "deleted", *CHANGE_COLUMNS, *CAPTURE_COLUMNS)
"""What ``changes`` reads of a day's ``smallholders``: the rest of its columns (the canonical
names, the flags) would only be held in memory, twice, for nothing."""


def previous_partition(current: str, available: Iterable[str]) -> str | None:
    """The newest available partition before ``current``: what ``changes`` compares against.

    A day without a snapshot is skipped rather than breaking the chain, and the choice is
    recorded in ``changes.compared_with``.
    """
    today = partition_date(current)
    earlier = [p for p in available if partition_date(p) < today]
    return max(earlier, key=partition_date, default=None)


@dataclass(frozen=True, slots=True)
class Capture:
    """Which day's register one raw register snapshot holds, read off its Parquet footer.

    ``None`` means the footer does not say (a raw file without provenance, or one removed by a
    retention rule): the curated rows then carry null rather than a guess.
    """

    snapshot_date: dt.date | None
    """The day (Asia/Kuala_Lumpur) whose register the API served."""
    late_capture: bool | None
    """``snapshot_date`` is later than the partition: the day itself was never seen."""

    @classmethod
    def from_provenance(cls, provenance: Mapping[str, str], partition: str) -> Capture:
        """From a raw footer (``storage.read_provenance``), by the raw layer's own reading of it
        (``capture.stored_capture``: values an older footer lacks are derived from
        ``captured_at``; what cannot be known stays None)."""
        facts = stored_capture(provenance, partition)
        snapshot, late = facts.get("snapshot_date"), facts.get("late_capture")
        return cls(
            dt.date.fromisoformat(snapshot)
            if isinstance(snapshot, str) and snapshot[:1].isdigit()
            else None,
            late if isinstance(late, bool) else None,
        )


def on_time(partition: str) -> Mapping[str, Capture]:
    """Every scheme captured on the partition's own day: for tests and benchmarks that build
    registers without a raw layer."""
    day = partition_date(partition)
    return dict.fromkeys(SCHEMES, Capture(day, False))


def with_captures(
    frame: pl.DataFrame, captures: Mapping[str, Capture], *, partition: str
) -> pl.DataFrame:
    """``frame`` with ``snapshot_date`` and ``late_capture`` after ``partition_date``, by scheme.

    Raises ``ValueError`` when a scheme in ``frame`` has no capture: a row must never claim a
    register day nobody looked up.
    """
    missing = sorted(set(frame.get_column("scheme").unique().to_list()) - set(captures))
    if missing:
        raise ValueError(
            f"partition {partition}: no capture (raw footer) given for scheme(s) "
            f"{', '.join(missing)}; pass one Capture per scheme in the frame"
        )
    dates = {scheme: c.snapshot_date for scheme, c in captures.items()}
    late = {scheme: c.late_capture for scheme, c in captures.items()}
    scheme = pl.col("scheme")
    added = frame.drop(CAPTURE_COLUMNS, strict=False).with_columns(
        scheme.replace_strict(dates, default=None, return_dtype=pl.Date).alias("snapshot_date"),
        scheme.replace_strict(late, default=None, return_dtype=pl.Boolean).alias("late_capture"),
    )
    rest = [c for c in added.columns if c not in DAY_COLUMNS]
    return added.select(*(c for c in DAY_COLUMNS if c in added.columns), *rest)


@contextmanager
def _views(conn: duckdb.DuckDBPyConnection, frames: Mapping[str, pl.DataFrame]) -> Iterator[None]:
    """Expose polars frames to DuckDB as Arrow views without copying strings, then drop them."""
    conn.execute("SET TimeZone = 'UTC'")
    for name, frame in frames.items():
        conn.register(name, frame.to_arrow(compat_level=pl.CompatLevel.newest()))
    try:
        yield
    finally:
        for name in frames:
            conn.unregister(name)


def geography(
    conn: duckdb.DuckDBPyConnection,
    *,
    states: pl.DataFrame,
    zones: pl.DataFrame,
    zone_state: pl.DataFrame,
    spocs: pl.DataFrame,
    daerah: pl.DataFrame,
) -> pl.DataFrame:
    """The geography dimension: one row per (zone, state) the references pair.

    A state split between zones appears once per zone. Zones without states and states without
    a zone (Labuan, Putrajaya) still get a row with the other side null, so every reference id
    is in the table. ``spoc_codes`` lists the zone's SPOC codes; ``districts`` the state's
    districts as ``{daerah_id, daerah}``. State names come from ``states``, falling back to
    ``zone_state``'s own text for a state ``states`` does not list.
    """
    sql = """
        WITH state_names AS (
            SELECT i.state_id, coalesce(s.state, zs.state) AS state
            FROM (
                SELECT state_id FROM _mspo_states
                UNION SELECT state_id FROM _mspo_zone_state
                UNION SELECT state_id FROM _mspo_daerah
            ) AS i
            LEFT JOIN _mspo_states AS s USING (state_id)
            LEFT JOIN (
                SELECT state_id, min(state) AS state FROM _mspo_zone_state GROUP BY state_id
            ) AS zs USING (state_id)
            WHERE i.state_id IS NOT NULL
        ),
        pairs AS (
            SELECT DISTINCT zone_id, state_id FROM _mspo_zone_state
            UNION ALL
            SELECT z.zone_id, NULL FROM _mspo_zones AS z
            ANTI JOIN _mspo_zone_state AS zs USING (zone_id)
            UNION ALL
            SELECT NULL, n.state_id FROM state_names AS n
            ANTI JOIN _mspo_zone_state AS zs USING (state_id)
        ),
        zone_spocs AS (
            SELECT zone_id, list(DISTINCT spoc_code ORDER BY spoc_code) AS spoc_codes
            FROM _mspo_spocs WHERE spoc_code IS NOT NULL GROUP BY zone_id
        ),
        state_districts AS (
            SELECT state_id,
                   list({'daerah_id': daerah_id, 'daerah': daerah} ORDER BY daerah_id) AS districts
            FROM _mspo_daerah GROUP BY state_id
        )
        SELECT
            p.zone_id::INTEGER AS zone_id,
            z.zone,
            p.state_id::INTEGER AS state_id,
            n.state,
            coalesce(zs.spoc_codes, []::VARCHAR[]) AS spoc_codes,
            coalesce(d.districts, []::STRUCT(daerah_id INTEGER, daerah VARCHAR)[]) AS districts
        FROM pairs AS p
        LEFT JOIN _mspo_zones AS z USING (zone_id)
        LEFT JOIN state_names AS n USING (state_id)
        LEFT JOIN zone_spocs AS zs USING (zone_id)
        LEFT JOIN state_districts AS d USING (state_id)
        ORDER BY p.zone_id NULLS LAST, p.state_id
    """
    frames = {
        "_mspo_states": states,
        "_mspo_zones": zones,
        "_mspo_zone_state": zone_state,
        "_mspo_spocs": spocs,
        "_mspo_daerah": daerah,
    }
    with _views(conn, frames):
        return conn.sql(sql).pl()


def _aligned(scheme: str, frame: pl.DataFrame, partition: str) -> pl.DataFrame:
    """One register's rows in the aligned columns and types, null where it has no such column
    (but ``deleted`` false: a listed OSH plot is live)."""
    missing = [c.name for c in _SOURCE_COLUMNS if scheme in c.schemes and c.name not in frame]
    if missing:
        raise ValueError(
            f"validated {scheme} smallholders for partition {partition} lack the columns "
            f"{', '.join(missing)}; the validated layer no longer follows the typed-layer "
            "contract: rebuild typed and validated for this partition, or update "
            "mspo_pipeline/lib/curated.py"
        )
    return frame.select(
        pl.lit(scheme).alias("scheme"),
        *(
            pl.col(c.name).cast(c.dtype)
            if scheme in c.schemes
            else pl.lit(False if c.name == "deleted" else None, dtype=c.dtype).alias(c.name)
            for c in _SOURCE_COLUMNS
        ),
    )


def _mismatch(name: str, alias: str) -> str:
    """True when the row names an id and the name differs from the reference name of that id.

    An id the reference does not know has no reference name, so a named row counts as a
    mismatch. Case and surrounding spaces are ignored.
    """
    row, ref = f"s.{name}", f"{alias}.{name}"
    return (
        f"coalesce(s.{name}_id IS NOT NULL AND {row} IS NOT NULL "
        f"AND lower(trim({row})) <> lower(trim({ref})), {row} IS NOT NULL)"
    )


_ROW = "__mspo_row"
"""A plot's row number in the three registers stacked: how the lookups find their row."""
_LOOKED_UP = ("zone_id", "state_id", "daerah_id", "spoc_code", *_CANONICAL)
"""What the reference lookups read of a plot."""


def _reference_lookups(
    conn: duckdb.DuckDBPyConnection, plots: pl.DataFrame, geography: pl.DataFrame
) -> pl.DataFrame:
    """Per plot, in ``(scheme, entity_smallholder_id)`` order: its row number, the canonical
    names of its ids (``canonical_<name>``) and the reference flags.

    Only the columns the lookups read go to DuckDB, and only what they find comes back: the
    plots' other columns never pass through it (at full scale the whole table through the join
    took about 650 MB more; these few columns, a tenth of that).
    """
    canonical = ",\n            ".join(
        f"{alias}.{name} AS canonical_{name}" for name, alias in _CANONICAL.items()
    )
    sql = f"""
        WITH zones AS (
            SELECT DISTINCT zone_id, zone FROM _mspo_geography WHERE zone_id IS NOT NULL
        ),
        states AS (
            SELECT DISTINCT state_id, state FROM _mspo_geography WHERE state_id IS NOT NULL
        ),
        zone_states AS (
            SELECT DISTINCT zone_id, state_id FROM _mspo_geography
            WHERE zone_id IS NOT NULL AND state_id IS NOT NULL
        ),
        zone_spocs AS (
            SELECT DISTINCT zone_id, unnest(spoc_codes) AS spoc_code
            FROM _mspo_geography WHERE zone_id IS NOT NULL
        ),
        districts AS (
            SELECT DISTINCT state_id, d.daerah_id, d.daerah
            FROM (SELECT state_id, unnest(districts) AS d FROM _mspo_geography)
        )
        SELECT
            s.{_ROW},
            {canonical},
            {_mismatch("zone", "z")} AS zone_mismatch,
            {_mismatch("state", "st")} AS state_mismatch,
            s.zone_id IS NOT NULL AND s.state_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM zone_states AS zs
                WHERE zs.zone_id = s.zone_id AND zs.state_id = s.state_id
            ) AS state_not_in_zone,
            s.spoc_code IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM zone_spocs AS sc
                WHERE sc.zone_id = s.zone_id AND sc.spoc_code = s.spoc_code
            ) AS unknown_spoc_code,
            s.daerah_id IS NOT NULL AND d.daerah_id IS NULL AS unknown_daerah
        FROM _mspo_plots AS s
        LEFT JOIN zones AS z USING (zone_id)
        LEFT JOIN states AS st USING (state_id)
        LEFT JOIN districts AS d ON d.daerah_id = s.daerah_id AND d.state_id = s.state_id
        ORDER BY s.scheme, s.entity_smallholder_id
    """
    looked_up = plots.select(_ROW, *KEY, *_LOOKED_UP)
    with _views(conn, {"_mspo_plots": looked_up, "_mspo_geography": geography}):
        return conn.sql(sql).pl()


def smallholders(
    conn: duckdb.DuckDBPyConnection,
    *,
    spoc: pl.DataFrame,
    osh: pl.DataFrame,
    gm: pl.DataFrame,
    geography: pl.DataFrame,
    partition: str,
    captures: Mapping[str, Capture],
) -> pl.DataFrame:
    """SPOC, OSH and group-manager plots in one table, named and checked against the references.

    ``geography`` is this partition's ``geography(...)``; ``captures`` says, per scheme, which
    day's register its raw snapshot holds (``Capture.from_provenance`` of the raw footer), and
    becomes the ``snapshot_date`` and ``late_capture`` columns. Raises ``ValueError`` if a
    register lacks a contract column, if a scheme has no capture, or if ``(scheme,
    entity_smallholder_id)`` is not unique (a duplicate plot would make ``changes`` ambiguous).

    The registers are stacked in polars; DuckDB joins them to the references
    (``_reference_lookups``), and its answer, row numbers in key order, puts the stack in
    order.
    """
    plots = pl.concat(
        [
            _aligned(scheme, frame, partition)
            for scheme, frame in (("SPOC", spoc), ("OSH", osh), ("GM", gm))
        ],
        rechunk=False,
    ).with_row_index(_ROW)
    lookups = _reference_lookups(conn, plots, geography)
    ordered = plots.select(pl.all().gather(lookups.get_column(_ROW))).hstack(
        lookups.drop(_ROW).get_columns()
    )

    def curated_column(column: _Column) -> list[pl.Expr]:
        """The canonical name next to the row's own text for names, the row's value otherwise."""
        if column.name in _CANONICAL:
            return [
                pl.col(f"canonical_{column.name}").alias(column.name),
                pl.col(column.name).alias(f"{column.name}_reported"),
            ]
        return [pl.col(column.name)]

    result = ordered.select(
        pl.lit(partition_date(partition)).alias("partition_date"),
        "scheme",
        *(e for c in _SOURCE_COLUMNS if not c.name.startswith("flag_") for e in curated_column(c)),
        pl.any_horizontal(_GPS_FLAGS).not_().alias("gps_usable"),
        *_SOFT_FLAGS,
        *REFERENCE_FLAGS,
    )
    _check_unique(result, partition)
    return with_captures(result, captures, partition=partition)


def _check_unique(result: pl.DataFrame, partition: str) -> None:
    duplicates = result.group_by(KEY).len().filter(pl.col("len") > 1).sort(KEY)
    if duplicates.height:
        sample = ", ".join(f"{s} {i} ({n} rows)" for s, i, n in duplicates.head(5).iter_rows())
        raise ValueError(
            f"curated.smallholders for partition {partition}: {duplicates.height} plots appear "
            f"more than once (e.g. {sample}); either a register repeats an "
            "entity_smallholder_id or a reference table repeats an id. Check the validated "
            "tables of this partition (their primary-key checks should have quarantined them)"
        )


def certification_summary(
    conn: duckdb.DuckDBPyConnection, smallholders: pl.DataFrame
) -> pl.DataFrame:
    """Plots and hectares by partition, state, zone, scheme and certificate status.

    Deleted plots are left out. ``mpob_numbers`` counts distinct MPOB numbers within the group
    (it does not add up across groups); ``plots_gps_usable`` is kept beside
    ``gps_usable_share`` so shares can be re-aggregated correctly. ``snapshot_date`` and
    ``late_capture`` are the scheme's (one value per scheme and day, so they split no group).
    """
    sql = """
        SELECT
            partition_date, snapshot_date, late_capture,
            state_id, state, zone_id, zone, scheme, cert_status,
            count(*) AS plots,
            count(DISTINCT mpob_no) AS mpob_numbers,
            sum(planted_area) AS planted_ha,
            sum(certified_area) AS certified_ha,
            count(*) FILTER (WHERE gps_usable) AS plots_gps_usable,
            count(*) FILTER (WHERE gps_usable) / count(*) AS gps_usable_share
        FROM _mspo_smallholders
        WHERE deleted IS NOT TRUE
        GROUP BY ALL
        ORDER BY ALL
    """
    with _views(conn, {"_mspo_smallholders": smallholders}):
        return conn.sql(sql).pl()


def changes(
    conn: duckdb.DuckDBPyConnection,
    *,
    current: pl.DataFrame,
    previous: pl.DataFrame | None,
    current_partition: str,
    previous_partition: str | None,
) -> pl.DataFrame:
    """What changed per plot between two ``curated.smallholders`` partitions, one row per change.

    ``change_type`` is ``new`` (live now, absent or deleted before), ``removed`` (live before,
    absent or deleted now) or ``changed`` (live in both; one row per column in
    ``CHANGE_COLUMNS`` whose value differs, with ``column_name``, ``old_value`` and
    ``new_value`` as text, e.g. ``cert_status``, ``ACTIVE``, ``EXPIRED``). A deletion or an
    undeletion is spelled out as ``column_name = 'deleted'`` on its removed/new row; a plot that
    appears or disappears outright has null column and values. ``compared_with`` is the
    partition compared against. ``snapshot_date``/``late_capture`` are the row's scheme's in
    ``current`` and ``compared_snapshot_date``/``compared_late_capture`` in ``previous`` (both
    frames carry them, see ``with_captures``): a change between two registers is only as dated
    as the registers are. With no previous partition the result is empty.
    """
    if (previous is None) != (previous_partition is None):
        raise ValueError(
            f"changes for partition {current_partition}: pass the previous smallholders frame "
            f"and its partition key together (got partition {previous_partition!r} and "
            f"{'no' if previous is None else 'a'} frame)"
        )
    if previous is None or previous_partition is None:
        return pl.DataFrame(schema=curated_table("changes").schema)
    for frame, partition in ((current, current_partition), (previous, previous_partition)):
        if missing := [c for c in CAPTURE_COLUMNS if c not in frame.columns]:
            raise ValueError(
                f"changes for partition {current_partition}: smallholders of {partition} lack "
                f"{', '.join(missing)}; add them from that partition's raw footers with "
                "with_captures(...) (a partition written before these columns existed)"
            )
    now, before = partition_date(current_partition), partition_date(previous_partition)
    quiet = _quiet_plots(current, previous)
    diffs = ",\n".join(
        f"CASE WHEN c.{col} IS DISTINCT FROM p.{col} THEN {{'column_name': '{col}', "
        f"'old_value': p.{col}::VARCHAR, 'new_value': c.{col}::VARCHAR}} END"
        for col in CHANGE_COLUMNS
    )
    live = "deleted IS NOT TRUE"
    sql = f"""
        WITH cur AS (SELECT * FROM _mspo_current),
        prev AS (SELECT * FROM _mspo_previous),
        events AS (
            SELECT c.scheme, c.entity_smallholder_id, 'new' AS change_type,
                   CASE WHEN p.deleted THEN 'deleted' END AS column_name,
                   CASE WHEN p.deleted THEN 'true' END AS old_value,
                   CASE WHEN p.deleted THEN 'false' END AS new_value
            FROM cur AS c LEFT JOIN prev AS p USING (scheme, entity_smallholder_id)
            WHERE c.{live} AND (p.entity_smallholder_id IS NULL OR p.deleted)
            UNION ALL
            SELECT p.scheme, p.entity_smallholder_id, 'removed',
                   CASE WHEN c.deleted THEN 'deleted' END,
                   CASE WHEN c.deleted THEN 'false' END,
                   CASE WHEN c.deleted THEN 'true' END
            FROM prev AS p LEFT JOIN cur AS c USING (scheme, entity_smallholder_id)
            WHERE p.{live} AND (c.entity_smallholder_id IS NULL OR c.deleted)
            UNION ALL
            SELECT scheme, entity_smallholder_id, 'changed',
                   d.column_name, d.old_value, d.new_value
            FROM (
                SELECT c.scheme, c.entity_smallholder_id,
                       unnest(list_filter([{diffs}], lambda x: x IS NOT NULL)) AS d
                FROM cur AS c JOIN prev AS p USING (scheme, entity_smallholder_id)
                WHERE c.{live} AND p.{live}
            )
        )
        SELECT DATE '{now.isoformat()}' AS partition_date,
               cc.snapshot_date, cc.late_capture,
               DATE '{before.isoformat()}' AS compared_with,
               pc.snapshot_date AS compared_snapshot_date,
               pc.late_capture AS compared_late_capture,
               e.scheme, entity_smallholder_id, change_type, column_name, old_value, new_value
        FROM events AS e
        LEFT JOIN _mspo_current_captures AS cc USING (scheme)
        LEFT JOIN _mspo_previous_captures AS pc USING (scheme)
        ORDER BY e.scheme, entity_smallholder_id, change_type, column_name
    """
    frames = {
        "_mspo_current": current.join(quiet, on=KEY, how="anti"),
        "_mspo_previous": previous.join(quiet, on=KEY, how="anti"),
        "_mspo_current_captures": _scheme_captures(current),
        "_mspo_previous_captures": _scheme_captures(previous),
    }
    with _views(conn, frames):
        return conn.sql(sql).pl()


def _quiet_plots(current: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """The keys of plots in both frames that can produce no change row: live on both days with
    every compared column equal (nulls equal), or not live on either. Only the other plots (on
    a normal day about 1 %) go through the comparison that spells the changes out. Compared
    one column at a time through the pairs' row numbers, so no joined copy of the days is made.
    """
    pairs = (
        current.select(KEY)
        .with_row_index("now")
        .join(previous.select(KEY).with_row_index("before"), on=KEY)
    )
    now, before = pairs.get_column("now"), pairs.get_column("before")

    def live(frame: pl.DataFrame, rows: pl.Series) -> pl.Series:
        return ~frame.get_column("deleted").gather(rows).fill_null(False)

    live_now, live_before = live(current, now), live(previous, before)
    same = live_now == live_before
    for column in CHANGE_COLUMNS:
        same &= ~live_now | current.get_column(column).gather(now).eq_missing(
            previous.get_column(column).gather(before)
        )
    return pairs.filter(same).select(KEY)


def _scheme_captures(frame: pl.DataFrame) -> pl.DataFrame:
    """Which day's register each scheme's rows hold (one value per scheme, ``with_captures``)."""
    return frame.group_by("scheme").agg(pl.col(c).drop_nulls().first() for c in CAPTURE_COLUMNS)
