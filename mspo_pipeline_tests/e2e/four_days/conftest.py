"""The store this folder's modules share: built once a session, in the one process that runs
them all."""

from collections.abc import Iterator

import pytest

from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline_tests.curated_store import DAYS, Store, materialize_days


@pytest.fixture(scope="session")
def store(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The whole graph for the four days of ``curated_store.DAYS`` (tests copy it to change it)."""
    root = tmp_path_factory.mktemp("curated")
    yield Store(root, materialize_days(emulator, root, DAYS))
