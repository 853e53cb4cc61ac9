"""``mspo ui``: the Dagster UI over the demo's data, with the emulator as its API.

``dagster dev`` run by hand needs four variables to show the demo (the instance, the data root,
the first day and the API), and one left unset sends the 06:00 schedule, or a click on
*Materialize*, to whatever the default is. This command sets all four: the demo's instance and
data root, the first day the demo's history starts, and an emulator it starts on a free port
(unless ``--api-url`` points elsewhere, a choice the user makes by typing it). Ctrl-C or SIGTERM
stops ``dagster dev`` (its webserver, daemon and code server) and then the emulator.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType

from mspo_pipeline.demo import demo_first_day, prepare_home
from mspo_pipeline.lib.days import FIRST_DAY_ENV

STOP_TIMEOUT_S = 60
"""How long ``dagster dev`` gets to stop its processes after the signal is passed on."""


def ui_environment(
    base: Mapping[str, str], *, data_root: Path, dagster_home: Path, api_url: str
) -> dict[str, str]:
    """The environment ``dagster dev`` runs in: ``base`` with the demo's four settings."""
    data_root = data_root.absolute()
    return {
        **base,
        "DAGSTER_HOME": str(dagster_home.absolute()),
        "MSPO_DATA_ROOT": str(data_root),
        "MSPO_API_BASE_URL": api_url,
        FIRST_DAY_ENV: demo_first_day(data_root),
    }


@contextlib.contextmanager
def _api(api_url: str | None, *, scale: float, seed: int) -> Iterator[str]:
    """``api_url`` as given, or an emulator serving today's register until the block ends."""
    if api_url:
        yield api_url
        return
    from mspo_pipeline.emulator.server import EmulatorServer

    print(f"==> starting the MSPO API emulator (scale {scale}, seed {seed})", flush=True)
    with EmulatorServer(scale=scale, seed=seed) as emulator:
        print(f"    serving {emulator.base_url}", flush=True)
        yield emulator.base_url


def run_ui(
    *,
    scale: float,
    seed: int,
    data_root: Path,
    dagster_home: Path,
    port: int,
    api_url: str | None,
) -> int:
    """Serve the UI until ``dagster dev`` ends or this process is interrupted; its exit code."""
    prepare_home(dagster_home.absolute())
    dagster = Path(sys.executable).parent / "dagster"
    with _api(api_url, scale=scale, seed=seed) as url:
        env = ui_environment(
            os.environ, data_root=data_root, dagster_home=dagster_home, api_url=url
        )
        print(
            "==> dagster dev with\n"
            + "".join(
                f"    {name}={env[name]}\n"
                for name in ("DAGSTER_HOME", "MSPO_DATA_ROOT", FIRST_DAY_ENV, "MSPO_API_BASE_URL")
            )
            + f"    UI: http://127.0.0.1:{port} (Ctrl-C stops it and the emulator)",
            flush=True,
        )
        # Its own session: a Ctrl-C in the terminal reaches this process only, which passes it
        # on once (a second SIGINT would make dagster dev kill its processes without cleanup).
        process = subprocess.Popen(
            [str(dagster), "dev", "-m", "mspo_pipeline.definitions", "--port", str(port)],
            env=env,
            start_new_session=True,
        )

        signalled: list[int] = []

        def pass_on(signum: int, frame: FrameType | None) -> None:
            """The first signal asks dagster dev to stop; a second one kills it."""
            if signalled:
                process.kill()
            else:
                process.send_signal(signum)
            signalled.append(signum)

        previous = {
            signum: signal.signal(signum, pass_on) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            code = process.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
    print("==> stopped", flush=True)
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else code
