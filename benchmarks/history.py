"""Plot history at full scale: what maintaining it costs per day, and what it buys in SQL.

    .venv/bin/python -m benchmarks.history [--rounds 3] [--scale 1.0] [--days 30]

Untimed set-up: ``--days`` consecutive days of the emulator's registers (ending on its reference
date, 2026-11-20) go from the generator through the typed, validated and curated functions (no
HTTP, no Dagster) into ``curated/smallholders`` files in the store layout; the history is then
folded in day by day, each partition written where the asset writes it.

Timed, medians over ``--rounds``, at day 1, 10 and the last day (30 by default):

- ``incremental``: what the ``curated/plot_history`` asset does for one day: read the previous
  day's history file, ``merge_history`` with the day's smallholders, write the new file. Its cost
  must not grow with the days kept; ``merge only`` is the DuckDB part alone.
- ``rebuild from all days`` (the baseline): ``build_history`` over every stored smallholders
  partition up to that day, read in place by DuckDB: what keeping the history without the
  incremental chain would cost per day.
- ``smallholders_as_of(D)``: the register of a day from the newest plot_history file, through the
  ``mspo sql`` warehouse, against the same register read from the daily snapshots
  (``smallholders WHERE partition_date = D``); and one plot's timeline both ways.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl

from mspo_pipeline.emulator.generator import REFERENCE_DATE, dataset
from mspo_pipeline.lib import curated, history, storage
from mspo_pipeline.lib.casting import to_typed
from mspo_pipeline.lib.validation import split_valid
from mspo_pipeline.lib.warehouse import build_warehouse

SEED = 7
SMALLHOLDERS = ["curated", "smallholders"]
HISTORY = ["curated", "plot_history"]


def _validated(name: str, day: dt.date, scale: float) -> pl.DataFrame:
    raw = dataset(SEED, scale).frame(name, day)
    return split_valid(to_typed(raw, name).frame, name).validated


def _smallholders(conn: duckdb.DuckDBPyConnection, day: dt.date, scale: float) -> pl.DataFrame:
    """The curated smallholders of ``day`` from the generator, captured on time."""
    references = ("states", "zones", "zone_state", "spocs", "daerah")
    geography = curated.geography(conn, **{t: _validated(t, day, scale) for t in references})
    return curated.smallholders(
        conn,
        **{s.lower(): _validated(t, day, scale) for s, t in curated.REGISTER_TABLES.items()},
        geography=geography,
        partition=day.isoformat(),
        captures=curated.on_time(day.isoformat()),
    )


def _path(root: str, key: list[str], day: dt.date) -> Path:
    return Path(storage.storage_path(root, key, day.isoformat()))


def _write(frame: pl.DataFrame, path: Path) -> None:
    storage.write_parquet_atomic(frame, storage.as_upath(path), {})


def _late(frame: pl.DataFrame) -> dict[str, bool | None]:
    return dict(frame.select("scheme", "late_capture").unique().iter_rows())


def _incremental(
    conn: duckdb.DuckDBPyConnection, root: str, days: list[dt.date], index: int
) -> pl.DataFrame:
    """Day ``index``'s history as the asset makes it: previous file in, merged, new file out."""
    day = days[index]
    current = storage.read_parquet(storage.as_upath(_path(root, SMALLHOLDERS, day)))
    previous = before = None
    late: dict[str, bool | None] = {}
    if index:
        before = days[index - 1]
        previous = storage.read_parquet(storage.as_upath(_path(root, HISTORY, before)))
        late = dict.fromkeys(curated.SCHEMES, False)  # the raw footers: every day on time
    frame = history.merge_history(
        conn,
        history=previous,
        history_partition=before.isoformat() if before else None,
        history_late=late,
        smallholders=current,
        partition=day.isoformat(),
    )
    _write(frame, _path(root, HISTORY, day))
    return frame


def _rebuild(conn: duckdb.DuckDBPyConnection, root: str, days: list[dt.date]) -> pl.DataFrame:
    """The baseline: the whole history again from every stored smallholders file so far."""
    files = [str(_path(root, SMALLHOLDERS, d)) for d in days]
    return history.build_history(conn, conn.read_parquet(files))


def _median(work: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _measure(
    conn: duckdb.DuckDBPyConnection, root: str, days: list[dt.date], index: int, rounds: int
) -> tuple[float, float, float]:
    """Medians of day ``index`` three ways: the asset's work, its merge alone, the rebuild."""
    day = days[index]
    current = storage.read_parquet(storage.as_upath(_path(root, SMALLHOLDERS, day)))
    before = days[index - 1] if index else None
    previous = (
        storage.read_parquet(storage.as_upath(_path(root, HISTORY, before))) if before else None
    )

    def merge() -> pl.DataFrame:
        return history.merge_history(
            conn,
            history=previous,
            history_partition=before.isoformat() if before else None,
            history_late=dict.fromkeys(curated.SCHEMES, False) if before else {},
            smallholders=current,
            partition=day.isoformat(),
        )

    return (
        _median(lambda: _incremental(conn, root, days, index), rounds),
        _median(merge, rounds),
        _median(lambda: _rebuild(conn, root, days[: index + 1]), rounds),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    days = [REFERENCE_DATE - dt.timedelta(days=n) for n in reversed(range(args.days))]
    checkpoints = sorted({0, min(9, len(days) - 1), len(days) - 1})

    with tempfile.TemporaryDirectory() as root, duckdb.connect() as conn:
        started = time.perf_counter()
        for day in days:
            _write(_smallholders(conn, day, args.scale), _path(root, SMALLHOLDERS, day))
        print(
            f"{len(days)} days of curated.smallholders at scale {args.scale} in "
            f"{time.perf_counter() - started:.0f} s (not timed below)",
            flush=True,
        )
        rows = []
        for index in range(len(days)):
            frame = _incremental(conn, root, days, index)  # the chain itself, once per day
            if index not in checkpoints:
                continue
            incremental, merge_only, rebuild = _measure(conn, root, days, index, args.rounds)
            rows.append((index + 1, frame.height, incremental, merge_only, rebuild))
            print(f"day {index + 1} measured", flush=True)

        newest = history.as_of(frame, days[-1])
        plot = frame.filter(pl.col("version") > 1).row(0, named=True)
        with duckdb.connect() as warehouse:
            warehouse.execute("SET TimeZone = 'UTC'")
            build_warehouse(warehouse, root)
            middle = days[len(days) // 2].isoformat()

            def fetch(sql: str) -> int:
                return warehouse.sql(sql).to_arrow_table().num_rows

            as_of = _median(lambda: fetch(f"SELECT * FROM smallholders_as_of('{middle}')"), 3)
            scan = _median(
                lambda: fetch(f"SELECT * FROM smallholders WHERE partition_date = '{middle}'"), 3
            )
            key = f"'{plot['scheme']}', {plot['entity_smallholder_id']}"
            timeline = _median(lambda: fetch(f"SELECT * FROM plot_timeline({key})"), 3)
            daily = _median(
                lambda: fetch(
                    f"SELECT * FROM smallholders WHERE (scheme, entity_smallholder_id) = ({key}) "
                    "ORDER BY partition_date"
                ),
                3,
            )
            register_rows = fetch(f"SELECT * FROM smallholders_as_of('{middle}')")
            plan = warehouse.sql(f"EXPLAIN ANALYZE SELECT * FROM plot_timeline({key})").fetchall()
            row_groups = ", ".join(re.findall(r"Row Groups Scanned: (\d+ / \d+)", plan[0][1]))
        history_mb = _path(root, HISTORY, days[-1]).stat().st_size / 1e6

    print(
        f"\nscale {args.scale}: {newest.height:,} plots on {days[-1]}; the history holds "
        f"{frame.height:,} versions after {len(days)} days ({history_mb:.1f} MB); "
        f"{args.rounds} rounds, medians"
    )
    print(
        f"{'maintaining plot_history, one day':<36} {'versions':>9} {'incremental':>12} "
        f"{'merge only':>11} {'rebuild from all days':>22}"
    )
    for number, versions, incremental, merge_only, rebuild in rows:
        print(
            f"{'  day ' + str(number):<36} {versions:>9,} {incremental:>11.2f}s "
            f"{merge_only:>10.2f}s {rebuild:>21.2f}s"
        )
    print(f"\nSQL over {len(days)} days ({register_rows:,} plots on {middle})")
    print(f"{'  register of one day':<36} as_of {as_of:>6.2f} s   daily snapshots {scan:>6.2f} s")
    print(f"{'  one plot timeline':<36} as_of {timeline:>6.2f} s   daily snapshots {daily:>6.2f} s")
    print(f"  (the timeline read {row_groups or 'all'} row groups of the history file)")


if __name__ == "__main__":
    main()
