"""The `mspo emulator` command as a user starts it: a real process, a real port, Ctrl-C."""

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

MSPO = Path(sys.executable).parent / "mspo"


def test_emulator_command_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [str(MSPO), "emulator", "--port", "0", "--scale", "0.01", "--date", "2026-11-20"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/api)", banner)
        assert match, banner
        with urllib.request.urlopen(f"{match.group(1)}/references/states", timeout=30) as reply:
            states = json.load(reply)["data"]
        assert states[0] == {"stateId": 1, "state": "Johor"}
        assert len(states) == 16
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "stopped" in stdout
