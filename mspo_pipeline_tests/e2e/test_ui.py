"""``mspo ui`` as a user starts it: the emulator and ``dagster dev`` with the demo's settings,
a real webserver on a free port, then Ctrl-C stopping both."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mspo_pipeline.lib.days import FIRST_DAY_ENV, today_in_malaysia
from mspo_pipeline.ui import ui_environment
from mspo_pipeline_tests.deployment import LOCATION_QUERY, free_port

MSPO = Path(sys.executable).parent / "mspo"
REAL_API = "https://api.mspots.org.my/api"
START_TIMEOUT_S = 180
STOP_TIMEOUT_S = 90


def test_the_ui_gets_the_demos_settings_and_the_given_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FIRST_DAY_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    day = tmp_path / "data" / "raw" / "mspo" / "api" / "references" / "states" / "20261120"
    day.mkdir(parents=True)
    (day / "states.parquet").write_bytes(b"")
    env = ui_environment(
        {"MSPO_API_BASE_URL": REAL_API, "PATH": "/bin"},
        data_root=Path("data"),
        dagster_home=Path(".dagster_home"),
        api_url="http://127.0.0.1:1234/api",
    )
    assert env == {
        "PATH": "/bin",
        "DAGSTER_HOME": str(tmp_path / ".dagster_home"),
        "MSPO_DATA_ROOT": str(tmp_path / "data"),
        "MSPO_API_BASE_URL": "http://127.0.0.1:1234/api",
        FIRST_DAY_ENV: "2026-11-20",
    }


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as reply:
        body: bytes = reply.read()
        return body


def _serving(url: str) -> bool:
    try:
        _get(url)
    except (urllib.error.URLError, OSError):
        return False
    return True


def _location_loaded(webserver: str) -> bool:
    """Whether the webserver lists the code location as loaded (it loads in the background)."""
    request = urllib.request.Request(
        f"{webserver}/graphql",
        data=json.dumps({"query": LOCATION_QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        entries = json.load(reply)["data"]["workspaceOrError"]["locationEntries"]
    loaded = [entry["locationOrLoadError"] or {} for entry in entries]
    errors = [entry for entry in loaded if entry.get("__typename") == "PythonError"]
    assert not errors, errors
    return any(entry.get("__typename") == "RepositoryLocation" for entry in loaded)


def test_ui_serves_the_demo_with_the_emulator_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MSPO_", "DAGSTER_"))}
    env["MSPO_API_BASE_URL"] = REAL_API  # what the UI must not use unless told to
    log = tmp_path / "ui.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [str(MSPO), "ui", "--scale", "0.01", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    webserver = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _serving(f"{webserver}/server_info"):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        while not _location_loaded(webserver):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        printed = log.read_text()
        (api,) = re.findall(r"MSPO_API_BASE_URL=(\S+)", printed)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api", api), printed
        states = json.loads(_get(f"{api}/references/states"))["data"]
        assert len(states) == 16
        assert f"DAGSTER_HOME={tmp_path / '.dagster_home'}" in printed
        assert f"MSPO_DATA_ROOT={tmp_path / 'data'}" in printed
        (first,) = re.findall(rf"{FIRST_DAY_ENV}=(\S+)", printed)
        assert abs(dt.date.fromisoformat(first) - today_in_malaysia()) <= dt.timedelta(days=1)

        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=STOP_TIMEOUT_S)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)
    assert code == 0, log.read_text()
    assert "==> stopped" in log.read_text()
    assert not _serving(f"{webserver}/server_info")
    assert not _serving(f"{api}/references/states")
