"""A month of history, kept the way a deployment keeps it, checked against the emulator's truth.

The emulator's date moves day by day through November 2026 and the real graph runs each day,
as the 06:00 schedule would. Three things go wrong, as they do in production:

- 8 November is not captured on its day; a retry on the 9th stores the 9th's register in it
  (a late capture, one day);
- 14 November is missed and filled by a backfill on the 18th (late, four days), after the 15th
  to the 18th were captured: ``changes`` of the 15th and ``plot_history`` of every later day were
  built without it, and must heal;
- 22 and 23 November are lost for good: the API is down, the runs fail, and the ledger says so.

After each day the automation conditions are evaluated as the daemon's sensor would, and what
they request runs in date order, as the backfill it emits would. Then every layer, view and
macro is checked against what the emulator served.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster._core.definitions.data_version import CachingStaleStatusResolver
from dagster._core.loader import LoadingContextForTest

from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import curated, storage
from mspo_pipeline.lib.catalog import ENDPOINTS
from mspo_pipeline.lib.warehouse import build_warehouse
from mspo_pipeline_tests import pipeline

SCALE, SEED = 0.01, 7
DAYS = tuple(dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(30))
LATE_DAY, LATE_ON = dt.date(2026, 11, 8), dt.date(2026, 11, 9)
FILLED_DAY, FILLED_ON = dt.date(2026, 11, 14), dt.date(2026, 11, 18)
LOST_DAYS = (dt.date(2026, 11, 22), dt.date(2026, 11, 23))
SNAPSHOT = {
    day: {LATE_DAY: LATE_ON, FILLED_DAY: FILLED_ON}.get(day, day)
    for day in DAYS
    if day not in LOST_DAYS
}
"""Captured partition -> the day whose register it holds."""
CAPTURED = tuple(sorted(SNAPSHOT))
REGISTERS = {"spoc_smallholders": "SPOC", "osh_smallholders": "OSH", "gm_smallholders": "GM"}
LAYERS = ("raw", "typed", "validated", "quarantine")
CURATED = ("smallholders", "certification_summary", "changes", "plot_history")


@dataclass
class History:
    emulator: EmulatorServer
    root: Path
    instance: dg.DagsterInstance
    healed: dict[dt.date, set[tuple[str, str]]]
    """Day of the tick -> (asset, partition) the automation conditions requested."""
    stale: dict[str, dict[str, str]]
    """``before``/``after`` healing the filled gap: "asset partition" -> the UI's stale status."""


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/api"


CHAINED = ("changes", "plot_history")


def stale_statuses(
    defs: dg.Definitions, instance: dg.DagsterInstance, days: list[dt.date]
) -> dict[str, str]:
    """What the UI shows for the chained assets on ``days`` (Dagster's own staleness)."""
    resolver = CachingStaleStatusResolver(
        instance, defs.resolve_asset_graph(), LoadingContextForTest(instance)
    )
    return {
        f"{table} {day}": resolver.get_status(dg.AssetKey(["curated", table]), str(day)).value
        for table in CHAINED
        for day in days
    }


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: Any) -> tuple[Any, set]:
    """One evaluation of the automation conditions, and a run per requested partition, in date
    order (the backfill the sensor emits orders ``plot_history`` the same way)."""
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
    requested = {
        (key.to_user_string(), partition)
        for key in (dg.AssetKey(["curated", name]) for name in CURATED)
        for partition in result.get_requested_partitions(key)
        if partition is not None
    }
    for partition in sorted({partition for _, partition in requested}):
        keys = sorted(key for key, day in requested if day == partition)
        run = pipeline.materialize(partition, keys, instance=instance)
        assert run.success, pipeline.failure_messages(run)
    return result.cursor, requested


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    with EmulatorServer(scale=SCALE, seed=SEED, date=DAYS[0]) as emulator:
        yield keep_a_month(emulator, tmp_path_factory)


def keep_a_month(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> History:
    """November, day by day, as the module docstring tells."""
    root = tmp_path_factory.mktemp("history")
    # In memory: the same storage schema as a deployment's, without SQLite files on disk, whose
    # per-event writes took 9 of a day's 15 s run here (the scenario runs 30 such days).
    instance = dg.DagsterInstance.ephemeral()
    defs = pipeline.definitions()
    healed: dict[dt.date, set[tuple[str, str]]] = {}
    stale: dict[str, dict[str, str]] = {}
    cursor = None
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MSPO_DATA_ROOT", str(root))
        env.setenv("MSPO_API_BASE_URL", emulator.base_url)

        def capture(partition: dt.date, served: dt.date) -> None:
            """One day's run, then a tick of the daemon (runs take longer than its interval)."""
            nonlocal cursor
            emulator.set_date(served)
            run = pipeline.materialize(partition, instance=instance)
            assert run.success, pipeline.failure_messages(run)
            later = [day for day in CAPTURED if partition < day <= served]
            if partition == FILLED_DAY:
                stale["before"] = stale_statuses(defs, instance, later)
            cursor, requested = tick(defs, instance, cursor)
            healed.setdefault(served, set()).update(requested)
            if partition == FILLED_DAY:
                stale["after"] = stale_statuses(defs, instance, later)

        for day in DAYS:
            if day == LATE_ON:
                capture(LATE_DAY, served=day)
            if day in LOST_DAYS:  # the API is down all day: the run fails at raw
                env.setenv("MSPO_API_BASE_URL", closed_port())
                run = pipeline.materialize(day, instance=instance)
                assert not run.success
                env.setenv("MSPO_API_BASE_URL", emulator.base_url)
                # What the run-failure sensor launches: the ledger (so the day says missing) and
                # the store's manifest.
                ledger = pipeline.materialize(
                    day, ["curated/captures", "warehouse/manifest"], instance=instance
                )
                assert ledger.success, pipeline.failure_messages(ledger)
            elif day not in (LATE_DAY, FILLED_DAY):
                capture(day, served=day)
            if day == FILLED_ON:
                capture(FILLED_DAY, served=day)
        _, after = tick(defs, instance, cursor)
        assert after == set(), "a second tick must find nothing left to heal"
    return History(emulator, root, instance, healed, stale)


def stored(root: Path, layer: str, table: str, day: dt.date) -> pl.DataFrame:
    return pl.read_parquet(root / storage.relative_path([layer, table], day.isoformat()))


def footer(root: Path, layer: str, table: str, day: dt.date) -> dict[str, str]:
    return storage.read_provenance(root / storage.relative_path([layer, table], day.isoformat()))


def sql(root: Path, query: str) -> pl.DataFrame:
    conn = duckdb.connect()
    build_warehouse(conn, str(root))
    return conn.sql(query).pl()


def test_only_the_late_filled_gap_is_healed(history: History) -> None:
    """Filling the 14th re-derives ``changes`` and ``plot_history`` of every later stored day
    (the 15th to the 18th), and nothing is re-derived on any other day. (``changes`` of the
    16th to the 18th did not need it: a chained asset cannot tell which earlier day it builds
    on until it runs, so every later day within ``GAP_LOOKBACK_DAYS`` is re-derived.)"""
    after_fill = {day.isoformat() for day in CAPTURED if FILLED_DAY < day <= FILLED_ON}
    assert history.healed.pop(FILLED_ON) == {
        (f"curated/{table}", day) for table in ("changes", "plot_history") for day in after_fill
    }
    assert all(not requested for requested in history.healed.values()), history.healed


def test_the_ui_shows_the_days_after_a_filled_gap_stale_until_they_are_healed(
    history: History,
) -> None:
    assert set(history.stale["before"].values()) == {"STALE"}, history.stale["before"]
    assert set(history.stale["after"].values()) == {"FRESH"}, history.stale["after"]


@pytest.mark.parametrize("day", CAPTURED, ids=str)
def test_every_layer_says_how_its_day_was_captured(history: History, day: dt.date) -> None:
    late = SNAPSHOT[day] != day
    expected = {
        "late_capture": "true" if late else "false",
        "snapshot_date": SNAPSHOT[day].isoformat(),
        "lag_days": str((SNAPSHOT[day] - day).days),
    }
    for endpoint in ENDPOINTS:
        for layer in LAYERS:
            found = footer(history.root, layer, endpoint.name, day)
            assert {key: found.get(key) for key in expected} == expected, (layer, endpoint.name)
    for table in CURATED:
        found = footer(history.root, "curated", table, day)
        assert found.get("late_capture") == expected["late_capture"], table
        sources = json.loads(found["sources"])
        assert {source["snapshot_date"] for source in sources.values()} == {
            SNAPSHOT[day].isoformat()
        }, table


def test_sql_views_carry_snapshot_date_and_late_capture(history: History) -> None:
    truth = pl.DataFrame(
        {
            "partition_date": list(SNAPSHOT),
            "snapshot_date": list(SNAPSHOT.values()),
            "late_capture": [SNAPSHOT[day] != day for day in SNAPSHOT],
        }
    ).sort("partition_date")
    for view in ("smallholders", "certification_summary"):
        found = sql(
            history.root,
            f"SELECT DISTINCT partition_date, snapshot_date, late_capture FROM {view} "
            "ORDER BY partition_date",
        )
        assert found.equals(truth), view
    changes = sql(
        history.root,
        "SELECT DISTINCT partition_date, snapshot_date, late_capture FROM changes "
        "ORDER BY partition_date",
    )
    assert changes.is_empty() or changes.join(truth, on="partition_date").height == changes.height


def test_the_ledger_says_on_time_late_or_missing_for_every_day(history: History) -> None:
    ledger = sql(history.root, "SELECT partition_date, endpoint, status FROM captures")
    expected = {
        (day, endpoint.name): (
            "missing" if day in LOST_DAYS else "late" if SNAPSHOT[day] != day else "on_time"
        )
        for day in DAYS
        for endpoint in ENDPOINTS
    }
    found = {(row[0], row[1]): row[2] for row in ledger.iter_rows()}
    assert found == expected


def quarantined(root: Path, days: Iterator[dt.date] | tuple[dt.date, ...]) -> dict[str, set[int]]:
    """Per register, plots quarantined on any of ``days``: curated tables cannot see them."""
    return {
        table: {
            plot
            for day in days
            for plot in stored(root, "quarantine", table, day)["entity_smallholder_id"]
        }
        for table in REGISTERS
    }


def live_changes(
    emulator: EmulatorServer, table: str, before: dt.date, after: dt.date
) -> dict[str, set[int]]:
    """What ``changes`` must say between the registers the API served on two days: live plots
    (present, not deleted) that are new, removed, or whose record differs. Worked out from the
    records themselves, so it also holds when a late day makes ``before`` the later register."""

    def live(day: dt.date) -> dict[int, dict[str, Any]]:
        return {
            record["entity_smallholder_id"]: record
            for record in emulator.records(table, day)
            if not record.get("deleted")
        }

    old, new = live(before), live(after)
    return {
        "new": set(new) - set(old),
        "removed": set(old) - set(new),
        "changed": {plot for plot in set(old) & set(new) if old[plot] != new[plot]},
    }


@pytest.mark.parametrize("index", range(1, len(CAPTURED)), ids=lambda i: str(CAPTURED[i]))
def test_every_changes_partition_is_what_the_emulator_changed(history: History, index: int) -> None:
    day, previous = CAPTURED[index], CAPTURED[index - 1]
    found = stored(history.root, "curated", "changes", day)
    if found.height:
        assert found["compared_with"].unique().to_list() == [previous]
    hidden = quarantined(history.root, (previous, day))
    for table, scheme in REGISTERS.items():
        mine = found.filter(pl.col("scheme") == scheme)
        truth = live_changes(history.emulator, table, SNAPSHOT[previous], SNAPSHOT[day])
        for kind, plots in truth.items():
            rows = mine.filter(pl.col("change_type") == kind)
            assert set(rows["entity_smallholder_id"]) == plots - hidden[table], (day, scheme, kind)


def test_composed_changes_equal_comparing_the_two_ends(history: History) -> None:
    """Plots alive on the last day = alive on the first, plus every day's new, minus removed."""
    alive = {
        (row["scheme"], row["entity_smallholder_id"])
        for row in stored(history.root, "curated", "smallholders", CAPTURED[0])
        .filter(~pl.col("deleted"))
        .iter_rows(named=True)
    }
    for day in CAPTURED[1:]:
        found = stored(history.root, "curated", "changes", day)
        for kind, plots in found.group_by("change_type"):
            keys = set(plots.select("scheme", "entity_smallholder_id").iter_rows())
            if kind[0] == "new":
                alive |= keys
            elif kind[0] == "removed":
                alive -= keys
    last = stored(history.root, "curated", "smallholders", CAPTURED[-1]).filter(~pl.col("deleted"))
    assert alive == set(last.select("scheme", "entity_smallholder_id").iter_rows())


@pytest.mark.parametrize("day", CAPTURED, ids=str)
def test_smallholders_as_of_a_day_is_the_register_the_api_served(
    history: History, day: dt.date
) -> None:
    as_of = sql(
        history.root,
        f"SELECT scheme, entity_smallholder_id, cert_status FROM smallholders_as_of(DATE '{day}')",
    )
    hidden = quarantined(history.root, (day,))
    for table, scheme in REGISTERS.items():
        served = {
            record["entity_smallholder_id"]: record.get("cert_status")
            for record in history.emulator.records(table, SNAPSHOT[day])
            if record["entity_smallholder_id"] not in hidden[table]
        }
        mine = as_of.filter(pl.col("scheme") == scheme)
        assert dict(zip(mine["entity_smallholder_id"], mine["cert_status"], strict=True)) == (
            served
        ), (day, scheme)


def true_versions(
    emulator: EmulatorServer, hidden: Mapping[str, set[int]]
) -> dict[tuple[str, int], list[dt.date]]:
    """Per plot, the captured days on which its record differed from the previous captured
    day's (or first appeared): where its versions must start."""
    starts: dict[tuple[str, int], list[dt.date]] = {}
    for table, scheme in REGISTERS.items():
        before: dict[int, dict[str, Any]] = {}
        for day in CAPTURED:
            now = {
                record["entity_smallholder_id"]: record
                for record in emulator.records(table, SNAPSHOT[day])
            }
            for plot, record in now.items():
                if plot not in hidden[table] and before.get(plot) != record:
                    starts.setdefault((scheme, plot), []).append(day)
            before = now
    return starts


def test_plot_history_versions_are_each_plots_true_history(history: History) -> None:
    hidden = quarantined(history.root, CAPTURED)
    expected = true_versions(history.emulator, hidden)
    plot_history = stored(history.root, "curated", "plot_history", CAPTURED[-1])
    assert plot_history.equals(plot_history.sort(list(curated.KEY))), "sorted by plot"
    found: dict[tuple[str, int], list[dt.date]] = {}
    for row in (
        plot_history.filter(~pl.col("removed"))
        .sort(*curated.KEY, "valid_from")
        .iter_rows(named=True)
    ):
        key = (row["scheme"], row["entity_smallholder_id"])
        if row["entity_smallholder_id"] not in hidden[{v: k for k, v in REGISTERS.items()}[key[0]]]:
            found.setdefault(key, []).append(row["valid_from"])
    assert found == expected
    assert sum(len(days) > 1 for days in expected.values()) > 0, "some plot must have changed"
