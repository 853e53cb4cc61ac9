"""The ``dagster`` CLI, counting the time its instance spends recording events.

    python -m benchmarks.timed_events asset materialize ...   (the ``dagster`` CLI's arguments)

Every event a run emits (step start and end, each input and output, each materialisation and
check result, each log line) goes through ``DagsterInstance.handle_new_event``, which stores it
before the run goes on. Wrapping that one method with a clock tells how much of a run is
Dagster's own record keeping, whatever the pipeline does: a floor no change to the assets can
go below. The wrapper costs one clock read per event (about a microsecond). At exit the count
and the seconds are written as JSON to the file named by ``EVENTS_FILE_VARIABLE``. With
``UNPOOLED_VARIABLE`` set, neither the deployments' instance class nor the code location's
executor can pool the instance's connections (``mspo_pipeline/instance.py``): the process
connects for each event, as Dagster does by default.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

EVENTS_FILE_VARIABLE = "MSPO_BENCHMARK_EVENTS_FILE"
UNPOOLED_VARIABLE = "MSPO_BENCHMARK_UNPOOLED"


def main() -> None:
    from dagster._cli import main as dagster_cli
    from dagster._core.instance import DagsterInstance

    recorded = {"events": 0, "seconds": 0.0}
    handle_new_event = DagsterInstance.handle_new_event

    def timed(self: DagsterInstance, *args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            handle_new_event(self, *args, **kwargs)
        finally:
            recorded["seconds"] += time.perf_counter() - started
            recorded["events"] += 1

    DagsterInstance.handle_new_event = timed  # type: ignore[method-assign,assignment]
    if os.environ.get(UNPOOLED_VARIABLE):
        DagsterInstance.optimize_for_webserver = lambda *_, **__: None  # type: ignore[method-assign]

    def write() -> None:
        Path(os.environ[EVENTS_FILE_VARIABLE]).write_text(json.dumps(recorded))

    atexit.register(write)
    sys.argv = ["dagster", *sys.argv[1:]]
    dagster_cli()


if __name__ == "__main__":
    main()
