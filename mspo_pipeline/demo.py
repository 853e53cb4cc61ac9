"""``mspo demo``: today's snapshot of the emulated API, through the real Dagster job, into ./data.

The demo is the daily schedule's run, made visible: it starts the emulator on a free loopback
port, points the pipeline at it, runs the ``mspo_daily`` job for today's partition in a persistent
Dagster instance (so ``dagster dev`` shows the runs afterwards), and prints what it wrote.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from mspo_pipeline.cli import DEFAULT_DATA_ROOT, DEFAULT_HOME, DEFAULT_SCALE, DEFAULT_SEED
from mspo_pipeline.lib.days import FIRST_DAY_ENV, first_day, today_in_malaysia

REPO_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


@dataclass(frozen=True, slots=True)
class Written:
    asset: str
    rows: int | None
    megabytes: float | None
    seconds: float | None
    path: str


def prepare_home(home: Path) -> None:
    """A DAGSTER_HOME at ``home``, set up like the repository's ``dagster.yaml`` (kept if it
    has one already)."""
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists() and REPO_DAGSTER_YAML.exists():
        shutil.copy(REPO_DAGSTER_YAML, home / "dagster.yaml")


def _instance(home: Path) -> dg.DagsterInstance:
    """The persistent instance under ``home``, which ``mspo ui`` opens afterwards."""
    prepare_home(home)
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


def _value(metadata: dg.RawMetadataMapping, key: str) -> object:
    entry = metadata.get(key)
    return entry.value if isinstance(entry, dg.MetadataValue) else entry


def written(result: dg.ExecuteInProcessResult) -> list[Written]:
    """One row per materialised asset: rows, Parquet MB, its step's seconds, and its file."""
    seconds: dict[str, float] = {}
    for event in result.all_events:
        if event.is_step_success and event.step_key is not None:
            data = event.event_specific_data
            seconds[event.step_key] = getattr(data, "duration_ms", 0.0) / 1000
    rows = []
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        metadata = materialization.metadata
        size = _value(metadata, "parquet_bytes")
        count = _value(metadata, "dagster/row_count")
        rows.append(
            Written(
                asset=materialization.asset_key.to_user_string(),
                rows=count if isinstance(count, int) else None,
                megabytes=size / 1e6 if isinstance(size, int) else None,
                seconds=seconds.get(event.step_key or ""),
                path=str(_value(metadata, "uri") or ""),
            )
        )
    return rows


def _table(rows: Sequence[Written]) -> str:
    width = max((len(row.asset) for row in rows), default=5)
    lines = [f"{'asset':<{width}} {'rows':>9} {'MB':>8} {'s':>6}  path"]
    for row in sorted(rows, key=lambda r: r.asset):
        count = f"{row.rows:,}" if row.rows is not None else "-"
        size = f"{row.megabytes:.2f}" if row.megabytes is not None else "-"
        took = f"{row.seconds:.1f}" if row.seconds is not None else "-"
        lines.append(f"{row.asset:<{width}} {count:>9} {size:>8} {took:>6}  {row.path}")
    return "\n".join(lines)


def _checks(result: dg.ExecuteInProcessResult) -> str:
    evaluations = [
        event.asset_check_evaluation_data
        for event in result.all_events
        if event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    if not evaluations:
        return ""
    failed = [e for e in evaluations if not e.passed]
    lines = [f"asset checks: {len(evaluations) - len(failed)} passed, {len(failed)} failed"]
    for evaluation in failed:
        lines.append(
            f"  {evaluation.severity.value:<5} {evaluation.asset_key.to_user_string()}"
            f" {evaluation.check_name}"
        )
    return "\n".join(lines)


def demo_first_day(data_root: Path) -> str:
    """The first partition the demo's definitions and UI show: ``MSPO_FIRST_DAY`` if set, else
    the oldest day already captured under ``data_root``, else today, so a newcomer's UI lists no
    missing days that were never meant to be captured (and offers no backfill to fabricate them).
    """
    from mspo_pipeline.lib.ledger import stored_days

    given = os.environ.get(FIRST_DAY_ENV, "").strip()
    if given:
        return first_day(given).isoformat()
    return min([*stored_days(str(data_root)), today_in_malaysia()]).isoformat()


def _ui_arguments(scale: float, seed: int, data_root: Path, dagster_home: Path) -> str:
    """The ``mspo ui`` options that differ from its defaults, so it opens this demo's data."""
    given = {
        "--scale": (scale, DEFAULT_SCALE),
        "--seed": (seed, DEFAULT_SEED),
        "--data-root": (data_root.absolute(), DEFAULT_DATA_ROOT.absolute()),
        "--dagster-home": (dagster_home.absolute(), DEFAULT_HOME.absolute()),
    }
    return "".join(
        f" {flag} {value}" for flag, (value, default) in given.items() if value != default
    )


def run_demo(*, scale: float, seed: int, data_root: Path, dagster_home: Path) -> int:
    """Run the demo; the exit code is 0 when every step succeeded."""
    from mspo_pipeline.emulator.server import EmulatorServer

    partition = today_in_malaysia().isoformat()
    data_root = data_root.absolute()
    history_starts = demo_first_day(data_root)
    os.environ[FIRST_DAY_ENV] = history_starts  # read when the definitions load, just below
    print(f"==> starting the MSPO API emulator (scale {scale}, seed {seed})", flush=True)
    with EmulatorServer(scale=scale, seed=seed) as emulator:
        os.environ["MSPO_API_BASE_URL"] = emulator.base_url
        os.environ["MSPO_DATA_ROOT"] = str(data_root)
        print(f"    serving {emulator.base_url} as of {emulator.date}", flush=True)
        instance = _instance(dagster_home.absolute())

        from mspo_pipeline.definitions import defs

        job = defs().resolve_job_def("mspo_daily")
        print(f"==> running job mspo_daily for partition {partition} into {data_root}", flush=True)
        started = time.monotonic()
        result = job.execute_in_process(
            partition_key=partition,
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        elapsed = time.monotonic() - started

    print()
    print(_table(written(result)))
    checks = _checks(result)
    if checks:
        print()
        print(checks)
    print()
    status = "succeeded" if result.success else "FAILED (see the log above)"
    print(f"run {result.run_id} {status} in {elapsed:.1f} s")
    print(
        "\nLook at it in the Dagster UI (runs, asset metadata, checks, lineage), with the "
        "emulator as its API:\n"
        f"  ./dev ui{_ui_arguments(scale, seed, data_root, dagster_home)}\n"
        "and open http://127.0.0.1:3000; Ctrl-C stops both."
    )
    print(
        "\nQuery every layer and partition with SQL (DuckDB; .help lists the views):\n"
        f"  ./dev mspo sql --data-root {data_root}\n"
        f'  ./dev mspo sql --data-root {data_root} "SELECT state, sum(certified_area) AS '
        "certified_ha FROM smallholders_latest WHERE cert_status = 'ACTIVE' AND NOT deleted "
        'GROUP BY state ORDER BY certified_ha DESC"'
    )
    print(
        "\nWhich days were captured on time, late or not at all:\n"
        f"  {FIRST_DAY_ENV}={history_starts} ./dev mspo status --data-root {data_root}"
    )
    print(
        "\nPlots for EUDR due diligence (GeoJSON, coordinates as sent) and the day's maps:\n"
        f"  ./dev mspo export geojson --data-root {data_root} --state johor "
        f"--certified-on {partition} --output johor.geojson\n"
        f"  ./dev mspo map --data-root {data_root} --output-dir maps"
    )
    return 0 if result.success else 1
