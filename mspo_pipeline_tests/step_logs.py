"""A real run's step output, read back as the UI reads it: through the instance's compute log
manager, from wherever that manager keeps it (a local folder, or a bucket)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

STEP_OUTPUT = "printed by the step, kept by the compute log manager"


@dg.op
def print_a_line() -> None:
    print(STEP_OUTPUT)


@dg.job(executor_def=dg.in_process_executor)
def print_job() -> None:
    print_a_line()


def instance_home(home: Path, compute_logs: Mapping[str, Any]) -> Path:
    """A DAGSTER_HOME whose ``dagster.yaml`` holds only ``compute_logs`` (storage: the default)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        yaml.safe_dump({"compute_logs": dict(compute_logs), "telemetry": {"enabled": False}})
    )
    return home


def captured_stdout(instance: dg.DagsterInstance) -> str:
    """Runs ``print_job`` on ``instance`` and returns the stdout its manager gives back."""
    result = dg.execute_job(dg.reconstructable(print_job), instance=instance)
    assert result.success
    (captured,) = [
        event.dagster_event.event_specific_data
        for event in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.LOGS_CAPTURED)
        if event.dagster_event is not None
    ]
    manager = instance.compute_log_manager
    log_key = manager.build_log_key_for_run(result.run_id, captured.file_key)
    return (manager.get_log_data(log_key).stdout or b"").decode()
