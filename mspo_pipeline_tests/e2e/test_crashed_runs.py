"""A run killed outright (SIGKILL) must not block the next run of its day, nor leave files behind.

The first test is the user's sequence with the repository's own ``dagster.yaml`` (the
``mspo_api`` pool limited to 1): ``dagster asset materialize`` is killed while a raw step holds
the pool slot (the emulator holds its response back), and the same command is run again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest

from mspo_pipeline import cli
from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import crashed_runs, storage
from mspo_pipeline.lib.processes import ProcessIdentity
from mspo_pipeline_tests import REPO_ROOT
from mspo_pipeline_tests.conftest import EMULATOR_DATE, fetch
from mspo_pipeline_tests.temp_writers import age, killed_writer

REPO = REPO_ROOT
DAGSTER = Path(sys.executable).parent / "dagster"
PARTITION = EMULATOR_DATE.isoformat()
SELECTION = "raw/zones,raw/states"
POOL = "mspo_api"


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL and reap (a zombie would still look alive to anyone checking its pid)."""
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


def _wait_until(what: str, ready: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


def _materialize_argv() -> list[str]:
    return [
        str(DAGSTER),
        *("asset", "materialize", "-m", "mspo_pipeline.definitions"),
        *("--select", SELECTION, "--partition", PARTITION),
    ]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME set up like ``mspo demo`` sets one up: the repository's dagster.yaml."""
    folder = tmp_path / "dagster_home"
    folder.mkdir()
    shutil.copy(REPO / "dagster.yaml", folder / "dagster.yaml")
    return folder


@pytest.fixture
def instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(home)) as opened:
        yield opened


def test_a_killed_run_does_not_block_the_next_run_of_its_day(
    tmp_path: Path,
    home: Path,
    instance: dg.DagsterInstance,
    emulator: EmulatorServer,
) -> None:
    data_root = tmp_path / "data"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "MSPO_API_BASE_URL": emulator.base_url,
        "MSPO_DATA_ROOT": str(data_root),
    }
    zones_folder = Path(storage.storage_path(str(data_root), ["raw", "zones"], PARTITION)).parent
    left_behind = killed_writer(zones_folder)
    # A crash from before this test: a file younger than the stale age is never touched, and on a
    # fast machine the second run below writes this folder within that age.
    age(left_behind, storage.STALE_TEMP_MIN_AGE_S + 1)
    # Every API request of the first run is held back long enough to kill it mid step.
    fetch(
        f"{emulator.root_url}/_emulator/faults",
        method="POST",
        body=json.dumps({"endpoint": "*", "fault": "slow", "times": 2, "delay": 60}).encode(),
    )

    requests_before = len(emulator.request_lines)
    first = subprocess.Popen(
        _materialize_argv(),
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def holds_the_pool_slot() -> bool:
            assert first.poll() is None, "the first run ended before it could be killed"
            runs = instance.get_runs()
            held = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
            asked = any("/api/" in line for line in emulator.request_lines[requests_before:])
            return bool(runs) and asked and [s.run_id for s in held] == [runs[0].run_id]

        _wait_until("the first run's raw step holds the pool slot", holds_the_pool_slot, 60)
        os.killpg(first.pid, signal.SIGKILL)  # the run and anything it started
    finally:
        _stop(first)
    (killed,) = instance.get_runs()
    assert killed.status == dg.DagsterRunStatus.STARTED
    assert killed.tags[crashed_runs.WORKER_STARTED_TAG]  # Linux: boot id and start time
    assert crashed_runs.recorded_worker(killed) == ProcessIdentity(
        ProcessIdentity.current().host, first.pid, killed.tags[crashed_runs.WORKER_STARTED_TAG]
    )
    held = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
    assert [slot.run_id for slot in held] == [killed.run_id]
    assert left_behind.exists()

    emulator.clear_faults()
    started = time.monotonic()
    second = subprocess.run(
        _materialize_argv(),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    took = time.monotonic() - started

    assert f"Released a crashed run: run {killed.run_id}" in second.stderr, second.stderr[-4000:]
    assert "Step blocked by limit" not in second.stderr
    assert second.returncode == 0, second.stderr[-4000:]
    assert took < 90, f"the second run took {took:.0f} s"
    runs = {run.run_id: run.status for run in instance.get_runs()}
    assert runs[killed.run_id] == dg.DagsterRunStatus.FAILURE
    assert sorted(runs.values(), key=str) == sorted(
        [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS], key=str
    )
    assert instance.event_log_storage.get_concurrency_info(POOL).claimed_slots == []
    for name in ("zones", "states"):
        assert Path(storage.storage_path(str(data_root), ["raw", name], PARTITION)).is_file()

    assert not left_behind.exists()
    assert list(data_root.rglob("*.tmp")) == []


def test_release_runs_command_frees_what_a_killed_run_held(
    home: Path,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """By hand: `mspo release-runs` releases a dead run and leaves a live one alone."""
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        here = ProcessIdentity.current().host
        dead = _started_run(instance, "dead", here, pid=_dead_pid())
        live = _started_run(instance, "live", here, pid=sleeper.pid)
        elsewhere = _started_run(instance, "elsewhere", "another-host", pid=_dead_pid())

        refused = cli.main(["release-runs", live.run_id])
        refusal = capsys.readouterr()
        released = cli.main(["release-runs"])
        release = capsys.readouterr()
    finally:
        _stop(sleeper)

    assert refused == 1
    assert "still running" in refusal.err
    assert released == 0, release.err
    assert f"released run {dead.run_id}" in release.out
    assert f"{POOL}:raw__dead" in release.out
    statuses = {run.run_id: run.status for run in instance.get_runs()}
    assert statuses == {
        dead.run_id: dg.DagsterRunStatus.FAILURE,
        live.run_id: dg.DagsterRunStatus.STARTED,
        elsewhere.run_id: dg.DagsterRunStatus.STARTED,
    }
    held = instance.event_log_storage.get_concurrency_info(POOL).claimed_slots
    assert sorted(slot.run_id for slot in held) == sorted([live.run_id, elsewhere.run_id])


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=60)
    return process.pid


def _started_run(instance: dg.DagsterInstance, name: str, host: str, pid: int) -> dg.DagsterRun:
    """A STARTED run tagged with a worker, holding a slot of the pool, as a run worker leaves
    one when it is killed mid step."""
    run = instance.create_run_for_job(
        dg.GraphDefinition(name=name, node_defs=[]).to_job(), tags={"dagster/partition": "x"}
    )
    instance.handle_run_event(
        run.run_id,
        dg.DagsterEvent(event_type_value="PIPELINE_START", job_name=run.job_name),
    )
    instance.add_run_tags(
        run.run_id,
        {
            crashed_runs.WORKER_RUN_TAG: run.run_id,
            crashed_runs.WORKER_HOST_TAG: host,
            crashed_runs.WORKER_PID_TAG: str(pid),
            crashed_runs.WORKER_STARTED_TAG: "",
        },
    )
    instance.event_log_storage.set_concurrency_slots(POOL, 3)
    claim = instance.event_log_storage.claim_concurrency_slot(POOL, run.run_id, f"raw__{name}")
    assert claim.is_claimed
    refreshed = instance.get_run_by_id(run.run_id)
    assert refreshed is not None and refreshed.status == dg.DagsterRunStatus.STARTED
    return refreshed
