"""History at full scale: how SQL over years of it answers, and what maintaining it costs.

    .venv/bin/python -m benchmarks.history [--rounds 3] [--scale 1.0] [--sizes 30,365,1095]
    .venv/bin/python -m benchmarks.history maintenance [--rounds 3] [--scale 1.0] [--days 30]

**At any age** (the default). Untimed set-up: one real day, ``mspo demo`` at ``--scale``
against the emulator; for each size, a store of that many consecutive days from 2026-01-01 made
by hard-linking the real day's files into every day's folders (every layer, raw included), and
its ``plot_history`` built by the pipeline's own ``merge_history`` from the emulator's registers
of every 30th day and the last (the linked days all hold one register; these make real
versions); then ``mspo manifest``. Timed, medians over ``--rounds``: ``mspo sql "SELECT 1"`` as a
process (opening), then each README query, ``smallholders_as_of`` and ``plot_timeline`` in one
session, each beside its floor: the same SQL over views that read one compacted Parquet file per
table. Opening without the manifest (listing the store and reading every footer) is timed once.
The day's refresh of the manifest (what the ``warehouse/manifest`` asset does at the end of each
daily run: the last day's files looked at again, the other days' rows copied) is timed too: it
runs every day, so its cost must not grow much with the days kept. So is the next day's fold of
``plot_history`` (what that asset does every day: the last day's history read, merged with the
emulator's register of the day after, written), whose file holds every version so far: the one
daily step whose input grows with the days kept, by the versions they add.

**Maintenance**. Untimed set-up: ``--days`` consecutive days of the emulator's registers (ending
on its reference date, 2026-11-20) go from the generator through the typed, validated and
curated functions (no HTTP, no Dagster) into ``curated/smallholders`` files in the store layout;
the history is then folded in day by day, each partition written where the asset writes it.

Timed, medians over ``--rounds``, at day 1, 10 and the last day (30 by default):

- ``incremental``: what the ``curated/plot_history`` asset does for one day: read the previous
  day's history file, ``merge_history`` with the day's smallholders, write the new file. Its cost
  must not grow with the days kept; ``merge only`` is ``merge_history`` alone (polars), without
  the file's read and write.
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
import functools
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import polars as pl

from benchmarks.curated import median_seconds
from mspo_pipeline import sql as mspo_sql
from mspo_pipeline.emulator.generator import REFERENCE_DATE, dataset
from mspo_pipeline.lib import curated, history, manifest, storage
from mspo_pipeline.lib.casting import to_typed
from mspo_pipeline.lib.tables import PLOT_HISTORY
from mspo_pipeline.lib.validation import split_valid
from mspo_pipeline.lib.warehouse import ANALYST_QUERIES, build_warehouse, create_history_views

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


def _fold(
    root: str, before: dt.date | None, current: pl.DataFrame, day: dt.date, into: Path
) -> pl.DataFrame:
    """What the ``curated/plot_history`` asset does for ``day``: the history of ``before`` read
    from ``root`` (none on the first day), ``merge_history`` with the day's smallholders, the
    new history written to ``into``."""
    previous = (
        storage.read_parquet(storage.as_upath(_path(root, HISTORY, before))) if before else None
    )
    frame = history.merge_history(
        history=previous,
        history_partition=before.isoformat() if before else None,
        history_late=dict.fromkeys(curated.SCHEMES, False) if before else {},  # every day on time
        smallholders=current,
        partition=day.isoformat(),
    )
    _write(frame, into)
    return frame


def _incremental(
    conn: duckdb.DuckDBPyConnection, root: str, days: list[dt.date], index: int
) -> pl.DataFrame:
    """Day ``index``'s history as the asset makes it: previous file in, merged, new file out."""
    day = days[index]
    current = storage.read_parquet(storage.as_upath(_path(root, SMALLHOLDERS, day)))
    before = days[index - 1] if index else None
    return _fold(root, before, current, day, _path(root, HISTORY, day))


def _rebuild(conn: duckdb.DuckDBPyConnection, root: str, days: list[dt.date]) -> pl.DataFrame:
    """The baseline: the whole history again from every stored smallholders file so far."""
    files = [str(_path(root, SMALLHOLDERS, d)) for d in days]
    return history.build_history(conn, conn.read_parquet(files))


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
            history=previous,
            history_partition=before.isoformat() if before else None,
            history_late=dict.fromkeys(curated.SCHEMES, False) if before else {},
            smallholders=current,
            partition=day.isoformat(),
        )

    return (
        median_seconds(lambda: _incremental(conn, root, days, index), rounds),
        median_seconds(merge, rounds),
        median_seconds(lambda: _rebuild(conn, root, days[: index + 1]), rounds),
    )


def maintenance(args: argparse.Namespace) -> None:
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

            as_of = median_seconds(
                lambda: fetch(f"SELECT * FROM smallholders_as_of('{middle}')"), 3
            )
            scan = median_seconds(
                lambda: fetch(f"SELECT * FROM smallholders WHERE partition_date = '{middle}'"), 3
            )
            key = f"'{plot['scheme']}', {plot['entity_smallholder_id']}"
            timeline = median_seconds(lambda: fetch(f"SELECT * FROM plot_timeline({key})"), 3)
            daily = median_seconds(
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


# At any age: opening and querying a store of 30, 365 or 1,095 days.

FIRST_DAY = dt.date(2026, 1, 1)
"""The emulator serves 2026-01-01 to 2030-12-31: every size's span starts here."""
CHECKPOINT_DAYS = 30
PLOT = ("SPOC", 12345)


def _demo_day(workdir: Path, scale: float) -> tuple[Path, str]:
    """One real day of every layer: ``mspo demo``; returns its data root and day folder."""
    root, home = workdir / "day", workdir / "day-home"
    mspo = Path(sys.executable).parent / "mspo"
    subprocess.run(
        [
            str(mspo),
            "demo",
            "--scale",
            str(scale),
            "--data-root",
            str(root),
            "--dagster-home",
            str(home),
        ],
        check=True,
        capture_output=True,
    )
    (folder,) = {p.parent.name for p in root.glob("curated/mspo/smallholders/*/*.parquet")}
    return root, folder


def linked_store(day_root: Path, folder: str, root: Path, days: list[dt.date]) -> None:
    """Every file of the real day hard-linked into each of ``days`` (not ``plot_history``, which
    holds the whole history in one file, nor the manifest)."""
    files = [
        p.relative_to(day_root).as_posix()
        for p in day_root.rglob("*.parquet")
        if f"/{PLOT_HISTORY}/" not in p.as_posix() and manifest.MANIFEST not in p.as_posix()
    ]
    for day in days:
        for relative in files:
            target = root / relative.replace(f"/{folder}/", f"/{day:%Y%m%d}/")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(day_root / relative, target)


def _history_chain(
    conn: duckdb.DuckDBPyConnection, scale: float, roots: dict[dt.date, Path], last: dt.date
) -> dict[dt.date, int]:
    """``plot_history`` folded in by ``merge_history`` from the emulator's register of every
    ``CHECKPOINT_DAYS``-th day, written as each root's newest partition when the chain reaches
    that root's last day. Returns the versions each written history holds."""
    span = [FIRST_DAY + dt.timedelta(days=n) for n in range((last - FIRST_DAY).days + 1)]
    checkpoints = sorted({*span[::CHECKPOINT_DAYS], *roots})
    previous: pl.DataFrame | None = None
    before: dt.date | None = None
    versions = {}
    for day in checkpoints:
        previous = history.merge_history(
            history=previous,
            history_partition=before.isoformat() if before else None,
            history_late=dict.fromkeys(curated.SCHEMES, False) if before else {},
            smallholders=_smallholders(conn, day, scale),
            partition=day.isoformat(),
        )
        before = day
        if day in roots:
            _write(previous, _path(str(roots[day]), HISTORY, day))
            versions[day] = previous.height
    return versions


def _queries(middle: dt.date) -> list[tuple[str, str]]:
    scheme, plot = PLOT
    return [
        *ANALYST_QUERIES,
        ("smallholders_as_of(the middle day)", f"SELECT * FROM smallholders_as_of('{middle}')"),
        (f"plot_timeline('{scheme}', {plot})", f"SELECT * FROM plot_timeline('{scheme}', {plot})"),
    ]


def _floor(root: Path, floor: Path) -> duckdb.DuckDBPyConnection:
    """A session whose views each read one compacted Parquet file of the same rows."""
    conn, _ = mspo_sql.connect(str(root))
    floor.mkdir()
    tables = ("smallholders_latest", "changes", "certification_summary")
    for table in tables:
        mspo_sql.query(conn, f"COPY (SELECT * FROM {table}) TO '{floor / table}.parquet'")
    newest = conn.execute(f"SELECT max(path) FROM stored_files WHERE view = '{PLOT_HISTORY}'")
    [(history_file,)] = newest.fetchall()
    conn.close()
    compact = duckdb.connect()
    compact.execute("SET TimeZone = 'UTC'")
    for table in tables:
        compact.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{floor / table}.parquet')"
        )
    create_history_views(compact, history_file)
    return compact


def _answer(conn: duckdb.DuckDBPyConnection, query: str) -> int:
    """The rows of ``query``, fetched (as ``mspo sql`` runs it: views created on first use)."""
    result = mspo_sql.query(conn, query)
    assert result is not None
    return result.to_arrow_table().num_rows


def _process_wall(args: list[str], rounds: int) -> float:
    return median_seconds(lambda: subprocess.run(args, check=True, capture_output=True), rounds)


def at_age(args: argparse.Namespace) -> None:
    sizes = sorted(int(n) for n in args.sizes.split(","))
    mspo = str(Path(sys.executable).parent / "mspo")
    with tempfile.TemporaryDirectory() as work, duckdb.connect() as conn:
        workdir = Path(work)
        started = time.perf_counter()
        day_root, folder = _demo_day(workdir, args.scale)
        print(f"one real day (mspo demo) in {time.perf_counter() - started:.0f} s", flush=True)
        roots = {FIRST_DAY + dt.timedelta(days=n - 1): workdir / f"{n}-days" for n in sizes}
        started = time.perf_counter()
        for last, root in roots.items():
            linked_store(
                day_root,
                folder,
                root,
                [FIRST_DAY + dt.timedelta(days=n) for n in range((last - FIRST_DAY).days + 1)],
            )
        versions = _history_chain(conn, args.scale, roots, max(roots))
        for root in roots.values():
            print(mspo_sql.rebuild_manifest(str(root)), flush=True)
        print(
            f"stores, histories and manifests in {time.perf_counter() - started:.0f} s", flush=True
        )

        results: dict[str, dict[int, tuple[float, float | None]]] = {}
        history_mb: dict[int, float] = {}
        for (last, root), size in zip(roots.items(), sizes, strict=True):
            opened = _process_wall([mspo, "sql", "--data-root", str(root), "SELECT 1"], args.rounds)
            listed = _process_wall(
                [mspo, "sql", "--data-root", str(root), "--rescan", "SELECT 1"], 1
            )
            refreshed = median_seconds(
                functools.partial(manifest.update, str(root), days={last}), args.rounds
            )
            results.setdefault('mspo sql "SELECT 1" (opening)', {})[size] = (opened, None)
            results.setdefault("  the same without the manifest (once)", {})[size] = (listed, None)
            results.setdefault("warehouse/manifest: the day's refresh", {})[size] = (
                refreshed,
                None,
            )
            following = last + dt.timedelta(days=1)
            fold = functools.partial(
                _fold,
                str(root),
                last,
                _smallholders(conn, following, args.scale),
                following,
                workdir / "folded.parquet",
            )
            results.setdefault("curated/plot_history: the next day's fold", {})[size] = (
                median_seconds(fold, args.rounds),
                None,
            )
            history_mb[size] = _path(str(root), HISTORY, last).stat().st_size / 1e6
            session, _ = mspo_sql.connect(str(root))
            floor = _floor(root, workdir / f"floor-{size}")
            middle = FIRST_DAY + (last - FIRST_DAY) / 2
            for title, query in _queries(middle):
                _answer(session, query)  # views created, files cached: every round the same
                results.setdefault(title, {})[size] = (
                    median_seconds(functools.partial(_answer, session, query), args.rounds),
                    median_seconds(functools.partial(_answer, floor, query), args.rounds),
                )
            session.close()
            floor.close()
            print(f"{size} days measured", flush=True)

    print(
        f"\nscale {args.scale}; {args.rounds} rounds, medians; each size is consecutive days "
        f"from {FIRST_DAY}; plot_history versions: "
        + ", ".join(
            f"{versions[last]:,} ({n} days, {history_mb[n]:.1f} MB)"
            for last, n in zip(roots, sizes, strict=True)
        )
    )
    header = "".join(f"{f'{n:,} days':>22}" for n in sizes)
    print(f"{'':<48}{header}")
    print(f"{'work':<48}" + "".join(f"{'ours':>11}{'floor':>11}" for _ in sizes))
    for title, by_size in results.items():
        cells = "".join(
            f"{ours:>10.2f}s" + (f"{floor:>10.2f}s" if floor is not None else f"{'—':>11}")
            for ours, floor in (by_size[n] for n in sizes)
        )
        print(f"{title[:47]:<48}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("mode", nargs="?", choices=("at-age", "maintenance"), default="at-age")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=30, help="maintenance: days to keep")
    parser.add_argument(
        "--sizes", default="30,365,1095", help="at-age: days of history, comma-separated"
    )
    args = parser.parse_args()
    if args.mode == "maintenance":
        maintenance(args)
    else:
        at_age(args)


if __name__ == "__main__":
    main()
