"""The deployment's event log on a real PostgreSQL, configured as docker/dagster.yaml says: a
run's events go through one kept connection instead of one new connection each, and are stored
and read back as with Dagster's own storage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from mspo_pipeline_tests.deployment import (
    DAGSTERS_EVENT_LOG,
    Postgres,
    missing_system_tool,
    postgres_bin_dir,
    postgres_cluster,
    sessions_opened,
    storage_only_home,
)

EVENTS = 40


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    if postgres_bin_dir() is None:
        missing_system_tool("PostgreSQL server is not installed: run scripts/ci-system-deps.sh")
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def postgres_env(postgres: Postgres, monkeypatch: pytest.MonkeyPatch) -> Postgres:
    """The variables docker/dagster.yaml reads its coordinates from, set for this test."""
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)
    return postgres


def _store_events(home: Path, postgres: Postgres) -> tuple[int, list[str]]:
    """Connections opened while EVENTS engine events are stored, and the messages read back."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run = instance.create_run_for_job(dg.GraphDefinition(name="bookkeeping").to_job())
        before = sessions_opened(postgres)
        for number in range(EVENTS):
            instance.report_engine_event(f"event {number}", run)
        opened = sessions_opened(postgres) - before - 1  # less the count's own connection
        engine_events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        messages = [entry.get_dagster_event().message for entry in engine_events]
    return opened, messages


def test_a_runs_events_share_one_connection(tmp_path: Path, postgres_env: Postgres) -> None:
    opened, messages = _store_events(storage_only_home(tmp_path / "home"), postgres_env)

    assert opened <= 2, f"{opened} connections for {EVENTS} events"
    assert messages == [f"event {number}" for number in range(EVENTS)]


def test_dagsters_own_storage_connects_for_every_event(
    tmp_path: Path, postgres_env: Postgres
) -> None:
    """What the deployment's class is for, and proof that the count above sees connections."""
    home = storage_only_home(tmp_path / "home", DAGSTERS_EVENT_LOG)
    opened, messages = _store_events(home, postgres_env)

    assert opened >= EVENTS
    assert len(messages) == EVENTS


def test_materialisations_and_checks_are_found_through_the_pool(
    tmp_path: Path, postgres_env: Postgres
) -> None:
    @dg.asset(check_specs=[dg.AssetCheckSpec("rows_present", asset="table")])
    def table() -> Iterator[dg.Output[int] | dg.AssetCheckResult]:
        yield dg.Output(3, metadata={"rows": 3})
        yield dg.AssetCheckResult(passed=True)

    home = storage_only_home(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = dg.materialize(
            [table],
            instance=instance,
            resources={"io_manager": dg.FilesystemIOManager(base_dir=str(tmp_path / "data"))},
        )
        assert result.success
        latest = instance.get_latest_materialization_event(dg.AssetKey("table"))
        assert latest is not None and latest.asset_materialization is not None
        assert latest.asset_materialization.metadata["rows"] == dg.IntMetadataValue(3)
        check_key = dg.AssetCheckKey(dg.AssetKey("table"), "rows_present")
        executions = instance.event_log_storage.get_latest_asset_check_execution_by_key([check_key])
        assert check_key in executions
