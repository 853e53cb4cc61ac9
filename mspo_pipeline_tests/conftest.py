"""Shared fixtures: the MSPO API emulator, small and pinned, on a real port on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import http.client
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib.settings import ENV_DEFAULTS

# Every setting is set before the definitions load, so each resource is bound to its variable
# (not to a default) and a test can change it with monkeypatch.
for _name, _default in ENV_DEFAULTS.items():
    os.environ.setdefault(_name, _default)

EMULATOR_SCALE = 0.01
EMULATOR_SEED = 7
EMULATOR_DATE = dt.date(2026, 11, 20)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30,
) -> Reply:
    """One request with ``http.client``, which sends the target as given (a bare ``?`` too)."""
    parts = urlsplit(url)
    target = url[url.index(parts.netloc) + len(parts.netloc) :] or "/"
    connection = http.client.HTTPConnection(parts.netloc, timeout=timeout)
    try:
        connection.request(method, target, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


ROOT = Path(__file__).parent.parent
"""The repository, where pytest runs and node ids start."""
E2E_FOLDER = Path(__file__).parent / "e2e"
SHARED_SETUP_FOLDERS = (E2E_FOLDER / "four_days",)
"""Folders whose modules share a session fixture: a parallel run keeps each in one process."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under ``e2e/`` is ``slow``: the folder says it, not a mark to remember."""
    for item in items:
        if E2E_FOLDER in item.path.parents:
            item.add_marker(pytest.mark.slow)


def parallel_scope(nodeid: str) -> str:
    """The unit of ``./dev test``'s parallel run a test belongs to: its folder of
    ``SHARED_SETUP_FOLDERS``, else its module."""
    module = nodeid.split("::", 1)[0]
    for folder in SHARED_SETUP_FOLDERS:
        prefix = folder.relative_to(ROOT).as_posix() + "/"
        if module.startswith(prefix):
            return prefix
    return module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """How ``./dev test``'s parallel run (pytest-xdist's ``-n``, whatever ``--dist`` says)
    shares out the tests: one module, one process, so its module fixtures are built once; one
    folder of ``SHARED_SETUP_FOLDERS``, one process, so their session fixture is built once
    rather than once per process.

    xdist's own ``--dist loadgroup`` cannot do this under pytest 9.2: it marks an item's group
    by rewriting a private attribute that pytest no longer reads as the node id, and every test
    then runs wherever there is room (a module's fixture was built in both processes).
    """
    from xdist.scheduler import LoadScopeScheduling

    class ByParallelScope(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return parallel_scope(nodeid)

    return ByParallelScope(config, log)


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    """One small emulator for the session (scale 0.01, seed 7, serving 2026-11-20).

    Faults and the date are reset after every test that uses it (see ``_reset_emulator``).
    """
    with EmulatorServer(scale=EMULATOR_SCALE, seed=EMULATOR_SEED, date=EMULATOR_DATE) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_emulator(request: pytest.FixtureRequest) -> Iterator[None]:
    """Keep one test's faults and date away from the next, even when the test fails."""
    yield
    if "emulator" in request.fixturenames:
        server: EmulatorServer = request.getfixturevalue("emulator")
        server.clear_faults()
        server.set_date(EMULATOR_DATE)


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    """Start fresh emulators with other settings; all stop when the test ends."""
    started: list[EmulatorServer] = []

    def start(**kwargs: Any) -> EmulatorServer:
        settings: dict[str, Any] = {
            "scale": EMULATOR_SCALE,
            "seed": EMULATOR_SEED,
            "date": EMULATOR_DATE,
            **kwargs,
        }
        server = EmulatorServer(**settings).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """End the test process without interpreter finalisation, once pytest has reported.

    duckdb 2's nanobind bindings print "nanobind: leaked 27 instances!" (its own module's type
    constants, then a page of functions) when the interpreter finalises after some mixes of
    tests (unit/test_history.py with e2e/test_sql.py does it). Nothing leaks while tests run:
    the report comes from the order in which modules are torn down at exit, and it is noise a
    reader of the output would have to learn to ignore. The exit status is pytest's own.
    """
    if _EXIT_STATUS in config.stash:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(config.stash[_EXIT_STATUS])
