"""``curated/captures`` through the real definitions on the emulator: on time, late, missing.

One store, two days: 2026-11-20 captured on its own day while the GM register keeps failing (the
run fails, the ledger step is skipped, and the failure sensor's ledger run records GM as
missing), and 2026-11-19 backfilled from the emulator serving 2026-11-20 (late by one day).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from mspo_pipeline import sql
from mspo_pipeline.defs.captures import (
    CAPTURES_KEY,
    RAW_KEYS,
    captures_after_failure,
    ledger_request,
    mspo_captures,
    planned_assets,
)
from mspo_pipeline.defs.curated import CURATED_GROUP
from mspo_pipeline.defs.partitions import daily_partitions
from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import ledger, storage
from mspo_pipeline.lib.catalog import ENDPOINTS
from mspo_pipeline_tests import pipeline
from mspo_pipeline_tests.conftest import EMULATOR_DATE

ON_TIME_DAY = EMULATOR_DATE.isoformat()
LATE_DAY = (EMULATOR_DATE - dt.timedelta(days=1)).isoformat()
FAILING = "gm_smallholders"
WITH_UPSTREAM = f"*{CAPTURES_KEY.to_user_string()}"


@dataclasses.dataclass(frozen=True)
class Store:
    root: Path
    instance: dg.DagsterInstance
    failed: dg.ExecuteInProcessResult
    ledger_run: dg.ExecuteInProcessResult
    late: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def store(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    root = tmp_path_factory.mktemp("captures")
    instance = dg.DagsterInstance.ephemeral()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MSPO_API_BASE_URL", emulator.base_url)
        env.setenv("MSPO_DATA_ROOT", str(root))
        env.setenv("MSPO_LATE_CAPTURE", "allow")
        try:
            emulator.inject(FAILING, "server_error", times=100, status=503)
            failed = pipeline.materialize(ON_TIME_DAY, WITH_UPSTREAM, instance=instance)
            emulator.clear_faults()
            ledger_run = pipeline.materialize(
                ON_TIME_DAY, CAPTURES_KEY.to_user_string(), instance=instance
            )
            late = pipeline.materialize(LATE_DAY, WITH_UPSTREAM, instance=instance)
        finally:
            emulator.clear_faults()
        yield Store(root, instance, failed, ledger_run, late)


def stored(root: Path, day: str) -> pl.DataFrame:
    return pl.read_parquet(root / storage.relative_path(CAPTURES_KEY.path, day))


def published(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    entries = pipeline.materializations(result)[CAPTURES_KEY.to_user_string()].metadata
    return {name: getattr(entry, "value", entry) for name, entry in entries.items()}


def test_the_ledger_is_in_the_graph_after_every_capture() -> None:
    node = pipeline.definitions().resolve_asset_graph().get(CAPTURES_KEY)
    assert node.group_name == CURATED_GROUP
    assert node.partitions_def == daily_partitions
    assert node.parent_keys == set(RAW_KEYS)
    assert [c.name for c in node.metadata["dagster/column_schema"].columns] == list(ledger.SCHEMA)


def test_a_failed_capture_skips_the_ledger_step(store: Store) -> None:
    assert not store.failed.success
    assert FAILING in pipeline.failure_messages(store.failed)
    written = pipeline.materializations(store.failed)
    assert CAPTURES_KEY.to_user_string() not in written
    assert f"raw/{FAILING}" not in written
    assert len([key for key in written if key.startswith("raw/")]) == len(ENDPOINTS) - 1


def test_the_failure_sensor_asks_for_that_days_ledger(store: Store) -> None:
    run = store.failed.dagster_run
    context = dg.build_run_status_sensor_context(
        sensor_name=captures_after_failure.name,
        dagster_event=store.failed.get_run_failure_event(),
        dagster_instance=store.instance,
        dagster_run=run,
    ).for_run_failure()
    request = captures_after_failure(context)
    assert isinstance(request, dg.RunRequest)
    assert (request.partition_key, request.run_key) == (ON_TIME_DAY, run.run_id)
    assert captures_after_failure.job_name == mspo_captures.name
    # A failed run that did not plan the ledger (here: the ledger run itself, which must never
    # ask for itself again) leaves it as true as it was.
    ledger_only = store.ledger_run.dagster_run
    assert planned_assets(store.instance, ledger_only.run_id) == {CAPTURES_KEY}
    assert isinstance(ledger_request(ledger_only, {CAPTURES_KEY}), dg.SkipReason)
    assert isinstance(ledger_request(run, set(RAW_KEYS)), dg.SkipReason)


def test_the_ledger_run_records_the_missing_endpoint(store: Store) -> None:
    assert store.ledger_run.success
    frame = stored(store.root, ON_TIME_DAY)
    assert frame.schema == ledger.SCHEMA
    statuses = dict(zip(frame["endpoint"], frame["status"], strict=True))
    assert statuses == {e.name: "missing" if e.name == FAILING else "on_time" for e in ENDPOINTS}
    metadata = published(store.ledger_run)
    assert (metadata["on_time"], metadata["late"], metadata["missing"]) == (13, 0, 1)
    gm_line = [line for line in str(metadata["preview"]).splitlines() if FAILING in line]
    assert [cell.strip() for cell in gm_line[0].split("|")[1:3]] == [FAILING, "missing"]
    missing = frame.filter(pl.col("endpoint") == FAILING).row(0, named=True)
    assert missing["sha256"] is None and missing["rows"] is None


def test_on_time_rows_describe_the_stored_files(store: Store) -> None:
    frame = stored(store.root, ON_TIME_DAY).filter(pl.col("status") == "on_time")
    for row in frame.iter_rows(named=True):
        path = store.root / row["raw_file"]
        assert row["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert row["rows"] == pl.read_parquet(path).height > 0
        provenance = storage.read_provenance(path)
        assert row["response_bytes"] == int(provenance["response_bytes"])
        assert (row["snapshot_date"], row["lag_days"]) == (EMULATOR_DATE, 0)


def test_a_backfilled_day_is_late(store: Store) -> None:
    assert store.late.success, pipeline.failure_messages(store.late)
    frame = stored(store.root, LATE_DAY)
    assert frame.get_column("status").unique().to_list() == ["late"]
    assert frame.get_column("lag_days").unique().to_list() == [1]
    assert frame.get_column("snapshot_date").unique().to_list() == [EMULATOR_DATE]
    metadata = published(store.late)
    assert (metadata["on_time"], metadata["late"], metadata["missing"]) == (0, len(ENDPOINTS), 0)
    assert metadata["dagster/row_count"] == len(ENDPOINTS)


def test_the_captures_view_answers_per_day(store: Store) -> None:
    conn, report = sql.connect(str(store.root))
    assert ledger.TABLE in report.views
    counts = sql.query(
        conn, "SELECT partition_date, status, count(*) FROM captures GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert counts == [
        (dt.date.fromisoformat(LATE_DAY), "late", len(ENDPOINTS)),
        (EMULATOR_DATE, "missing", 1),
        (EMULATOR_DATE, "on_time", len(ENDPOINTS) - 1),
    ]
    conn.close()
