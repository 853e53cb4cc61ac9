"""End to end on the production deployment's configuration: PostgreSQL, the user-code server,
the daemon and the webserver run as local processes with docker/dagster.yaml; the daily
schedule is triggered for one date and two missed dates are backfilled, as a user would."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mspo_pipeline.defs.warehouse import MANIFEST_POOL
from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import storage
from mspo_pipeline.lib.catalog import ENDPOINTS
from mspo_pipeline_tests.deployment import (
    LOCATION_NAME,
    REPO_ROOT,
    CodeLocation,
    deployment,
    launch_schedule_tick,
    location_repositories,
    missing_system_tool,
    postgres_bin_dir,
    postgres_cluster,
)

JOB = "mspo_daily"
SCHEDULE = "mspo_daily_schedule"
POOL = "mspo_api"
SCHEDULED_DAY = "2026-11-22"
MISSED_DAYS = ("2026-11-20", "2026-11-21")
KL = ZoneInfo("Asia/Kuala_Lumpur")


@dataclass(frozen=True)
class Pipeline:
    """A code location to deploy and the files one successful partition leaves in its data root."""

    location: CodeLocation
    expected_files: Callable[[str], list[Path]]


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    """The real code location, pointed at an emulator that serves today's register."""
    data_root = tmp_path / "data"
    with EmulatorServer(scale=0.01, seed=7) as emulator:
        location = CodeLocation(
            target=("--module-name", "mspo_pipeline.definitions"),
            cwd=REPO_ROOT,
            env={
                "MSPO_API_BASE_URL": emulator.base_url,
                "MSPO_DATA_ROOT": str(data_root),
                "MSPO_LATE_CAPTURE": "allow",
            },
        )
        yield Pipeline(
            location,
            lambda day: [
                data_root / storage.relative_path(["raw", endpoint.name], day)
                for endpoint in ENDPOINTS
            ],
        )


def six_am_in_kuala_lumpur(day: str) -> float:
    return datetime.combine(date.fromisoformat(day), time(6), tzinfo=KL).timestamp()


@pytest.mark.slow
def test_schedule_tick_and_backfill_on_the_deployment(tmp_path: Path, pipeline: Pipeline) -> None:
    if postgres_bin_dir() is None:
        missing_system_tool("PostgreSQL server is not installed: run scripts/ci-system-deps.sh")
    with (
        postgres_cluster() as postgres,
        deployment(postgres, pipeline.location, tmp_path / "deployment") as deployed,
    ):
        (repository,) = location_repositories(deployed)
        scheduled_runs = launch_schedule_tick(
            deployed, repository, SCHEDULE, six_am_in_kuala_lumpur(SCHEDULED_DAY)
        )
        printed = deployed.dagster(
            "job",
            "backfill",
            "--workspace",
            str(deployed.home / "workspace.yaml"),
            "--location",
            LOCATION_NAME,
            "--job",
            JOB,
            "--partitions",
            ",".join(MISSED_DAYS),
            "--noprompt",
        )
        backfill_ids = re.findall(r"Launched backfill job `(\w+)`", printed)
        assert len(backfill_ids) == 1, printed

        runs = deployed.wait_for_runs(count=3, timeout=300)

        assert [(status, day) for _, status, day in runs] == [
            ("SUCCESS", SCHEDULED_DAY),
            ("SUCCESS", MISSED_DAYS[0]),
            ("SUCCESS", MISSED_DAYS[1]),
        ], runs
        assert runs[0][0] == scheduled_runs[0]
        backfilled = postgres.query(
            "SELECT run_id FROM run_tags WHERE key = 'dagster/backfill' AND value = %s",
            (backfill_ids[0],),
        )
        assert {row[0] for row in backfilled} == {run_id for run_id, _, _ in runs[1:]}
        materialized = postgres.query(
            "SELECT DISTINCT partition FROM event_logs"
            " WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        assert {row[0] for row in materialized} == {SCHEDULED_DAY, *MISSED_DAYS}
        # The pools exist in the instance with the limits docker/ gives them.
        limits = postgres.query('SELECT concurrency_key, "limit" FROM concurrency_limits')
        assert sorted(limits) == [(POOL, 1), (MANIFEST_POOL, 1)]

    for day in (SCHEDULED_DAY, *MISSED_DAYS):
        for path in pipeline.expected_files(day):
            assert path.is_file(), f"{path} missing after the run for {day}"
            assert path.stat().st_size > 0, f"{path} is empty"
