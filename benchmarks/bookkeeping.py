"""What Dagster's bookkeeping costs per step and per event, apart from any data work.

    .venv/bin/python -m benchmarks.bookkeeping [--rounds 5] [--tables 14]

The daily run records about 650 events (materialisations, check results, step starts and ends,
inputs, outputs, logs); this measures what each costs on the instance the CLI uses by default
(SQLite under a fresh ``DAGSTER_HOME``), on a tmpfs when one exists, and on the deployment's
(docker/dagster.yaml's storage on a throwaway local PostgreSQL cluster, when its server is
installed), connecting for each event as Dagster does and pooled as this project's instance
class and executor make a process do (``mspo_pipeline/instance.py``); and what merging
per-table steps into one subsettable multi-asset would save. Both graphs have the same assets,
outputs, IO manager and one check per asset; only the number of steps differs. Medians over
``--rounds`` in-process runs on one instance.

Last, what taking many days per run would save a backfill of job ``mspo_rederive`` in
bookkeeping: a graph of its shape (its steps, each with as many assets and checks as the real
one, daily partitions, no data) over ``--days`` days, one run per day as the backfill daemon
launches them, against one run over the range (``BackfillPolicy.single_run``), each day's
metadata its own (``add_asset_metadata(partition_key=...)``). In the ranged run a step may
report each check once, so it records one check result per step where the per-day runs record
one per day: the ranged figure is what the lever could save at most.
"""

# No "from __future__ import annotations": Dagster inspects the asset annotations at runtime.

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from mspo_pipeline_tests.connections_location import CHECK, one_step_per_table


def one_step_per_layer(tables: int) -> list[dg.AssetsDefinition]:
    keys = [dg.AssetKey(["layer", f"table_{number}"]) for number in range(tables)]

    @dg.multi_asset(
        outs={key.to_python_identifier(): dg.AssetOut(key=key) for key in keys},
        check_specs=[dg.AssetCheckSpec(CHECK, asset=key) for key in keys],
        can_subset=True,
    )
    def layer(
        context: dg.AssetExecutionContext,
    ) -> Iterator[dg.Output[int] | dg.AssetCheckResult]:
        for number, key in enumerate(keys):
            if key in context.selected_asset_keys:
                yield dg.Output(
                    number, output_name=key.to_python_identifier(), metadata={"rows": number}
                )
                yield dg.AssetCheckResult(asset_key=key, check_name=CHECK, passed=True)

    return [layer]


def per_event_ms(instance: dg.DagsterInstance, events: int) -> tuple[float, float]:
    """Milliseconds to store one engine event and one asset materialisation."""
    from dagster._core.test_utils import create_run_for_test

    run = create_run_for_test(instance, job_name="bookkeeping")
    started = time.perf_counter()
    for number in range(events):
        instance.report_engine_event(f"event {number}", run)
    engine = (time.perf_counter() - started) / events * 1000
    started = time.perf_counter()
    for number in range(events):
        instance.report_runless_asset_event(dg.AssetMaterialization(f"table_{number % 10}"))
    return engine, (time.perf_counter() - started) / events * 1000


def postgres_per_event_ms(rounds: int) -> dict[str, tuple[float, float]]:
    """``per_event_ms`` on the deployment's instance, as Dagster connects (once per event) and
    as the deployments' instance pools it (``mspo_pipeline.instance``), alternating."""
    from mspo_pipeline.instance import keep_connections_open
    from mspo_pipeline_tests.deployment import (
        deployment_home,
        postgres_bin_dir,
        postgres_cluster,
    )

    if postgres_bin_dir() is None:
        return {}
    samples: dict[str, list[tuple[float, float]]] = {}
    with postgres_cluster() as postgres, tempfile.TemporaryDirectory() as scratch:
        os.environ.update(postgres.env())  # the coordinates docker/dagster.yaml reads
        home = deployment_home(Path(scratch) / "home")
        for number in range(rounds):
            for pooled in (False, True)[:: 1 if number % 2 == 0 else -1]:
                with dg.DagsterInstance.from_config(str(home)) as instance:
                    if pooled:
                        keep_connections_open(instance)
                    name = "pooled" if pooled else "per event"
                    samples.setdefault(name, []).append(per_event_ms(instance, 100))
    return {
        name: (statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs))
        for name, runs in sorted(samples.items())
    }


def timed_runs(
    assets: list[dg.AssetsDefinition], home: Path, rounds: int
) -> tuple[list[float], int]:
    """Seconds per run of every asset, and how many events one run stored."""
    seconds, events = [], 0
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for _ in range(rounds):
            started = time.perf_counter()
            result = dg.materialize(
                assets,
                instance=instance,
                resources={"io_manager": dg.FilesystemIOManager(base_dir=str(home / "data"))},
            )
            seconds.append(time.perf_counter() - started)
            events = len(instance.all_logs(result.run_id))
    return seconds, events


SYNTHETIC_DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01")
"""The partitions of the graph of ``mspo_rederive``'s shape."""


def rederive_shape() -> list[tuple[int, int]]:
    """(assets, checks) of each step of job ``mspo_rederive``."""
    from mspo_pipeline.definitions import defs

    layer = defs().resolve_job_def("mspo_rederive").asset_layer
    selected = layer.executable_asset_keys
    return [
        (len(step.keys), len(step.check_keys))
        for step in layer.asset_graph.assets_defs
        if not step.keys.isdisjoint(selected)
    ]


def partitioned_steps(
    shape: list[tuple[int, int]], policy: dg.BackfillPolicy | None
) -> list[dg.AssetsDefinition]:
    """One daily-partitioned multi-asset per step of ``shape``, each after the one before, each
    reporting every day's metadata and every check once; no data, no IO manager."""
    steps: list[dg.AssetsDefinition] = []
    for number, (assets, checks) in enumerate(shape):
        keys = [dg.AssetKey(["step", str(number), f"asset_{n}"]) for n in range(assets)]
        specs = [dg.AssetSpec(key, deps=steps[-1].keys if steps else ()) for key in keys]

        def build(
            keys: list[dg.AssetKey] = keys, checks: int = checks
        ) -> Callable[..., Iterator[object]]:
            def step(context: dg.AssetExecutionContext) -> Iterator[object]:
                for day in context.partition_keys:
                    for key in keys:
                        context.add_asset_metadata({"rows": 1}, asset_key=key, partition_key=day)
                for key in keys:
                    yield dg.MaterializeResult(asset_key=key)
                for check in range(checks):
                    yield dg.AssetCheckResult(
                        asset_key=keys[check % len(keys)],
                        check_name=f"{CHECK}_{check}",
                        passed=True,
                    )

            return step

        steps.append(
            dg.multi_asset(
                name=f"step_{number}",
                specs=specs,
                check_specs=[
                    dg.AssetCheckSpec(f"{CHECK}_{check}", asset=keys[check % len(keys)])
                    for check in range(checks)
                ],
                partitions_def=SYNTHETIC_DAYS,
                backfill_policy=policy,
            )(build())
        )
    return steps


def timed_backfill(shape: list[tuple[int, int]], days: int, ranged: bool) -> float:
    """Seconds to materialise ``days`` days of ``shape``, one run per day or one ranged run."""
    keys = SYNTHETIC_DAYS.get_partition_keys()[:days]
    steps = partitioned_steps(shape, dg.BackfillPolicy.single_run() if ranged else None)
    with tempfile.TemporaryDirectory() as home, dg.DagsterInstance.from_config(home) as instance:
        started = time.perf_counter()
        if ranged:
            dg.materialize(
                steps,
                instance=instance,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: keys[0],
                    ASSET_PARTITION_RANGE_END_TAG: keys[-1],
                },
            )
        else:
            for key in keys:
                dg.materialize(steps, instance=instance, partition_key=key)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tables", type=int, default=14)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    shm = Path("/dev/shm")
    places = {"disk": None, **({"tmpfs": str(shm)} if shm.is_dir() else {})}
    print("one event stored, SQLite instance (median ms):")
    for place, parent in places.items():
        samples = []
        for _ in range(args.rounds):
            with (
                tempfile.TemporaryDirectory(dir=parent) as home,
                dg.DagsterInstance.from_config(home) as instance,
            ):
                samples.append(per_event_ms(instance, 100))
        engine = statistics.median(s[0] for s in samples)
        materialisation = statistics.median(s[1] for s in samples)
        print(
            f"  {place:<6} log/engine event {engine:6.1f}   materialisation {materialisation:6.1f}"
        )

    postgres = postgres_per_event_ms(args.rounds)
    print("\none event stored, the deployment's PostgreSQL instance (median ms), connecting:")
    if not postgres:
        print("  skipped: no PostgreSQL server installed (scripts/ci-system-deps.sh)")
    for name, (engine, materialisation) in postgres.items():
        print(f"  {name:<14} log/engine event {engine:6.1f}   ", end="")
        print(f"materialisation {materialisation:6.1f}")

    shapes: dict[str, Callable[[int], list[dg.AssetsDefinition]]] = {
        "one step per table": one_step_per_table,
        "one multi-asset": one_step_per_layer,
    }
    results: dict[str, tuple[float, int]] = {}
    for name, shape in shapes.items():
        with tempfile.TemporaryDirectory() as home:
            seconds, events = timed_runs(shape(args.tables), Path(home), args.rounds)
        results[name] = statistics.median(seconds), events
    print(f"\n{args.tables} assets, each with one check, {args.rounds} runs (medians):")
    base = results["one step per table"][0]
    for name, (median, events) in results.items():
        print(f"  {name:<20}{median:6.2f} s {median / base:6.2f}x  {events} events")

    steps = rederive_shape()
    backfills: dict[bool, list[float]] = {False: [], True: []}
    for number in range(args.rounds):
        for ranged in (False, True)[:: 1 if number % 2 == 0 else -1]:
            backfills[ranged].append(timed_backfill(steps, args.days, ranged))
    print(
        f"\n{args.days} days of mspo_rederive's shape ({len(steps)} steps, "
        f"{sum(a for a, _ in steps)} assets, {sum(c for _, c in steps)} checks), no data, "
        f"SQLite instance, {args.rounds} rounds (medians):"
    )
    per_day = statistics.median(backfills[False])
    for ranged, label in ((False, "one run per day"), (True, "one run for the range")):
        median = statistics.median(backfills[ranged])
        print(
            f"  {label:<22}{median:7.2f} s {median / args.days * 1000:7.0f} ms a day "
            f"{median / per_day:6.2f}x"
        )


if __name__ == "__main__":
    main()
