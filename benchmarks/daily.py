"""The daily run at full scale: the docs' example scripts against the whole graph in Dagster.

    .venv/bin/python -m benchmarks.daily [--rounds 3] [--scale 1.0]

One emulator process (started here and warmed up, so generation is not timed) serves both
contenders, each in a fresh process, alternating, ``--rounds`` times:

- ``docs``: the API docs' example scripts, doing what they do: the reference-data loop
  (``requests.get(...).json()``, ``pl.DataFrame``, a zstd Parquet per endpoint), the SPOC script
  (its four casts made non-strict: its strict casts crash on the API's "N/A") and the OSH
  script's fetch and frame, applied to OSH and the group managers too, each written to a local
  Parquet file: the raw capture only, no checks, no provenance.
- ``dagster``: ``dagster asset materialize --select '*'`` for the day, against an empty data
  root and a fresh instance: every asset and check of the code location (raw, typed, validated,
  quarantine, curated, the ledger, the manifest).

Printed: the process's wall time, for ``dagster`` also the run's own time (RUN_START to
RUN_SUCCESS, from the instance) and its step count, the peak memory of the process (its own
``ru_maxrss``: the in-process executor runs every step in it), and each ratio to ``docs``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.capture import run_example, start_emulator
from mspo_pipeline.lib.days import today_in_malaysia


def run_docs(base_url: str, out_dir: Path) -> int:
    """The docs' scripts, every endpoint, written to ``out_dir`` instead of the bucket."""
    import polars as pl
    import requests

    from mspo_pipeline.lib.catalog import ENDPOINTS, Kind

    rows = run_example(base_url, out_dir)  # the SPOC script
    for endpoint in ENDPOINTS:
        if endpoint.kind is Kind.REFERENCE:  # fetch_reference_data + save_reference_to_gcs
            url = f"{base_url}/{endpoint.path}" + ("?" if endpoint.path.startswith("spoc/") else "")
            data = requests.get(url, timeout=600).json()
            frame = pl.DataFrame(data.get("data", data))
        elif endpoint.name != "spoc_smallholders":  # fetch_osh_smallholders, for OSH and GM
            response = requests.get(
                f"{base_url}/{endpoint.path}", params={"page": 1, "pageSize": 10}, timeout=600
            )
            body = response.json()
            for key in endpoint.records_at:
                body = body[key]
            frame = pl.DataFrame(body, infer_schema_length=10000)
        else:
            continue
        frame.write_parquet(out_dir / f"{endpoint.name}.parquet", compression="zstd")
        rows += frame.height
    return rows


@dataclass(frozen=True)
class Sample:
    wall_s: float
    peak_mb: float
    run_s: float | None = None
    steps: int | None = None
    step_s: tuple[tuple[str, float], ...] = ()
    """Each step's own time, slowest first."""


def _wait(process: subprocess.Popen[bytes]) -> tuple[float, float]:
    """Wall seconds and peak MB of ``process`` (started just before this call)."""
    started = time.perf_counter()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{process.args!r} failed")
    return wall, usage.ru_maxrss / 1024


def measure_docs(base_url: str) -> Sample:
    with tempfile.TemporaryDirectory() as out_dir:
        code = (
            "import sys; from pathlib import Path; from benchmarks.daily import run_docs; "
            "run_docs(sys.argv[1], Path(sys.argv[2]))"
        )
        process = subprocess.Popen([sys.executable, "-c", code, base_url, out_dir])
        return Sample(*_wait(process))


def measure_dagster(base_url: str) -> Sample:
    """Today's partition, as the 06:00 schedule runs it: the emulator serves today's register,
    so every capture is on time (a past day would add a late-capture warning per endpoint)."""
    import dagster as dg

    day = today_in_malaysia().isoformat()

    with tempfile.TemporaryDirectory() as work:
        home = Path(work) / "home"
        home.mkdir()
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "MSPO_API_BASE_URL": base_url,
            "MSPO_DATA_ROOT": str(Path(work) / "data"),
            "MSPO_FIRST_DAY": day,
        }
        dagster = Path(sys.executable).parent / "dagster"
        command = [str(dagster), "asset", "materialize", "-m", "mspo_pipeline.definitions"]
        process = subprocess.Popen(
            [*command, "--select", "*", "--partition", day],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wall, peak = _wait(process)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            (run,) = instance.get_runs()
            stats = instance.get_run_stats(run.run_id)
            steps = instance.get_run_step_stats(run.run_id)
        assert stats.start_time is not None and stats.end_time is not None
        step_s = sorted(
            ((s.step_key, (s.end_time or 0) - (s.start_time or 0)) for s in steps),
            key=lambda item: -item[1],
        )
        return Sample(wall, peak, stats.end_time - stats.start_time, len(steps), tuple(step_s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    emulator, base_url = start_emulator(args.scale)
    samples: dict[str, list[Sample]] = {"docs": [], "dagster": []}
    try:
        for number in range(args.rounds):
            order = ("docs", "dagster") if number % 2 == 0 else ("dagster", "docs")
            for name in order:
                measure = measure_docs if name == "docs" else measure_dagster
                samples[name].append(measure(base_url))
                sample = samples[name][-1]
                print(f"round {number + 1}: {name} {sample.wall_s:.1f} s", flush=True)
    finally:
        emulator.terminate()
        emulator.wait()

    def median(name: str, field: str) -> float:
        return statistics.median(getattr(s, field) for s in samples[name])

    docs_wall, docs_peak = median("docs", "wall_s"), median("docs", "peak_mb")
    run_s, steps = median("dagster", "run_s"), median("dagster", "steps")
    print(f"\nscale {args.scale}, {args.rounds} rounds alternating, medians")
    print(f"{'':<44}{'seconds':>9}{'x docs':>8}{'peak MB':>9}{'x docs':>8}")
    print(f"{'docs scripts (raw capture only), process':<44}{docs_wall:>9.1f}{1:>8.2f}", end="")
    print(f"{docs_peak:>9.0f}{1:>8.2f}")
    wall, peak = median("dagster", "wall_s"), median("dagster", "peak_mb")
    print(f"{'whole graph, dagster CLI process':<44}{wall:>9.1f}{wall / docs_wall:>8.2f}", end="")
    print(f"{peak:>9.0f}{peak / docs_peak:>8.2f}")
    print(f"{f'  the run itself ({steps:.0f} steps)':<44}{run_s:>9.1f}{run_s / docs_wall:>8.2f}")
    last = samples["dagster"][-1]
    total = sum(seconds for _, seconds in last.step_s)
    print(f"\nthe last run's steps: {total:.1f} s in all; the slowest:")
    for key, seconds in last.step_s[:12]:
        print(f"  {key:<40}{seconds:>6.2f} s")


if __name__ == "__main__":
    main()
