"""The `mspo emulator` command as a user starts it: a real process, a real port, Ctrl-C."""

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from mspo_pipeline.emulator import server

MSPO = Path(sys.executable).parent / "mspo"
EMULATOR_ARGS = ("emulator", "--port", "0", "--scale", "0.01", "--date", "2026-11-20")
BANNER_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


def _read_line(stream: IO[str], timeout: float) -> str:
    """One line, or an AssertionError after ``timeout`` (a bare readline could hang the suite)."""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    return stream.readline()


def _api_url(banner: str) -> str:
    match = re.search(r"(http://127\.0\.0\.1:\d+/api)", banner)
    assert match, banner
    return match.group(1)


def _assert_serves(api_url: str) -> None:
    with urllib.request.urlopen(f"{api_url}/references/states", timeout=30) as reply:
        states = json.load(reply)["data"]
    assert states[0] == {"stateId": 1, "state": "Johor"}
    assert len(states) == 16


@contextmanager
def _killed_on_exit(process: "subprocess.Popen[str]") -> Iterator[None]:
    """Whatever the test does, its processes (the whole session) are gone afterwards."""
    try:
        yield
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)


def test_emulator_command_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [str(MSPO), *EMULATOR_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    with _killed_on_exit(process):
        try:
            assert process.stdout is not None
            _assert_serves(_api_url(_read_line(process.stdout, BANNER_TIMEOUT_S)))
        finally:
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=STOP_TIMEOUT_S)
    assert process.returncode == 0, stderr
    assert "stopped" in stdout


def test_a_background_job_of_a_script_starts_with_sigint_ignored() -> None:
    """Why the emulator installs its own handlers: Python then has no KeyboardInterrupt."""
    probe = "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"
    done = subprocess.run(
        ["bash", "-c", '"$0" -c "$1" & wait', sys.executable, probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "True"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_emulator_started_in_the_background_of_a_script_stops_on(signum: int) -> None:
    """`mspo emulator &` in a non-interactive shell (a script, a CI step) starts with SIGINT
    ignored; the emulator must still stop on SIGINT, and on SIGTERM, and release its port."""
    script = '"$0" "$@" & echo "$!"; wait "$!"; echo "exit $?"'
    shell = subprocess.Popen(
        ["bash", "-c", script, str(MSPO), *EMULATOR_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    with _killed_on_exit(shell):
        assert shell.stdout is not None
        emulator_pid = int(_read_line(shell.stdout, BANNER_TIMEOUT_S))
        banner = _read_line(shell.stdout, BANNER_TIMEOUT_S)
        api_url = _api_url(banner)
        _assert_serves(api_url)

        started = time.monotonic()
        os.kill(emulator_pid, signum)
        stdout, stderr = shell.communicate(timeout=STOP_TIMEOUT_S)

    assert time.monotonic() - started < STOP_TIMEOUT_S
    assert f"stopped ({signal.Signals(signum).name})" in stdout, stdout + stderr
    assert stdout.rstrip().endswith("exit 0"), stdout + stderr
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{api_url}/references/states", timeout=5)


def test_a_stop_signal_while_a_request_is_being_dispatched_still_stops_the_emulator() -> None:
    """The race behind a hung stop: the signal handler raises while the main thread is starting
    a request's handler thread, inside socketserver's ``except Exception``. The stop must get
    through that clause instead of being reported as a failed request."""
    httpd = server._Server(("127.0.0.1", 0), server.Emulator(scale=0.01, seed=7, date=None))

    def interrupted(request: object, client_address: object) -> None:
        server._raise_stop(signal.SIGTERM, None)

    httpd.process_request = interrupted  # type: ignore[method-assign]
    try:
        with (
            socket.create_connection(("127.0.0.1", httpd.server_address[1]), timeout=5),
            pytest.raises(server._Stop, match="SIGTERM"),
        ):
            httpd._handle_request_noblock()
    finally:
        httpd.server_close()
