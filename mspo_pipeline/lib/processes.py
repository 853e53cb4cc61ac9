"""Which process this is, and whether a process recorded earlier still exists.

A run killed with SIGKILL cannot say that it died: Dagster keeps it STARTED and keeps the pool
slots it held. Whoever finds such a run must be certain that its process is gone before
touching it, so a process is identified by more than its pid, which the kernel hands out again:

- ``host``: the machine (or container) name; a pid means nothing on another host;
- ``started``: the kernel's boot id and the process's start time in clock ticks since boot
  (Linux ``/proc``), so a pid reused by a later process, a reboot, or a container restarted
  with a fresh pid namespace all read as "a different process".

Where ``/proc`` is missing (macOS), ``started`` is empty and only "no process has this pid"
counts as gone: a reused pid then looks alive, which errs on the side of leaving a run alone.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_BOOT_ID = _PROC / "sys" / "kernel" / "random" / "boot_id"


def _boot_id() -> str:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name (which may hold spaces and parentheses)."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def start_marker(pid: int) -> str:
    """``<boot id>:<start ticks>`` of ``pid``, or ``""`` where the system does not tell."""
    fields = _stat_fields(pid)
    boot = _boot_id()
    if fields is None or not boot or len(fields) < 20:
        return ""
    return f"{boot}:{fields[19]}"  # field 22 of stat(5); fields[0] is field 3 (state)


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    host: str
    pid: int
    started: str
    """``start_marker(pid)`` when recorded; empty where the system does not tell."""

    @classmethod
    def current(cls) -> ProcessIdentity:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, start_marker(pid))

    def is_on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    def is_gone(self) -> bool:
        """True only when this process certainly no longer runs; False when in any doubt.

        Only meaningful on the host that recorded it (``is_on_this_host``): elsewhere the pid
        belongs to another machine, and this answers False.
        """
        if not self.is_on_this_host() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # a process of another user has this pid: compare start markers below
        fields = _stat_fields(self.pid)
        if fields is not None and fields[0] == "Z":
            return True  # killed, not yet reaped by its parent: it holds nothing any more
        if not self.started:
            return False
        now = start_marker(self.pid)
        return bool(now) and now != self.started

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}"
