"""Dagster's side at any age: a day's run and the healing sensor against years of records.

    .venv/bin/python -m benchmarks.instance_age [--rounds 3] [--scale 1.0] [--sizes 30,365,1095]
        [--instance deployment|sqlite]

``benchmarks.history`` times the store as it ages; this times the Dagster instance, which grows
by a day's materialisations and check results every day and which every run asks: each step
looks up its inputs' latest materialisations and data versions, each check finds the
materialisation it checked, ``row_count_vs_previous`` lists the partitions materialised before
its day, and the healing sensor (``defs/automation.py``) evaluates ``plot_history`` and
``changes`` over every daily partition once a minute.

Untimed set-up: the emulator (in this process) serves 2026-11-19 and 2026-11-20, the raw layer
captures both, and the whole graph materialises 2026-11-19 for real: the store then holds what
re-deriving 2026-11-20 reads, and the instance each asset's real metadata. The instance is then
aged size by size: for every day before those two, each asset's materialisation (with its real
metadata) and each check's result, reported as runless events. That is everything the lookups
above read (they go by asset, check and partition); the step and engine events of each day's
run, which nothing of a run looks up, are not written. ``MSPO_FIRST_DAY`` is set so that every
aged day is a partition.

Timed at each age (the instance holding no earlier day first), medians over ``--rounds``:

- ``mspo_rederive`` of 2026-11-20 (its selection in one in-process run, as ``benchmarks.curated``
  runs a day), after one untimed run at that age; and, from one more run under cProfile, the
  seconds it spent in the instance's lookups (``LOOKUPS``);
- the healing sensor's evaluation (``dg.evaluate_automation_conditions``, as the daemon's tick
  does it): a first tick (no cursor: a daemon's first, or the first after the conditions change)
  and a steady tick (from the previous tick's cursor).

``--instance``: ``deployment`` (the default: deployments are what reach such ages),
docker/dagster.yaml's storages and instance class on a throwaway PostgreSQL cluster (its server
must be installed: scripts/ci-system-deps.sh); or ``sqlite``, the CLI's default instance.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from benchmarks.curated import (
    LAST_DAY,
    materialize_selection,
    median_seconds,
    profiled_split,
    run_instance,
)

REAL_DAY = LAST_DAY - dt.timedelta(days=1)
"""Materialised for real: the day whose metadata every aged day carries."""
LOOKUPS = tuple(
    (label, "storage/event_log/sql_event_log.py", function)
    for label, function in (
        ("materialisations", "fetch_materializations"),
        ("asset records", "get_asset_records"),
        ("data versions", "get_latest_tags_by_partition"),
        ("materialised partitions", "get_materialized_partitions"),
    )
)
"""(label, file suffix, function): the instance reads a run makes, by what they read."""


def age(instance: dg.DagsterInstance, graph: dg.Definitions, days: Sequence[str]) -> None:
    """Record ``days`` in ``instance`` as if the whole graph had run on each: every asset's
    materialisation with the metadata of its latest real one, and every check's result."""
    asset_graph = graph.get_repository_def().asset_graph
    metadata = {}
    for key in asset_graph.materializable_asset_keys:
        latest = instance.fetch_materializations(key, limit=1).records
        event = latest[0].asset_materialization if latest else None
        metadata[key] = event.metadata if event else {}
    for day in days:
        for key, entries in metadata.items():
            instance.report_runless_asset_event(
                dg.AssetMaterialization(key, partition=day, metadata=entries)
            )
        for check in asset_graph.asset_check_keys:
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(
                    asset_key=check.asset_key, check_name=check.name, passed=True, metadata={}
                )
            )


@dataclass(frozen=True)
class AtAge:
    days: int
    run_s: float
    lookups_s: float
    first_tick_s: float
    steady_tick_s: float


def measure(instance: dg.DagsterInstance, graph: dg.Definitions, days: int, rounds: int) -> AtAge:
    """The timed figures of the module docstring, on ``instance`` as it is now."""
    from mspo_pipeline.defs.schedules import mspo_rederive

    def rederive() -> None:
        materialize_selection(graph, mspo_rederive.selection, LAST_DAY.isoformat(), instance)

    def tick(
        previous: dg.EvaluateAutomationConditionsResult | None = None,
    ) -> dg.EvaluateAutomationConditionsResult:
        with warnings.catch_warnings():  # the tester's own selection is beta in Dagster 1.13
            warnings.simplefilter("ignore", dg.BetaWarning)
            return dg.evaluate_automation_conditions(
                defs=graph, instance=instance, cursor=previous.cursor if previous else None
            )

    rederive()  # untimed: the instance's caches and the host's, as on any day
    run = median_seconds(rederive, rounds)
    lookups = sum(seconds for _, seconds in profiled_split(rederive, LOOKUPS)[: len(LOOKUPS)])
    first = median_seconds(tick, rounds)
    previous = tick()
    steady = median_seconds(lambda: tick(previous), rounds)
    return AtAge(days, run, lookups, first, steady)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--sizes", default="30,365,1095")
    parser.add_argument("--instance", choices=("deployment", "sqlite"), default="deployment")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    # Every aged day a partition: the code location reads this as it loads.
    os.environ["MSPO_FIRST_DAY"] = (REAL_DAY - dt.timedelta(days=sizes[-1])).isoformat()

    from mspo_pipeline.emulator.server import EmulatorServer

    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        emulator = stack.enter_context(EmulatorServer(scale=args.scale))
        os.environ["MSPO_API_BASE_URL"] = emulator.base_url
        os.environ["MSPO_DATA_ROOT"] = str(Path(tmp) / "data")
        os.environ["MSPO_LATE_CAPTURE"] = "refuse"  # both raw partitions on time
        os.environ["DAGSTER_HOME"] = str(Path(tmp) / "home")
        from mspo_pipeline.definitions import defs

        graph = defs()
        instance = stack.enter_context(run_instance(args.instance, Path(tmp) / "home"))
        for day in (REAL_DAY, LAST_DAY):
            emulator.set_date(day)
            materialize_selection(graph, dg.AssetSelection.groups("raw"), day.isoformat(), instance)
        materialize_selection(graph, dg.AssetSelection.all(), REAL_DAY.isoformat(), instance)
        emulator.set_date(LAST_DAY + dt.timedelta(days=1))  # nothing may be fetched for the past

        results = [measure(instance, graph, 0, args.rounds)]
        for size in sizes:
            started = time.perf_counter()
            kept = results[-1].days
            age(
                instance,
                graph,
                [(REAL_DAY - dt.timedelta(days=n)).isoformat() for n in range(kept + 1, size + 1)],
            )
            print(
                f"aged {kept} -> {size} days in {time.perf_counter() - started:.0f} s", flush=True
            )
            results.append(measure(instance, graph, size, args.rounds))

    asset_graph = graph.get_repository_def().asset_graph
    print(
        f"\n{args.instance} instance, scale {args.scale}, {args.rounds} rounds, medians; each "
        f"earlier day holds {len(asset_graph.materializable_asset_keys)} materialisations and "
        f"{len(asset_graph.asset_check_keys)} check results"
    )
    print("days kept | mspo_rederive day | x | its lookups (profiled) | first tick | steady tick")
    base = results[0].run_s
    for r in results:
        print(
            f"{r.days:>9} | {r.run_s:>15.2f} s | {r.run_s / base:.2f} | {r.lookups_s:>20.2f} s | "
            f"{r.first_tick_s:>8.2f} s | {r.steady_tick_s:>9.2f} s"
        )


if __name__ == "__main__":
    main()
