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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tables", type=int, default=14)
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


if __name__ == "__main__":
    main()
