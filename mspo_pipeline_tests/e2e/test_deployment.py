"""End to end on the production deployment's configuration: PostgreSQL, the user-code server,
the daemon and the webserver run as local processes with docker/dagster.yaml; the daily
schedule is triggered for one date and two missed dates are backfilled, as a user would. Then
one capture is made to fail (through Dagster's run retries) and one check to fail at ERROR, and
the daemon's alert sensors must tell a local webhook and a local SMTP server about each, and
about today's captures missing past the deadline, exactly once."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mspo_pipeline.defs.alerts import (
    CAPTURE_MISSING_SENSOR,
    CHECK_ERROR_SENSOR,
    RUN_FAILED_SENSOR,
)
from mspo_pipeline.defs.warehouse import MANIFEST_POOL
from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import alerts, storage
from mspo_pipeline.lib.catalog import ENDPOINTS
from mspo_pipeline.lib.days import today_in_malaysia
from mspo_pipeline_tests.alert_sinks import (
    WEBHOOK_SECRET,
    MailSink,
    WebhookSink,
    mail_sink,
    wait_for,
    webhook_sink,
)
from mspo_pipeline_tests.deployment import (
    LOCATION_NAME,
    REPO_ROOT,
    CodeLocation,
    Deployment,
    Postgres,
    deployment,
    launch_partition_run,
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
FAILED_DAY = "2026-11-19"
"""A day whose capture of ``FAILED_TABLE`` the emulator answers with no records, every time."""
FAILED_TABLE = "countries"
RUN_ATTEMPTS = 3
"""docker/dagster.yaml retries a failed run twice: three failed runs, one alert."""
ALERT_INTERVAL_SECONDS = 5
"""Short enough to add little to the test, long enough not to slow its runs down."""


@dataclass(frozen=True)
class Pipeline:
    """A code location to deploy and the files one successful partition leaves in its data root."""

    location: CodeLocation
    expected_files: Callable[[str], list[Path]]
    emulator: EmulatorServer
    webhook: WebhookSink
    mail: MailSink


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    """The real code location, pointed at an emulator that serves today's register, with
    alerts on (to local sinks) and a capture deadline of midnight, so today's is already late."""
    data_root = tmp_path / "data"
    with (
        EmulatorServer(scale=0.01, seed=7) as emulator,
        webhook_sink() as webhook,
        mail_sink() as mail,
    ):
        location = CodeLocation(
            target=("--module-name", "mspo_pipeline.definitions"),
            cwd=REPO_ROOT,
            env={
                "MSPO_API_BASE_URL": emulator.base_url,
                "MSPO_DATA_ROOT": str(data_root),
                "MSPO_LATE_CAPTURE": "allow",
                alerts.WEBHOOK_URL_ENV: webhook.url,
                alerts.SMTP_HOST_ENV: mail.host,
                alerts.SMTP_PORT_ENV: str(mail.port),
                alerts.SMTP_STARTTLS_ENV: "false",
                alerts.EMAIL_FROM_ENV: "mspo@example.org",
                alerts.EMAIL_TO_ENV: "oncall@example.org",
                alerts.DEADLINE_ENV: "00:00",
                alerts.INTERVAL_ENV: str(ALERT_INTERVAL_SECONDS),
            },
        )
        yield Pipeline(
            location,
            lambda day: [
                data_root / storage.relative_path(["raw", endpoint.name], day)
                for endpoint in ENDPOINTS
            ],
            emulator,
            webhook,
            mail,
        )


def six_am_in_kuala_lumpur(day: str) -> float:
    return datetime.combine(date.fromisoformat(day), time(6), tzinfo=KL).timestamp()


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

        runs = deployed.wait_for_runs(count=3, timeout=300, job=JOB)

        assert [(status, day) for _, status, day in runs] == [
            ("SUCCESS", SCHEDULED_DAY),
            ("SUCCESS", MISSED_DAYS[0]),
            ("SUCCESS", MISSED_DAYS[1]),
        ], runs
        assert runs[0][0] == scheduled_runs[0]
        # With a local data root, docker/dagster.yaml's compute log manager keeps each run's
        # step output under DAGSTER_HOME/storage (test_compute_logs: a bucket's root).
        for run_id, _, _ in runs:
            assert list((deployed.home / "storage" / run_id).rglob("*.out")), run_id
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

        provoke_one_alert_of_each_kind(deployed, repository, pipeline)
        alerted = alerts_when_quiet(postgres, pipeline)
        mailed = sorted(str(message["Subject"]) for message in pipeline.mail.messages)
        secret_rows = postgres.query(
            "SELECT (SELECT count(*) FROM event_logs WHERE event LIKE %s)"
            " + (SELECT count(*) FROM job_ticks WHERE tick_body LIKE %s)",
            (f"%{WEBHOOK_SECRET}%", f"%{WEBHOOK_SECRET}%"),
        )
        assert secret_rows == [(0,)]

    assert_each_alert_once(alerted, mailed)
    for log in (tmp_path / "deployment").rglob("*"):
        if log.is_file():
            assert WEBHOOK_SECRET.encode() not in log.read_bytes(), f"the webhook secret in {log}"

    for day in (SCHEDULED_DAY, *MISSED_DAYS):
        for path in pipeline.expected_files(day):
            assert path.is_file(), f"{path} missing after the run for {day}"
            assert path.stat().st_size > 0, f"{path} is empty"


def provoke_one_alert_of_each_kind(
    deployed: Deployment, repository: str, pipeline: Pipeline
) -> None:
    """A capture that fails on every attempt, and a check failed at ERROR (a threshold no table
    can meet), as two small runs; today's captures are missing already."""
    pipeline.emulator.inject(FAILED_TABLE, "empty", times=10 * RUN_ATTEMPTS)
    launch_partition_run(deployed, repository, JOB, FAILED_DAY, [["raw", FAILED_TABLE]])
    launch_partition_run(
        deployed,
        repository,
        JOB,
        SCHEDULED_DAY,
        [["validated", FAILED_TABLE], ["quarantine", FAILED_TABLE]],
        {"ops": {f"validate_{FAILED_TABLE}": {"config": {"quarantine_error_share": -1.0}}}},
    )
    runs = deployed.wait_for_runs(count=3 + RUN_ATTEMPTS + 1, timeout=300, job=JOB)
    statuses = sorted((day, status) for _, status, day in runs[3:])
    assert statuses == [
        *[(FAILED_DAY, "FAILURE")] * RUN_ATTEMPTS,
        (SCHEDULED_DAY, "SUCCESS"),
    ], runs
    pipeline.emulator.clear_faults()


def alerts_when_quiet(postgres: Postgres, pipeline: Pipeline) -> list[str]:
    """What the sinks hold once every alert sensor has finished a tick begun after the last run
    ended: such a tick has seen every failure and check, so any repeat would be there too."""
    (after,) = postgres.query("SELECT coalesce(max(id), 0) FROM job_ticks")[0]
    sensors = (RUN_FAILED_SENSOR, CHECK_ERROR_SENSOR, CAPTURE_MISSING_SENSOR)

    def each_sensor_ticked() -> bool:
        bodies = postgres.query(
            "SELECT tick_body FROM job_ticks WHERE id > %s AND status <> 'STARTED'", (after,)
        )
        return all(any(f'"{name}"' in body for (body,) in bodies) for name in sensors)

    wait_for("a tick of every alert sensor after the last run", each_sensor_ticked, timeout=120)
    return pipeline.webhook.texts()


def assert_each_alert_once(texts: list[str], subjects: list[str]) -> None:
    today = today_in_malaysia().isoformat()
    expected = {
        "run_failed": f"run of {JOB} failed for partition {FAILED_DAY}",
        "check_error": (
            f"check quarantine_share on quarantine/{FAILED_TABLE} failed (ERROR) "
            f"for partition {SCHEDULED_DAY}"
        ),
        "capture_missing": f"capture(s) missing for {today}",
    }
    titles = sorted(text.splitlines()[0] for text in texts)
    assert len(texts) == 3, titles
    for kind, title in expected.items():
        assert sum(title in text.splitlines()[0] for text in texts) == 1, (kind, titles)
    assert subjects == titles
    (failed,) = [text for text in texts if FAILED_DAY in text]
    assert f"raw__{FAILED_TABLE}" in failed and "EmptySnapshotError" in failed, failed
    (missing,) = [text for text in texts if today in text]
    assert f"{len(ENDPOINTS)} of {len(ENDPOINTS)} raw capture(s)" in missing, missing
