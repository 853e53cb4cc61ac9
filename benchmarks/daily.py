"""The daily run at full scale: the docs' example scripts against the whole graph in Dagster.

    .venv/bin/python -m benchmarks.daily [--rounds 3] [--scale 1.0] [--instance sqlite]
        [--against DIR] [--age DAYS]

One emulator process (started here and warmed up, so generation is not timed) serves both
contenders, each in a fresh process, alternating, ``--rounds`` times:

- ``docs``: the API docs' example scripts, doing what they do: the reference-data loop
  (``requests.get(...).json()``, ``pl.DataFrame``, a zstd Parquet per endpoint), the SPOC script
  (its four casts made non-strict: its strict casts crash on the API's "N/A") and the OSH
  script's fetch and frame, applied to OSH and the group managers too, each written to a local
  Parquet file: the raw capture only, no checks, no provenance.
- ``dagster``: ``dagster asset materialize --select '*'`` for the day: every asset and check
  of the code location (raw, typed, validated, quarantine, curated, the ledger, the manifest),
  on a copy of a store and an instance that already hold yesterday, as a deployment's do on
  any day but its first: ``changes`` compares with yesterday, ``plot_history`` folds today into
  yesterday's history, and the row-count checks find yesterday's counts. Yesterday is built
  once, untimed, by the same command against an emulator serving yesterday. (On an empty store
  the run was lighter: ``plot_history`` alone peaked about 250 MB lower with no history to
  merge.)

Each ``dagster`` contender starts with the environment the image gives every process
(``RUN_PROCESS_ENV``: polars' allocator settings). ``--against DIR`` adds a contender: the same
command over another checkout of the project (a git worktree of an earlier commit, say), with
that checkout's own ``RUN_PROCESS_ENV``, so a change is measured beside its baseline in one run.

``--age N`` measures the same day on a store that has kept N days: yesterday's files hard-linked
into each of the N - 1 days before it, the manifest rebuilt over them, the deployment's first day
N days back. Every dagster contender then also runs on that store, alternating with the rest,
and prints its ratio to the same on yesterday's store: whatever a daily run does that grows with
the days kept (listing them, refreshing the manifest, Dagster's partitions) shows there. The
instance still holds yesterday only (``benchmarks.instance_age`` ages it), and ``plot_history``
stays yesterday's (``benchmarks.history maintenance`` times it as it grows).

``--instance`` is where Dagster records the runs: ``sqlite``, the CLI's default instance under
a fresh ``DAGSTER_HOME``, or ``deployment``, docker/dagster.yaml's storages and instance class on
a throwaway local PostgreSQL cluster (yesterday built in one database, each run on a copy of
it), where a third contender is the same run with its instance connecting for each event, as
Dagster leaves it, instead of pooled (``mspo_pipeline/instance.py``).

Printed: the process's wall time, for ``dagster`` also the run's own time (RUN_START to
RUN_SUCCESS, from the instance) and its step count, the peak memory of the process (its own
``ru_maxrss``: the in-process executor runs every step in it), and each ratio to ``docs``; and
how much of the ``dagster`` process went to Dagster recording the run's events in its instance
(``benchmarks.timed_events``): whatever the assets do, a run costs at least that.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import timed_events
from benchmarks.capture import run_example, start_emulator
from mspo_pipeline.defs.execution import RUN_PROCESS_ENV
from mspo_pipeline.lib.days import today_in_malaysia

if TYPE_CHECKING:
    from mspo_pipeline_tests.deployment import Postgres


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
    events: int | None = None
    events_s: float | None = None
    """The time the process spent recording Dagster's events in the instance."""


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


@dataclass(frozen=True)
class Code:
    """A checkout whose graph a contender runs, and the environment its image starts runs with
    (its ``RUN_PROCESS_ENV``, none if it has none)."""

    root: Path | None
    """None: this checkout, as imported here."""
    env: Mapping[str, str]


THIS_CODE = Code(None, RUN_PROCESS_ENV)


def other_code(root: Path) -> Code:
    """Another checkout of the project (a git worktree of an earlier commit, say), which must
    hold ``benchmarks/timed_events.py``."""
    if not (root / "benchmarks" / "timed_events.py").is_file():
        sys.exit(f"--against {root}: no benchmarks/timed_events.py there (a checkout too old)")
    asked = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json\n"
            "try:\n    from mspo_pipeline.defs.execution import RUN_PROCESS_ENV as env\n"
            "except ImportError:\n    env = {}\n"
            "print(json.dumps(dict(env)))",
        ],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
    )
    return Code(root, json.loads(asked.stdout))


def _daily_run(
    base_url: str,
    work: Path,
    day: dt.date,
    events_file: Path | None = None,
    *,
    pooled: bool = True,
    code: Code = THIS_CODE,
    first_day: dt.date | None = None,
) -> subprocess.Popen[bytes]:
    """``dagster asset materialize`` of ``code``'s whole graph for ``day``, on ``work``'s
    ``home`` (the instance) and ``data`` (the store), the deployment's first day ``first_day``
    (the day before ``day`` by default); with ``events_file``, the time the instance spends
    recording events is written there (``benchmarks.timed_events``)."""
    env = {
        **os.environ,
        **code.env,  # as the image sets it for every run
        "DAGSTER_HOME": str(work / "home"),
        "MSPO_API_BASE_URL": base_url,
        "MSPO_DATA_ROOT": str(work / "data"),
        "MSPO_FIRST_DAY": (first_day or day - dt.timedelta(days=1)).isoformat(),
    }
    if events_file is None:
        dagster = [str(Path(sys.executable).parent / "dagster")]
    else:
        dagster = [sys.executable, "-m", "benchmarks.timed_events"]
        env[timed_events.EVENTS_FILE_VARIABLE] = str(events_file)
        if not pooled:
            env[timed_events.UNPOOLED_VARIABLE] = "1"
    if code.root is not None:
        env["PYTHONPATH"] = str(code.root)  # its modules before the installed ones
    command = [*dagster, "asset", "materialize", "-m", "mspo_pipeline.definitions"]
    return subprocess.Popen(
        [*command, "--select", "*", "--partition", day.isoformat()],
        env=env,
        cwd=code.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class Store:
    """A store that has kept many days (``aged_store``), for the contenders that run on it."""

    data: Path
    first_day: dt.date


INSTANCES = ("sqlite", "deployment")
YESTERDAY_DATABASE = "yesterday"
AGAINST = "dagster, the other checkout"
UNPOOLED = "dagster, a connection per event"
"""The same run with its instance as Dagster leaves it (dagster-postgres connects per event),
not pooled by the code location's executor (``benchmarks.timed_events``)."""


@contextmanager
def deployment_instance() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster for docker/dagster.yaml's storage, its coordinates in
    this process's environment (the CLI processes inherit them), ``DAGSTER_POSTGRES_DB`` the
    database yesterday is built in."""
    from mspo_pipeline_tests.deployment import postgres_bin_dir, postgres_cluster

    if postgres_bin_dir() is None:
        sys.exit("--instance deployment needs a PostgreSQL server: scripts/ci-system-deps.sh")
    with postgres_cluster() as postgres:
        os.environ.update(postgres.env())
        _sql(postgres, f"CREATE DATABASE {YESTERDAY_DATABASE}")
        os.environ["DAGSTER_POSTGRES_DB"] = YESTERDAY_DATABASE
        yield postgres


def _sql(postgres: Postgres, statement: str) -> None:
    """One statement on the cluster's maintenance database (``postgres``)."""
    conn = postgres.connect("postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


def _instance_home(home: Path, postgres: Postgres | None, code: Code = THIS_CODE) -> None:
    """An empty DAGSTER_HOME: SQLite's default, or docker/dagster.yaml's storage and instance
    class (unless ``code`` is a checkout from before the class existed)."""
    if postgres is None:
        home.mkdir(parents=True)
        return
    from mspo_pipeline_tests import REPO_ROOT
    from mspo_pipeline_tests.deployment import deployment_home

    root = code.root or REPO_ROOT
    deployment_home(home, instance_class=(root / "mspo_pipeline" / "instance.py").is_file())


def build_yesterday(scale: float, work: Path, postgres: Postgres | None) -> None:
    """Yesterday's partition in ``work``, captured on its day from an emulator serving it."""
    yesterday = today_in_malaysia() - dt.timedelta(days=1)
    _instance_home(work / "home", postgres)
    emulator, base_url = start_emulator(scale, yesterday)
    try:
        _wait(_daily_run(base_url, work, yesterday))
    finally:
        emulator.terminate()
        emulator.wait()
    print(f"yesterday ({yesterday}) built in {work} (not timed below)", flush=True)


def aged_store(yesterday: Path, days: int, into: Path) -> dt.date:
    """``yesterday``'s store as a deployment's after ``days`` days: its files hard-linked into
    each of the ``days - 1`` days before it too (``plot_history`` and the manifest stay
    yesterday's), then the manifest rebuilt over all of them. Returns the first day."""
    from benchmarks.history import linked_store
    from mspo_pipeline import sql

    last = today_in_malaysia() - dt.timedelta(days=1)
    first = last - dt.timedelta(days=days - 1)
    shutil.copytree(yesterday / "data", into, copy_function=os.link)
    earlier = [first + dt.timedelta(days=n) for n in range(days - 1)]
    linked_store(yesterday / "data", f"{last:%Y%m%d}", into, earlier)
    print(sql.rebuild_manifest(str(into)), flush=True)
    return first


@contextmanager
def _yesterdays_instance(
    yesterday: Path, work: Path, postgres: Postgres | None, code: Code
) -> Iterator[None]:
    """``work/home``: an instance that holds yesterday, for one run of ``code`` to write into: a
    copy of the SQLite files, or of the PostgreSQL database (``CREATE DATABASE ... TEMPLATE``)."""
    if postgres is None:
        shutil.copytree(yesterday / "home", work / "home")
        yield
        return
    _instance_home(work / "home", postgres, code)
    database = f"run_{os.getpid()}_{time.monotonic_ns()}"
    _sql(postgres, f"CREATE DATABASE {database} TEMPLATE {YESTERDAY_DATABASE}")
    os.environ["DAGSTER_POSTGRES_DB"] = database
    try:
        yield
    finally:
        os.environ["DAGSTER_POSTGRES_DB"] = YESTERDAY_DATABASE
        _sql(postgres, f"DROP DATABASE {database} WITH (FORCE)")


def measure_dagster(
    base_url: str,
    yesterday: Path,
    postgres: Postgres | None,
    contender: str,
    code: Code = THIS_CODE,
    store: Store | None = None,
) -> Sample:
    """Today's partition, as the 06:00 schedule runs it, on a copy of ``yesterday`` (its store
    replaced by ``store``'s, if given): the emulator serves today's register, so every capture
    is on time."""
    import dagster as dg

    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "work"
        # The store's files are linked (the IO manager replaces a file, never writes into it).
        data = store.data if store else yesterday / "data"
        shutil.copytree(data, work / "data", copy_function=os.link)
        with _yesterdays_instance(yesterday, work, postgres, code):
            events_file = Path(scratch) / "events.json"
            process = _daily_run(
                base_url,
                work,
                today_in_malaysia(),
                events_file,
                pooled=contender != UNPOOLED,
                code=code,
                first_day=store.first_day if store else None,
            )
            wall, peak = _wait(process)
            recorded = json.loads(events_file.read_text())
            with dg.DagsterInstance.from_config(str(work / "home")) as dagster:
                run = dagster.get_runs(limit=1)[0]  # the newest: today's
                stats = dagster.get_run_stats(run.run_id)
                steps = dagster.get_run_step_stats(run.run_id)
        assert stats.start_time is not None and stats.end_time is not None
        step_s = sorted(
            ((s.step_key, (s.end_time or 0) - (s.start_time or 0)) for s in steps),
            key=lambda item: -item[1],
        )
        return Sample(
            wall,
            peak,
            stats.end_time - stats.start_time,
            len(steps),
            tuple(step_s),
            recorded["events"],
            recorded["seconds"],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--instance",
        choices=INSTANCES,
        default="sqlite",
        help="the CLI's default SQLite instance, or the deployment's storages on PostgreSQL",
    )
    parser.add_argument(
        "--against",
        type=Path,
        help="another checkout (e.g. a git worktree of an earlier commit): its whole graph is "
        "one more contender, so a change is measured beside its baseline in one run",
    )
    parser.add_argument(
        "--age",
        type=int,
        help="days kept: every dagster contender also runs on a store that has kept this many "
        "days (yesterday's files linked into the days before it), beside the same on "
        "yesterday's store",
    )
    args = parser.parse_args()
    against = other_code(args.against.resolve()) if args.against else None
    runs = [
        "dagster",
        *([UNPOOLED] if args.instance == "deployment" else []),
        *([AGAINST] if against else []),
    ]
    aged = f", {args.age:,} days kept" if args.age else ""
    contenders = ["docs", *runs, *(f"{name}{aged}" for name in runs if aged)]
    samples: dict[str, list[Sample]] = {name: [] for name in contenders}
    with ExitStack() as stack:
        postgres = None
        if args.instance == "deployment":
            postgres = stack.enter_context(deployment_instance())
        yesterday = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        build_yesterday(args.scale, yesterday, postgres)
        store = None
        if args.age:
            data = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "data"
            store = Store(data, aged_store(yesterday, args.age, data))
        emulator, base_url = start_emulator(args.scale)
        try:
            for number in range(args.rounds):
                for name in contenders[:: 1 if number % 2 == 0 else -1]:
                    if name == "docs":
                        samples[name].append(measure_docs(base_url))
                    else:
                        run = name.removesuffix(aged) if aged else name
                        code = against if run == AGAINST and against else THIS_CODE
                        on = store if run != name else None
                        samples[name].append(
                            measure_dagster(base_url, yesterday, postgres, run, code, on)
                        )
                    print(
                        f"round {number + 1}: {name} {samples[name][-1].wall_s:.1f} s", flush=True
                    )
        finally:
            emulator.terminate()
            emulator.wait()

    report(args, contenders, samples, aged)


def report(
    args: argparse.Namespace, contenders: list[str], samples: dict[str, list[Sample]], aged: str
) -> None:
    """The medians side by side, each as a ratio to the docs' scripts (and a contender on the
    aged store to the same on yesterday's), then the last run's slowest steps."""

    def median(name: str, field: str) -> float:
        return statistics.median(getattr(s, field) for s in samples[name])

    docs_wall, docs_peak = median("docs", "wall_s"), median("docs", "peak_mb")
    print(
        f"\nscale {args.scale}, {args.instance} instance, {args.rounds} rounds alternating, medians"
    )
    print(f"{'':<52}{'seconds':>9}{'x docs':>8}{'peak MB':>9}{'x docs':>8}")
    print(f"{'docs scripts (raw capture only), process':<52}{docs_wall:>9.1f}{1:>8.2f}", end="")
    print(f"{docs_peak:>9.0f}{1:>8.2f}")
    for name in contenders[1:]:
        run = name.removesuffix(aged) if aged else name
        label = {
            UNPOOLED: "the same, a connection per event",
            AGAINST: f"the same, {args.against}",
        }.get(run, "whole graph, dagster CLI process") + ("" if run == name else aged)
        wall, peak = median(name, "wall_s"), median(name, "peak_mb")
        print(f"{label:<52}{wall:>9.1f}{wall / docs_wall:>8.2f}", end="")
        print(f"{peak:>9.0f}{peak / docs_peak:>8.2f}")
        run_s, steps = median(name, "run_s"), median(name, "steps")
        print(
            f"{f'  the run itself ({steps:.0f} steps)':<52}{run_s:>9.1f}{run_s / docs_wall:>8.2f}"
        )
        events, events_s = median(name, "events"), median(name, "events_s")
        recording = f"  Dagster recording its {events:.0f} events"
        print(f"{recording:<52}{events_s:>9.1f}{events_s / docs_wall:>8.2f}")
        if run != name:
            print(
                f"  against the same on yesterday's store: process "
                f"{wall / median(run, 'wall_s'):.2f}x, run {run_s / median(run, 'run_s'):.2f}x, "
                f"peak {peak / median(run, 'peak_mb'):.2f}x"
            )
    for name in ("dagster", *([f"dagster{aged}"] if aged else [])):
        last = samples[name][-1]
        total = sum(seconds for _, seconds in last.step_s)
        print(f"\n{name}: the last run's steps, {total:.1f} s in all; the slowest:")
        for key, seconds in last.step_s[:12]:
            print(f"  {key:<40}{seconds:>6.2f} s")


if __name__ == "__main__":
    main()
