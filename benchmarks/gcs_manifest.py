"""The manifest on a bucket a round trip away: its daily refresh, and opening ``mspo sql``.

    .venv/bin/python -m benchmarks.gcs_manifest [--rounds 5] [--round-trip-ms 20] [--days 3]

A store of ``--days`` days with a file for every table on every day (tiny files: the requests,
not the bytes, are what this measures) on the GCS emulator (fake-gcs-server), its manifest
built. Timed, alternating, medians over ``--rounds``: ``manifest.update(root, days={last day})``,
what ``warehouse/manifest`` does at the end of every daily run, through gcsfs with every HTTP
request delayed by ``--round-trip-ms`` (the emulator answers on loopback in a millisecond or two;
a bucket in the pod's region answers in tens), with ``STAT_THREADS`` looks at a time against
one at a time; then opening the warehouse as ``mspo sql`` does (its views created when a
statement first names them), which reads the manifest.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import gcsfs.core
import polars as pl

from mspo_pipeline.lib import manifest, storage
from mspo_pipeline.lib.days import folder_name
from mspo_pipeline.lib.tables import PLOT_HISTORY
from mspo_pipeline.lib.warehouse import build_warehouse
from mspo_pipeline_tests.gcs import fake_gcs

BUCKET = "mspo-refresh"


def distant_gcs(round_trip_s: float) -> gcsfs.core.GCSFileSystem:
    """gcsfs against the emulator, every request ``round_trip_s`` away (an async wait, so
    requests in flight together wait together, as on a network)."""

    class Distant(gcsfs.core.GCSFileSystem):
        async def _request(self, *args: object, **kwargs: object) -> object:
            await asyncio.sleep(round_trip_s)
            return await super()._request(*args, **kwargs)

    return Distant(
        token="anon", endpoint_url=os.environ["STORAGE_EMULATOR_HOST"], skip_instance_cache=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--round-trip-ms", type=float, default=20.0)
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args()
    threads = {"one look at a time": 1, f"{manifest.STAT_THREADS} at a time": manifest.STAT_THREADS}
    times: dict[str, list[float]] = {name: [] for name in threads}
    with tempfile.TemporaryDirectory() as scratch, fake_gcs(Path(scratch), BUCKET):
        root = f"gs://{BUCKET}/store"
        days = [dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(args.days)]
        # Every table but plot_history, whose views opening builds from its real columns.
        patterns = {s.pattern for s in manifest.view_specs(root) if s.name != PLOT_HISTORY}
        for pattern in patterns:
            for day in days:
                path = pattern.replace(manifest.PARTITION_FOLDER_GLOB, folder_name(day))
                storage.write_parquet_atomic(pl.DataFrame({"a": [1]}), storage.as_upath(path), {})
        manifest.update(root)
        gcs = distant_gcs(args.round_trip_ms / 1000)
        manifest.filesystem_for = lambda _root: gcs  # type: ignore[assignment]
        for number in range(args.rounds):
            for name in list(threads)[:: 1 if number % 2 == 0 else -1]:
                manifest.STAT_THREADS = threads[name]
                started = time.perf_counter()
                manifest.update(root, days={days[-1]})
                times[name].append(time.perf_counter() - started)
        opening = []
        for _ in range(args.rounds):
            with duckdb.connect() as conn:
                started = time.perf_counter()
                build_warehouse(conn, root, filesystem=gcs, lazy=True)
                opening.append(time.perf_counter() - started)
    print(
        f"\n{len(patterns)} files a day, {args.round_trip_ms:g} ms a request, {args.rounds} "
        "rounds alternating, medians"
    )
    baseline = statistics.median(times["one look at a time"])
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"  the day's refresh, {name:<22}{median:>7.2f} s{median / baseline:>7.2f}x")
    print(f"  opening the warehouse (mspo sql){statistics.median(opening):>16.2f} s")


if __name__ == "__main__":
    main()
