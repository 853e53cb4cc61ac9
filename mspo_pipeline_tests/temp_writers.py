"""Real processes writing a Parquet file through ``storage``, kept alive or killed mid-write.

A writer creates and locks its temporary file exactly as ``write_parquet_atomic`` does (through
``storage._local_temp``), writes half a file, and waits: the test then kills it with SIGKILL
(what a crash leaves) or lets it live (a slow write still in progress).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_SCRIPT = """\
import sys, time
from mspo_pipeline.lib import storage
with storage._local_temp(sys.argv[1]) as temp:
    temp.write_bytes(b"PAR1 half a file")
    print(temp, flush=True)
    time.sleep(600)
"""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


@contextmanager
def live_writer(folder: Path) -> Iterator[Path]:
    """A writer in the middle of its write for as long as the block runs; yields its temp file."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(folder)], stdout=subprocess.PIPE, cwd=REPO
    )
    try:
        assert writer.stdout is not None
        temp = Path(writer.stdout.readline().decode().strip())
        assert temp.parent == folder and temp.name.startswith(".mspo-"), temp
        assert temp.name.endswith(".parquet.tmp") and temp.exists(), temp
        yield temp
    finally:
        _stop(writer)


def killed_writer(folder: Path) -> Path:
    """The temporary file of a writer killed with SIGKILL mid-write (it stays behind)."""
    with live_writer(folder) as temp:
        pass
    assert temp.exists()
    return temp


def age(path: Path, seconds: float) -> None:
    """Date ``path`` back by ``seconds``: past ``storage.STALE_TEMP_MIN_AGE_S``, a temporary
    file is judged by its writer's lock alone."""
    then = time.time() - seconds
    os.utime(path, (then, then))
