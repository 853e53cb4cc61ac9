"""The curated layer at full scale, and a 7-day backfill of the whole graph, through Dagster.

    .venv/bin/python -m benchmarks.curated [--rounds 3] [--scale 1.0] [--days 7]
        [--instance sqlite|deployment|memory]

Untimed set-up: the emulator (in this process, a background thread) serves each of seven past
days in turn and the raw layer captures it, so seven on-time raw partitions are stored.

Timed, in-process Dagster runs on one local store and one instance (the code location's own
``in_process_executor``), medians over ``--rounds``. ``--instance`` is where the runs are
recorded: ``sqlite``, the CLI's default instance in a fresh ``DAGSTER_HOME``; ``deployment``,
docker/dagster.yaml's storages and instance class on a throwaway PostgreSQL cluster (its
server must be installed: scripts/ci-system-deps.sh); or ``memory``, Dagster's ephemeral
in-memory instance, which no deployment runs on and which stores events far more cheaply (the
figures of this benchmark before 2026-12-02 11:00 UTC were taken on it).

- ``backfill``: the whole graph for the seven days, one run per day in date order, as the
  backfill daemon launches them. The raw steps keep the stored
  snapshots (past days are never re-fetched); typed, validated, quarantine and curated are
  rebuilt from them, and ``changes`` compares each day with the one before.
- ``rederive``: the same days through the selection of job ``mspo_rederive``: every layer above
  raw, with no raw step at all. Each day runs both ways in turn (alternating which goes first),
  so the two totals see the same machine.
- ``curated``: four curated assets of the last day (geography, smallholders,
  certification_summary, changes), from the validated frames already
  stored (one Dagster run), and the same four plain functions without Dagster
  (``curated_functions``: loading the validated Parquet files plus the DuckDB work).

Then one more ``mspo_rederive`` run of the last day under cProfile, split into the pipeline's
own data work (the assets' and checks' functions, the IO manager's reads and writes) and what
Dagster adds (storing events, looking up the inputs' data versions, the rest): the floor that
no change to Dagster's side can go below.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from mspo_pipeline.lib import curated, storage

LAST_DAY = dt.date(2026, 11, 20)
"""The emulator's reference date: the registers have their full-scale sizes on it."""
JOINED = dg.AssetSelection.assets(
    *(
        ["curated", name]
        for name in ("geography", "smallholders", "certification_summary", "changes")
    )
)
"""The four tables ``curated_functions`` builds: the group also holds the ledger, the history
and the two geo assets, which the plain functions do not build."""


def materialize_selection(
    graph: dg.Definitions,
    selection: dg.AssetSelection,
    day: str,
    instance: dg.DagsterInstance,
) -> None:
    assets = [a for a in graph.assets or [] if isinstance(a, dg.AssetsDefinition | dg.AssetSpec)]
    result = dg.materialize(
        [*assets, *(graph.asset_checks or [])],
        selection=selection,
        partition_key=day,
        resources=dict(graph.resources or {}),
        instance=instance,
        raise_on_error=False,
    )
    if not result.success:
        failures = [
            e.step_failure_data.error.message
            for e in result.all_events
            if e.is_step_failure and e.step_failure_data and e.step_failure_data.error
        ]
        raise RuntimeError(f"run for {day} failed: {' | '.join(failures)}")


INSTANCES = ("sqlite", "deployment", "memory")


@contextmanager
def run_instance(kind: str, home: Path) -> Iterator[dg.DagsterInstance]:
    """The instance the benchmark's runs are recorded in (``--instance``), in ``home``."""
    if kind == "memory":
        with dg.DagsterInstance.ephemeral() as instance:
            yield instance
        return
    home.mkdir(parents=True)
    if kind == "sqlite":
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance
        return
    from benchmarks.daily import deployment_instance
    from mspo_pipeline_tests.deployment import deployment_home

    with deployment_instance():
        deployment_home(home, instance_class=True)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def median_seconds(work: Callable[[], object], rounds: int) -> float:
    """The median wall time of ``work`` over ``rounds`` calls."""
    return statistics.median(_timed(work) for _ in range(rounds))


def curated_functions(root: str, day: str, previous: str) -> int:
    """The curated layer as plain functions: read the validated files, run the four queries."""

    def validated(table: str) -> pl.DataFrame:
        return storage.read_parquet(
            storage.as_upath(storage.storage_path(root, ["validated", table], day))
        )

    before = storage.read_parquet(
        storage.as_upath(storage.storage_path(root, ["curated", "smallholders"], previous))
    )
    with duckdb.connect() as conn:
        geography = curated.geography(
            conn, **{t: validated(t) for t in ("states", "zones", "zone_state", "spocs", "daerah")}
        )
        plots = curated.smallholders(
            conn,
            spoc=validated("spoc_smallholders"),
            osh=validated("osh_smallholders"),
            gm=validated("gm_smallholders"),
            geography=geography,
            partition=day,
            captures=curated.on_time(day),
        )
        curated.certification_summary(conn, plots)
        found = curated.changes(
            conn,
            current=plots,
            previous=before,
            current_partition=day,
            previous_partition=previous,
        )
    return found.height


PROFILE_PARTS = (
    ("the assets' and checks' functions", "execution/plan/compute.py", "execute_core_compute"),
    ("the IO manager: writing Parquet", "mspo_pipeline/lib/parquet_io.py", "handle_output"),
    ("the IO manager: reading Parquet", "mspo_pipeline/lib/parquet_io.py", "load_input"),
    ("Dagster: storing events", "instance/methods/event_methods.py", "handle_new_event"),
    (
        "Dagster: inputs' data versions",
        "context/data_version_cache.py",
        "_fetch_input_asset_version_info",
    ),
)
"""(label, file suffix, function) whose cumulative times split a run; overlaps are small (an
asset's own log lines are events stored inside its function)."""


def profiled_split(
    work: Callable[[], object], parts: Sequence[tuple[str, str, str]] = PROFILE_PARTS
) -> list[tuple[str, float]]:
    """Seconds of ``work`` per ``(label, file suffix, function)`` of ``parts`` (cumulative times
    under cProfile), then the rest and the total."""
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.runcall(work)
    total = time.perf_counter() - started
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    split = [
        (
            label,
            sum(
                entry[3]
                for (path, _, name), entry in stats.items()
                if name == function and path.replace(os.sep, "/").endswith(suffix)
            ),
        )
        for label, suffix, function in parts
    ]
    return [*split, ("the rest", total - sum(s for _, s in split)), ("total", total)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--instance", choices=INSTANCES, default="sqlite")
    args = parser.parse_args()
    days = [(LAST_DAY - dt.timedelta(days=n)).isoformat() for n in reversed(range(args.days))]

    from mspo_pipeline.emulator.server import EmulatorServer

    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        emulator = stack.enter_context(EmulatorServer(scale=args.scale))
        root = str(Path(tmp) / "data")
        os.environ["MSPO_API_BASE_URL"] = emulator.base_url
        os.environ["MSPO_DATA_ROOT"] = root
        os.environ["MSPO_LATE_CAPTURE"] = "refuse"  # every raw partition must be on time
        os.environ["DAGSTER_HOME"] = str(Path(tmp) / "home")
        from mspo_pipeline.definitions import defs
        from mspo_pipeline.defs.schedules import mspo_rederive

        graph = defs()
        instance = stack.enter_context(run_instance(args.instance, Path(tmp) / "home"))
        started = time.perf_counter()
        for day in days:
            emulator.set_date(dt.date.fromisoformat(day))
            materialize_selection(graph, dg.AssetSelection.groups("raw"), day, instance)
        print(
            f"captured raw {days[0]}..{days[-1]} at scale {args.scale} in "
            f"{time.perf_counter() - started:.0f} s (not timed below)",
            flush=True,
        )
        emulator.set_date(LAST_DAY + dt.timedelta(days=1))  # nothing may be fetched for the past

        backfill: list[float] = []
        per_day: list[float] = []
        rederive: list[float] = []
        rederive_day: list[float] = []
        dagster_curated, plain = [], []
        contenders = (
            (dg.AssetSelection.all(), backfill, per_day),
            (mspo_rederive.selection, rederive, rederive_day),
        )
        for round_number in range(args.rounds):
            times: list[list[float]] = [[], []]
            # Day by day, both ways, alternating which goes first: a busy spell of the machine
            # falls on both alike. Each day's second pass rewrites what the first wrote.
            for number, day in enumerate(days):
                order = (0, 1) if number % 2 == 0 else (1, 0)
                for index in order:
                    started = time.perf_counter()
                    materialize_selection(graph, contenders[index][0], day, instance)
                    times[index].append(time.perf_counter() - started)
            for (_, total, day_median), seconds in zip(contenders, times, strict=True):
                total.append(sum(seconds))
                day_median.append(statistics.median(seconds))
            dagster_curated.append(
                _timed(lambda: materialize_selection(graph, JOINED, days[-1], instance))
            )
            plain.append(_timed(lambda: curated_functions(root, days[-1], days[-2])))
            print(f"round {round_number + 1}/{args.rounds} done", flush=True)

        split = profiled_split(
            lambda: materialize_selection(graph, mspo_rederive.selection, days[-1], instance)
        )

        plots = pl.read_parquet(
            storage.storage_path(root, ["curated", "smallholders"], days[-1])
        ).height
        changes = pl.read_parquet(storage.storage_path(root, ["curated", "changes"], days[-1]))

    print(
        f"\n{args.instance} instance, scale {args.scale}: {plots:,} plots in "
        f"curated.smallholders on {days[-1]}, {changes.height} change rows against "
        f"{days[-2]}; {args.rounds} rounds, medians"
    )
    rows = [
        ("4 curated tables, 1 partition (Dagster run)", dagster_curated),
        ("4 curated tables, 1 partition (plain functions)", plain),
        (f"backfill of the whole graph, {len(days)} days", backfill),
        ("  of which one day (median)", per_day),
        (f"job mspo_rederive (no raw steps), {len(days)} days", rederive),
        ("  of which one day (median)", rederive_day),
    ]
    for label, samples in rows:
        print(f"{label:<48} {statistics.median(samples):>8.1f} s")
    print(f"\none day of mspo_rederive ({days[-1]}) under cProfile (it slows the run down):")
    for part, part_s in split:
        print(f"  {part:<46} {part_s:>8.1f} s")


if __name__ == "__main__":
    main()
