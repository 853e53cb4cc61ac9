"""The raw layer end to end: the real definitions, the emulator over HTTP, files on disk."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import storage
from mspo_pipeline.lib.catalog import ENDPOINTS
from mspo_pipeline.lib.ui_metadata import PREVIEW_ROWS
from mspo_pipeline_tests import pipeline

PINNED = dt.date(2026, 11, 20)
RAW = "group:raw"
CAPTURE_KEYS = ("snapshot_date", "lag_days", "late_capture", "captured_at", "source_url")
"""What every raw materialisation says about its capture, fresh or reused, with these types."""


def capture_facts(metadata: Mapping[str, dg.MetadataValue]) -> dict[str, object]:
    return {key: metadata[key].value for key in CAPTURE_KEYS}


DOCUMENTED_PATHS = {
    "states": "raw/mspo/api/references/states/20261120/states.parquet",
    "zone_state": "raw/mspo/api/spoc/zone-state/20261120/zone-state.parquet",
    "spoc_smallholders": "raw/mspo/api/smallholders/spoc/list-public/20261120/list-public.parquet",
    "osh_smallholders": (
        "raw/mspo/api/smallholders/osh/all-smallholder/20261120/all-smallholder.parquet"
    ),
    "gm_smallholders": (
        "raw/mspo/api/smallholders/groupmanager/list-public/20261120/list-public.parquet"
    ),
}


@pytest.fixture
def data_root(
    tmp_path: Path, emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A fresh data root, with the pipeline pointed at it and at the emulator."""
    root = tmp_path / "data"
    monkeypatch.setenv("MSPO_API_BASE_URL", emulator.base_url)
    monkeypatch.setenv("MSPO_DATA_ROOT", str(root))
    monkeypatch.setenv("MSPO_LATE_CAPTURE", "allow")
    yield root


def raw_file(root: Path, name: str, partition: str | dt.date) -> Path:
    return root / storage.relative_path(["raw", name], str(partition))


def test_every_endpoint_lands_at_its_documented_path(
    emulator: EmulatorServer, data_root: Path
) -> None:
    result = pipeline.materialize(PINNED, RAW)
    assert result.success
    written = pipeline.materializations(result)
    assert set(written) == {f"raw/{endpoint.name}" for endpoint in ENDPOINTS}
    for relative in DOCUMENTED_PATHS.values():
        assert (data_root / relative).is_file(), relative
    for endpoint in ENDPOINTS:
        frame = pl.read_parquet(raw_file(data_root, endpoint.name, PINNED))
        served = emulator.records(endpoint.name)
        assert frame.height == len(served), endpoint.name
        assert written[f"raw/{endpoint.name}"].metadata["dagster/row_count"].value == len(served)
        # The API's own field names, in its order, types untouched (areas stay text).
        assert frame.columns == list(served[0]), endpoint.name
    spoc = pl.read_parquet(raw_file(data_root, "spoc_smallholders", PINNED))
    assert spoc.schema["planted_area"] == pl.String
    assert spoc.schema["stateId"] == pl.Int64


def test_materialisation_records_what_the_ui_shows(data_root: Path) -> None:
    result = pipeline.materialize(PINNED, "raw/zones")
    metadata = pipeline.materializations(result)["raw/zones"].metadata
    assert metadata["source_url"].value.endswith("/api/spoc/zones?")
    assert metadata["late_capture"].value is False
    assert metadata["lag_days"].value == 0
    assert metadata["captured_at"].value.startswith("2026-11-")
    assert metadata["response_bytes"].value > 0
    assert metadata["parquet_bytes"].value > 0
    assert [c.name for c in metadata["dagster/column_schema"].value.columns] == ["zoneId", "zone"]
    assert "Zon Utara 1" in metadata["preview"].value
    provenance = storage.read_provenance(raw_file(data_root, "zones", PINNED))
    assert provenance["source_url"].endswith("/api/spoc/zones?")
    assert provenance["late_capture"] == "false"
    assert provenance["pipeline_version"]


def test_trailing_question_mark_is_on_the_wire(emulator: EmulatorServer, data_root: Path) -> None:
    before = len(emulator.request_lines)
    assert pipeline.materialize(PINNED, ["raw/zones", "raw/spocs", "raw/states"]).success
    lines = emulator.request_lines[before:]
    assert any(line.startswith("GET /api/spoc/zones? ") for line in lines), lines
    assert any(line.startswith("GET /api/spoc/spocs? ") for line in lines), lines
    assert any(line.startswith("GET /api/references/states ") for line in lines), lines


@pytest.mark.parametrize(
    ("fault", "params"),
    [
        ("server_error", {"status": 500}),
        ("server_error", {"status": 502}),
        ("server_error", {"status": 503}),
        ("rate_limited", {"retry_after": 1}),
        ("cut_connection", {"fraction": 0.5}),
    ],
)
def test_retryable_faults_are_recovered(
    emulator: EmulatorServer, data_root: Path, fault: str, params: dict[str, object]
) -> None:
    emulator.inject("spoc_smallholders", fault, times=2, **params)
    result = pipeline.materialize(PINNED, "raw/spoc_smallholders")
    assert result.success, pipeline.failure_messages(result)
    metadata = pipeline.materializations(result)["raw/spoc_smallholders"].metadata
    assert metadata["attempts"].value == 3
    frame = pl.read_parquet(raw_file(data_root, "spoc_smallholders", PINNED))
    assert frame.height == len(emulator.records("spoc_smallholders"))


@pytest.mark.parametrize(
    ("fault", "params", "expected"),
    [
        ("html", {}, "<html"),
        ("truncated_json", {}, "HTTP 200"),
        ("malformed_json", {}, "HTTP 200"),
        ("wrong_key", {"records_at": "data.data"}, "data.results"),
        ("empty", {}, "never empty"),
    ],
)
def test_bad_input_fails_clearly_and_keeps_the_stored_snapshot(
    emulator: EmulatorServer, data_root: Path, fault: str, params: dict[str, object], expected: str
) -> None:
    # Today's partition is the one a re-run fetches again (past days are never re-fetched).
    emulator.set_date(None)
    today = pipeline.today()
    assert pipeline.materialize(today, "raw/spoc_smallholders").success
    stored = raw_file(data_root, "spoc_smallholders", today)
    good = stored.read_bytes()

    emulator.inject("spoc_smallholders", fault, times=10, **params)
    result = pipeline.materialize(today, "raw/spoc_smallholders")

    assert not result.success
    message = pipeline.failure_messages(result)
    assert "spoc_smallholders" in message
    assert str(today) in message
    assert "/api/spoc/get-spoc-list-public" in message
    assert expected in message
    assert stored.read_bytes() == good
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]


def test_backfill_of_a_missed_day_is_a_late_capture(
    emulator: EmulatorServer, data_root: Path
) -> None:
    emulator.set_date(None)  # the API serves today, as the real one does
    missed = pipeline.today() - dt.timedelta(days=3)
    result = pipeline.materialize(missed, "raw/states")
    metadata = pipeline.materializations(result)["raw/states"].metadata
    assert metadata["late_capture"].value is True
    assert metadata["lag_days"].value == 3
    provenance = storage.read_provenance(raw_file(data_root, "states", missed))
    assert provenance["late_capture"] == "true"
    assert provenance["lag_days"] == "3"

    # Asked again, the stored late capture is kept, and says so with the same typed values.
    again = pipeline.materialize(missed, "raw/states")
    reused = pipeline.materializations(again)["raw/states"].metadata
    assert reused["reused_snapshot"].value is True
    assert capture_facts(reused) == capture_facts(metadata)
    assert reused["late_capture"].value is True and reused["lag_days"].value == 3


def test_refuse_setting_leaves_a_missed_day_empty(
    emulator: EmulatorServer, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSPO_LATE_CAPTURE", "refuse")
    emulator.set_date(None)
    missed = pipeline.today() - dt.timedelta(days=2)
    result = pipeline.materialize(missed, "raw/states")
    assert not result.success
    message = pipeline.failure_messages(result)
    assert "MSPO_LATE_CAPTURE=refuse" in message
    assert "references/states" in message
    assert not raw_file(data_root, "states", missed).exists()


def test_on_time_snapshot_is_not_overwritten_by_a_backfill(
    emulator: EmulatorServer, data_root: Path
) -> None:
    assert pipeline.materialize(PINNED, "raw/spoc_smallholders").success
    stored = raw_file(data_root, "spoc_smallholders", PINNED)
    on_time = stored.read_bytes()

    emulator.set_date(PINNED + dt.timedelta(days=2))  # the register has moved on
    before = len(emulator.request_lines)
    result = pipeline.materialize(PINNED, "raw/spoc_smallholders")

    assert result.success
    metadata = pipeline.materializations(result)["raw/spoc_smallholders"].metadata
    assert metadata["reused_snapshot"].value is True
    facts = capture_facts(metadata)  # typed as a fresh capture's, so the UI can plot them
    assert facts["late_capture"] is False
    assert facts["lag_days"] == 0
    assert facts["snapshot_date"] == PINNED.isoformat()
    assert str(facts["captured_at"]).startswith("2026-11-")  # UTC: maybe the day before
    assert str(facts["source_url"]).endswith("/api/spoc/get-spoc-list-public?page=1&pageSize=10")
    assert stored.read_bytes() == on_time
    assert not any("get-spoc-list-public" in line for line in emulator.request_lines[before:])
    # The UI shows the stored day whole (its rows from the footer), though only the preview's
    # rows were read.
    kept = pl.read_parquet(stored)
    assert metadata["dagster/row_count"].value == kept.height > PREVIEW_ROWS
    assert metadata["dagster/column_schema"].value.columns[0].name == kept.columns[0]
    assert str(kept.row(0)[0]) in metadata["preview"].value


def test_an_unknown_new_field_is_kept(emulator: EmulatorServer, data_root: Path) -> None:
    emulator.inject("osh_smallholders", "extra_field", field="plot_polygon", value="POLYGON EMPTY")
    result = pipeline.materialize(PINNED, ["raw/osh_smallholders", "typed/osh_smallholders"])
    frame = pl.read_parquet(raw_file(data_root, "osh_smallholders", PINNED))
    assert frame["plot_polygon"].unique().to_list() == ["POLYGON EMPTY"]
    (drift,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "schema_drift"]
    assert not drift.passed
    assert drift.metadata["new_fields"].value == "plot_polygon"


def test_dagster_cli_materialises_a_partition(emulator: EmulatorServer, data_root: Path) -> None:
    """The same command a user (or a cron job) types: `dagster asset materialize`."""
    dagster = Path(sys.executable).parent / "dagster"
    home = data_root.parent / "dagster_home"
    home.mkdir()
    completed = subprocess.run(
        [
            str(dagster),
            "asset",
            "materialize",
            "-m",
            "mspo_pipeline.definitions",
            "--select",
            "raw/zones,raw/spoc_smallholders",
            "--partition",
            str(PINNED),
        ],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    spoc = pl.read_parquet(raw_file(data_root, "spoc_smallholders", PINNED))
    assert spoc.height == len(emulator.records("spoc_smallholders"))
    assert raw_file(data_root, "zones", PINNED).is_file()


def test_raw_columns_carry_the_docs_descriptions(data_root: Path) -> None:
    result = pipeline.materialize(PINNED, "raw/spoc_smallholders")
    schema = pipeline.materializations(result)["raw/spoc_smallholders"].metadata
    columns = {c.name: c for c in schema["dagster/column_schema"].value.columns}
    assert columns["stateId"].type == "Int64"
    assert "state" in (columns["stateId"].description or "").lower()
    assert columns["mpob_no"].description
