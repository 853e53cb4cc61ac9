"""The Parquet IO manager through ``dg.materialize`` on a local root, and the layout functions."""

# No "from __future__ import annotations": Dagster inspects the asset annotations at runtime.

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
import pytest

import mspo_pipeline
from mspo_pipeline.lib import catalog, ledger
from mspo_pipeline.lib.parquet_io import (
    COLUMNS,
    ParquetIOManager,
    provenance_from_output_metadata,
)
from mspo_pipeline.lib.provenance import StoredFrame
from mspo_pipeline.lib.schemas import curated_table
from mspo_pipeline.lib.storage import (
    REUSE_EXISTING,
    as_upath,
    partition_folder,
    read_provenance,
    relative_path,
    storage_path,
)

DAILY = dg.DailyPartitionsDefinition(start_date="2026-11-20", timezone="Asia/Kuala_Lumpur")
SOURCE_URL = "https://api.example/api/spoc/zone-state?"
ZONE_STATE = pl.DataFrame(
    {"zoneId": [1, 1, 2], "stateId": [8, 2, 9], "state": ["Perlis", "Kedah", "Pulau Pinang"]}
)


def raw_asset(value: Any, metadata: dict[str, Any]) -> dg.AssetsDefinition:
    """A raw asset that returns ``value`` with runtime ``metadata``, like the real raw assets."""

    @dg.asset(key=["raw", "zone_state"], partitions_def=DAILY)
    def zone_state(context: dg.AssetExecutionContext) -> dg.Output[Any]:
        return dg.Output(value, metadata={**metadata, "captured_for": context.partition_key})

    return zone_state


@dg.asset(
    key=["typed", "zone_state"],
    partitions_def=DAILY,
    ins={"raw": dg.AssetIn(["raw", "zone_state"])},
)
def typed_zone_state(raw: pl.DataFrame) -> pl.DataFrame:
    return raw.rename({"zoneId": "zone_id", "stateId": "state_id"})


@dg.asset(
    key=["validated", "zone_state_days"],
    partitions_def=DAILY,
    ins={
        "history": dg.AssetIn(
            ["raw", "zone_state"],
            partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1),
        )
    },
)
def zone_state_days(history: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return pl.DataFrame(
        {"partition": sorted(history), "rows": [history[k].height for k in sorted(history)]}
    )


def materialize(
    root: str, assets: list[Any], partition: str, *, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        partition_key=partition,
        resources={"io_manager": ParquetIOManager(root=root)},
        raise_on_error=raise_on_error,
    )


def materialization(result: dg.ExecuteInProcessResult, key: list[str]) -> dg.AssetMaterialization:
    (event,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(key)
    ]
    return event


def test_one_partition_is_read_and_written_without_log_lines_of_its_own(tmp_path: Path) -> None:
    """The base class logs each load and write; every line is one more event the instance
    stores (~10 ms on SQLite), and the location is in the metadata already, shown once."""
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [raw_asset(ZONE_STATE, PROVENANCE), typed_zone_state],
            partition_key="2026-11-22",
            resources={"io_manager": ParquetIOManager(root=str(tmp_path))},
            instance=instance,
        )
        logs = [e.user_message for e in instance.all_logs(result.run_id) if not e.is_dagster_event]
    assert result.success
    assert [m for m in logs if "Loading" in m or "Writing" in m] == []
    for key in (["raw", "zone_state"], ["typed", "zone_state"]):
        metadata = materialization(result, key).metadata
        assert "path" not in metadata
        assert metadata["uri"].value == storage_path(str(tmp_path), key, "2026-11-22")


def test_an_input_that_names_columns_reads_only_those_it_has(tmp_path: Path) -> None:
    """``plots_geo`` reads three columns of a raw register, not the day's whole file; a column
    the file lacks (a field the API dropped that day) is left to the asset to fill."""

    @dg.asset(
        key=["typed", "states_only"],
        partitions_def=DAILY,
        ins={
            "raw": dg.AssetIn(
                ["raw", "zone_state"], metadata={COLUMNS: ["state", "stateId", "dropped"]}
            )
        },
    )
    def states_only(raw: pl.DataFrame) -> pl.DataFrame:
        return raw

    result = materialize(
        str(tmp_path), [raw_asset(ZONE_STATE, PROVENANCE), states_only], "2026-11-22"
    )
    assert result.success
    assert result.output_for_node("typed__states_only").columns == ["state", "stateId"]


def test_a_stored_frame_input_that_names_columns_keeps_its_provenance(tmp_path: Path) -> None:
    """``plots_hex`` reads eight columns of ``plots_geo`` and still names the file it came from."""

    @dg.asset(
        key=["typed", "states_only"],
        partitions_def=DAILY,
        ins={"raw": dg.AssetIn(["raw", "zone_state"], metadata={COLUMNS: ["state", "dropped"]})},
    )
    def states_only(raw: StoredFrame) -> pl.DataFrame:
        assert raw.provenance["source_url"] == SOURCE_URL
        assert raw.sha256 is not None  # a raw input names its exact file
        return raw.frame

    result = materialize(
        str(tmp_path), [raw_asset(ZONE_STATE, PROVENANCE), states_only], "2026-11-22"
    )
    assert result.success
    assert result.output_for_node("typed__states_only").columns == ["state"]


PROVENANCE = {
    "source_url": SOURCE_URL,
    "captured_at": "2026-11-22T06:00:03+08:00",
    "late_capture": False,
}


def round_trip(root: str) -> dict[str, str]:
    """Raw → typed → a two-partition load, on ``root``; returns the raw file's provenance."""
    for day in ("2026-11-21", "2026-11-22"):
        materialize(root, [raw_asset(ZONE_STATE, PROVENANCE)], day)
    result = materialize(
        root,
        [raw_asset(ZONE_STATE, PROVENANCE), typed_zone_state, zone_state_days],
        "2026-11-22",
        raise_on_error=True,
    )
    raw_event = materialization(result, ["raw", "zone_state"])
    raw_uri = storage_path(root, ["raw", "zone_state"], "2026-11-22")
    assert raw_event.metadata["uri"].value == raw_uri
    assert raw_event.metadata["dagster/row_count"].value == 3
    stored = as_upath(raw_uri)
    assert raw_event.metadata["parquet_bytes"].value == stored.fs.size(stored.path)
    assert raw_event.metadata["source_url"].value == SOURCE_URL

    typed = result.output_for_node("typed__zone_state")
    assert typed.columns == ["zone_id", "state_id", "state"]
    assert typed.schema["zone_id"] == pl.Int64
    history = result.output_for_node("validated__zone_state_days")
    assert history.to_dicts() == [
        {"partition": "2026-11-21", "rows": 3},
        {"partition": "2026-11-22", "rows": 3},
    ]
    return read_provenance(raw_uri)


def test_local_round_trip_layout_zstd_and_provenance(tmp_path: Path) -> None:
    root = str(tmp_path / "data")
    provenance = round_trip(root)

    raw_file = tmp_path / "data/raw/mspo/api/spoc/zone-state/20261122/zone-state.parquet"
    typed_file = tmp_path / "data/typed/mspo/zone_state/20261122/zone_state.parquet"
    days_file = tmp_path / "data/validated/mspo/zone_state_days/20261122/zone_state_days.parquet"
    stored = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert stored == sorted(
        [
            str(raw_file.relative_to(tmp_path)),
            "data/raw/mspo/api/spoc/zone-state/20261121/zone-state.parquet",
            str(typed_file.relative_to(tmp_path)),
            str(days_file.relative_to(tmp_path)),
        ]
    )
    assert pl.read_parquet(raw_file).equals(ZONE_STATE)
    footer = pq.read_metadata(raw_file)
    assert footer.row_group(0).column(0).compression == "ZSTD"
    assert provenance["source_url"] == SOURCE_URL
    assert provenance["captured_at"] == "2026-11-22T06:00:03+08:00"
    assert provenance["late_capture"] == "false"
    assert provenance["captured_for"] == "2026-11-22"
    assert provenance["partition"] == "2026-11-22"
    assert provenance["asset_key"] == "raw/zone_state"
    assert provenance["pipeline_version"] == mspo_pipeline.__version__
    assert read_provenance(typed_file)["partition"] == "2026-11-22"


def curated_captures(frame: pl.DataFrame) -> dg.AssetsDefinition:
    @dg.asset(key=["curated", ledger.TABLE], partitions_def=DAILY)
    def captures() -> pl.DataFrame:
        return frame

    return captures


def test_a_curated_frame_is_written_in_its_declared_column_order(tmp_path: Path) -> None:
    declared = curated_table(ledger.TABLE).schema
    shuffled = ledger.frame([]).select(reversed(declared.names()))
    materialize(str(tmp_path), [curated_captures(shuffled)], "2026-11-22")
    written = storage_path(str(tmp_path), ["curated", ledger.TABLE], "2026-11-22")
    assert pl.read_parquet_schema(written) == declared


def test_a_curated_frame_unlike_its_declaration_fails_and_keeps_the_stored_file(
    tmp_path: Path,
) -> None:
    root = str(tmp_path)
    good = ledger.frame([])
    materialize(root, [curated_captures(good)], "2026-11-22")
    target = Path(storage_path(root, ["curated", ledger.TABLE], "2026-11-22"))
    before = target.read_bytes()

    bad = (
        good.with_columns(pl.col("rows").cast(pl.Int32))
        .drop("sha256")
        .with_columns(surprise=pl.lit(1))
    )
    result = materialize(root, [curated_captures(bad)], "2026-11-22", raise_on_error=False)

    assert not result.success
    failure = result.failure_data_for_node("curated__captures")
    assert failure is not None
    message = str(failure.error)
    for part in (
        "curated/captures partition 2026-11-22",
        "missing column(s) sha256",
        "undeclared column(s) surprise",
        "rows is Int32, declared Int64",
        "nothing was written",
    ):
        assert part in message
    assert target.read_bytes() == before
    assert list(target.parent.iterdir()) == [target]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    root = str(tmp_path)
    materialize(root, [raw_asset(ZONE_STATE, PROVENANCE)], "2026-11-22")
    target = Path(storage_path(root, ["raw", "zone_state"], "2026-11-22"))
    before = target.read_bytes()

    unwritable = pl.DataFrame({"thing": pl.Series([object()], dtype=pl.Object)})
    result = materialize(root, [raw_asset(unwritable, {})], "2026-11-22", raise_on_error=False)

    assert not result.success
    assert target.read_bytes() == before
    assert list(target.parent.iterdir()) == [target]


def test_reuse_keeps_the_stored_file_untouched(tmp_path: Path) -> None:
    root = str(tmp_path)
    materialize(root, [raw_asset(ZONE_STATE, PROVENANCE)], "2026-11-22")
    target = Path(storage_path(root, ["raw", "zone_state"], "2026-11-22"))
    before = (target.read_bytes(), target.stat().st_mtime_ns)

    later = {"source_url": SOURCE_URL, "late_capture": True, REUSE_EXISTING: True}
    result = materialize(root, [raw_asset(None, later)], "2026-11-22")

    assert (target.read_bytes(), target.stat().st_mtime_ns) == before
    assert read_provenance(target)["late_capture"] == "false"
    event = materialization(result, ["raw", "zone_state"])
    assert event.metadata["dagster/row_count"].value == 3
    assert event.metadata["uri"].value == str(target)


def test_reuse_without_a_stored_file_fails_with_the_path(tmp_path: Path) -> None:
    result = materialize(
        str(tmp_path), [raw_asset(None, {REUSE_EXISTING: True})], "2026-11-22", raise_on_error=False
    )
    assert not result.success
    failure = result.failure_data_for_node("raw__zone_state")
    assert failure is not None
    assert "zone-state/20261122/zone-state.parquet" in str(failure.error)


def test_unpartitioned_assets_are_refused(tmp_path: Path) -> None:
    @dg.asset(key=["typed", "loose"])
    def loose() -> pl.DataFrame:
        return ZONE_STATE

    result = dg.materialize(
        [loose],
        resources={"io_manager": ParquetIOManager(root=str(tmp_path))},
        raise_on_error=False,
    )
    assert not result.success
    assert "not partitioned" in str(result.failure_data_for_node("typed__loose").error)


def test_read_provenance_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_provenance(tmp_path / "nothing.parquet")


def test_provenance_keeps_only_the_assets_scalar_metadata() -> None:
    metadata = {
        "source_url": dg.MetadataValue.url(SOURCE_URL),
        "lag_days": dg.MetadataValue.int(2),
        "late_capture": dg.MetadataValue.bool(True),
        "dagster/row_count": dg.MetadataValue.int(3),
        REUSE_EXISTING: dg.MetadataValue.bool(False),
        "preview": dg.MetadataValue.md("| a |"),
        "schema": dg.MetadataValue.json({"a": 1}),
    }
    assert provenance_from_output_metadata(metadata) == {
        "source_url": SOURCE_URL,
        "lag_days": 2,
        "late_capture": True,
        "preview": "| a |",
    }


@pytest.mark.parametrize("endpoint", catalog.ENDPOINTS, ids=lambda e: e.name)
def test_raw_paths_follow_the_catalogue(endpoint: catalog.Endpoint) -> None:
    assert relative_path(["raw", endpoint.name], "2026-11-22") == endpoint.raw_key("20261122")


def test_paths_match_the_design() -> None:
    assert relative_path(["raw", "spoc_smallholders"], "2026-11-22") == (
        "raw/mspo/api/smallholders/spoc/list-public/20261122/list-public.parquet"
    )
    assert relative_path(["raw", "zone_state"], "2026-11-22") == (
        "raw/mspo/api/spoc/zone-state/20261122/zone-state.parquet"
    )
    assert relative_path(["raw", "states"], "2026-01-02") == (
        "raw/mspo/api/references/states/20260102/states.parquet"
    )
    assert storage_path(
        "gs://bucket/prefix/", ["quarantine", "osh_smallholders"], "2026-11-22"
    ) == ("gs://bucket/prefix/quarantine/mspo/osh_smallholders/20261122/osh_smallholders.parquet")
    assert partition_folder("2026-11-22") == "20261122"


@pytest.mark.parametrize(
    ("key", "partition", "message"),
    [
        (["raw", "nope"], "2026-11-22", "no MSPO endpoint named 'nope'"),
        (["typed", "x"], "20261122", "not a day"),
        (["typed", "x"], "2026-13-01", "'2026-13-01' is not a day"),
        (["x"], "2026-11-22", "not \\[<layer>, <table>\\]"),
    ],
)
def test_bad_keys_are_named(key: list[str], partition: str, message: str) -> None:
    with pytest.raises((KeyError, ValueError), match=message):
        relative_path(key, partition)
