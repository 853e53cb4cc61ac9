"""A run's database connections on the deployment's instance (docker/dagster.yaml's PostgreSQL
storage), through the real `dagster` CLI: with the project's executor, the run's events go
through connections kept open; with Dagster's own, each event opens and closes one.

PostgreSQL counts the connections made to a database (``pg_stat_database.sessions``). A run also
writes events before any executor exists (creating the run records each planned
materialisation and check), so the test compares the two executors on the same run rather than
expecting a fixed count; with the deployment's instance class (``PooledInstance``) those too go
through kept connections.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from mspo_pipeline.instance import PooledInstance
from mspo_pipeline_tests import REPO_ROOT
from mspo_pipeline_tests.connections_location import ENDED
from mspo_pipeline_tests.deployment import (
    VENV_BIN,
    Postgres,
    deployment_home,
    missing_system_tool,
    postgres_bin_dir,
    postgres_cluster,
    sessions_opened,
)

LOCATION = "mspo_pipeline_tests.connections_location"


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    if postgres_bin_dir() is None:
        missing_system_tool("PostgreSQL server is not installed: run scripts/ci-system-deps.sh")
    with postgres_cluster() as cluster:
        yield cluster


def _materialise(home: Path, postgres: Postgres, definitions: str) -> tuple[int, dg.DagsterRun]:
    """Connections made while the CLI materialised every asset of ``definitions``, and the run."""
    env = {**os.environ, **postgres.env(), "DAGSTER_HOME": str(home)}
    before = sessions_opened(postgres)
    done = subprocess.run(
        [
            VENV_BIN / "dagster",
            "asset",
            "materialize",
            "-m",
            LOCATION,
            "-a",
            definitions,
            "--select",
            "*",
        ],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    opened = sessions_opened(postgres) - before - 1  # less the count's own connection
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs(limit=1)
    return opened, run


def test_a_runs_events_go_through_kept_connections(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)  # what deployment_home's dagster.yaml reads
    home = deployment_home(tmp_path / "home")
    _materialise(home, postgres, "dagsters")  # the new database's one-time set-up, not counted

    pooled, pooled_run = _materialise(home, postgres, "defs")
    per_event, per_event_run = _materialise(home, postgres, "dagsters")

    with dg.DagsterInstance.from_config(str(home)) as instance:
        logs = {run.run_id: instance.all_logs(run.run_id) for run in (pooled_run, per_event_run)}
    assert pooled_run.status == per_event_run.status == dg.DagsterRunStatus.SUCCESS
    event_types = {
        run_id: sorted(entry.dagster_event_type or "" for entry in entries)
        for run_id, entries in logs.items()
    }
    assert event_types[pooled_run.run_id] == event_types[per_event_run.run_id]
    started = next(
        number
        for number, entry in enumerate(logs[pooled_run.run_id])
        if entry.dagster_event_type == dg.DagsterEventType.RUN_START
    )
    executed = len(logs[pooled_run.run_id]) - started
    # Every event from the run's start on costs Dagster's own storage a connection (or more).
    assert per_event - pooled >= executed, (pooled, per_event, executed)


def test_a_run_goes_on_when_the_database_ends_its_connections(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart or a failover of the database ends the connection a run keeps open. Connecting
    for each event, a run never noticed; pooled, it must not fail either: the connection is
    checked before each use and replaced when it is gone."""
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)
    home = deployment_home(tmp_path / "home")
    _, run = _materialise(home, postgres, "restarted")

    assert run.status == dg.DagsterRunStatus.SUCCESS
    with dg.DagsterInstance.from_config(str(home)) as instance:
        restart = instance.get_latest_materialization_event(
            dg.AssetKey(["layer", "database_restart"])
        )
    assert restart is not None and restart.asset_materialization is not None
    ended = restart.asset_materialization.metadata[ENDED].value
    assert isinstance(ended, int) and ended >= 1, "the run's own connection was not ended"


def test_the_deployments_instance_keeps_its_connections_from_the_runs_creation_on(
    tmp_path: Path, postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docker/dagster.yaml names ``PooledInstance``: the process that creates a run (the daemon,
    for a schedule or a backfill; here the CLI) pools from the start, so the planned
    materialisations and checks it records before any executor exists go through kept
    connections too. With Dagster's own executor, the whole process then opens a fixed few, where
    the same run on the storage alone opens one or more for every event."""
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)
    storage_only = deployment_home(tmp_path / "storage_only")
    deployments = deployment_home(tmp_path / "deployment", instance_class=True)
    _materialise(storage_only, postgres, "dagsters")  # the new database's one-time set-up

    per_event, per_event_run = _materialise(storage_only, postgres, "dagsters")
    pooled, pooled_run = _materialise(deployments, postgres, "dagsters")

    with dg.DagsterInstance.from_config(str(deployments)) as instance:
        assert isinstance(instance, PooledInstance)
        events = len(instance.all_logs(pooled_run.run_id))
    assert pooled_run.status == per_event_run.status == dg.DagsterRunStatus.SUCCESS
    assert per_event >= events, (per_event, events)
    # Pooled, what the process opens is the storages' set-up and a pool per storage (19 when
    # written, for 107 events), not a connection per event.
    assert pooled < events / 2, (pooled, per_event, events)
