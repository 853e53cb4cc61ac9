"""One store of the whole graph over four days on the emulator, shared by the end-to-end tests
of the curated, map and SQL layers under ``e2e/four_days/``, whose ``conftest.py`` builds it once
a session.

The days: 2026-11-01 (the first partition), then 2026-11-18 and 2026-11-19 (consecutive), then
2026-11-21 (2026-11-20 is missing). The emulator is set to each day before its run, so every
partition is an on-time snapshot of that day and ``changes_between`` knows exactly what the
emulator changed between any two of them. Tests that change the store copy it first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import storage
from mspo_pipeline_tests import pipeline
from mspo_pipeline_tests.conftest import EMULATOR_DATE

DAYS = ("2026-11-01", "2026-11-18", "2026-11-19", "2026-11-21")
H3_RESOLUTION = 5
BASELINES = {"2026-11-18": "2026-11-01", "2026-11-19": "2026-11-18", "2026-11-21": "2026-11-19"}
"""The partition each day's ``changes`` must compare with: the newest stored before it."""


@dataclasses.dataclass(frozen=True)
class Store:
    root: Path
    runs: Mapping[str, dg.ExecuteInProcessResult]


def materialize_days(
    emulator: EmulatorServer,
    root: Path,
    days: tuple[str, ...],
    served: Mapping[str, dt.date] | None = None,
) -> dict[str, dg.ExecuteInProcessResult]:
    """The whole graph for each day in turn, the emulator serving that day (or the day
    ``served`` names for it: a late capture), into ``root``."""
    instance = dg.DagsterInstance.ephemeral()
    runs = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MSPO_API_BASE_URL", emulator.base_url)
        env.setenv("MSPO_DATA_ROOT", str(root))
        env.setenv("MSPO_LATE_CAPTURE", "allow")
        # At 1 % of the real register, cells of the default resolution 7 (about 5 km²) hold
        # too few plots to publish any; resolution 5 (about 250 km²) publishes some, not all.
        env.setenv("MSPO_H3_RESOLUTION", str(H3_RESOLUTION))
        try:
            for day in days:
                emulator.set_date((served or {}).get(day) or dt.date.fromisoformat(day))
                runs[day] = pipeline.materialize(day, instance=instance)
        finally:
            emulator.set_date(EMULATOR_DATE)
    return runs


def stored(root: Path, layer: str, table: str, day: str) -> pl.DataFrame:
    return pl.read_parquet(root / storage.relative_path([layer, table], day))


def metadata(store: Store, day: str, key: dg.AssetKey) -> dict[str, object]:
    entries = pipeline.materializations(store.runs[day])[key.to_user_string()].metadata
    return {name: getattr(entry, "value", entry) for name, entry in entries.items()}
