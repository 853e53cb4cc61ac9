"""The Parquet IO manager on ``gs://``, against fake-gcs-server on 127.0.0.1."""

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

import mspo_pipeline
from mspo_pipeline.lib.storage import REUSE_EXISTING, read_provenance, root_upath
from mspo_pipeline_tests.e2e.test_parquet_io import (
    PROVENANCE,
    SOURCE_URL,
    ZONE_STATE,
    materialization,
    materialize,
    raw_asset,
    round_trip,
)
from mspo_pipeline_tests.gcs import fake_gcs

BUCKET = "mspo-test"


@pytest.fixture(scope="module")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fake_gcs(tmp_path_factory.mktemp("gcs"), BUCKET) as url:
        yield url


def objects(prefix: str) -> list[str]:
    fs = root_upath(f"gs://{BUCKET}").fs
    fs.invalidate_cache()
    return sorted(fs.find(f"{BUCKET}/{prefix}"))


def test_gcs_round_trip_object_names_and_provenance(gcs_emulator: str) -> None:
    root = f"gs://{BUCKET}/run1"
    provenance = round_trip(root)

    assert objects("run1") == [
        f"{BUCKET}/run1/raw/mspo/api/spoc/zone-state/20261121/zone-state.parquet",
        f"{BUCKET}/run1/raw/mspo/api/spoc/zone-state/20261122/zone-state.parquet",
        f"{BUCKET}/run1/typed/mspo/zone_state/20261122/zone_state.parquet",
        f"{BUCKET}/run1/validated/mspo/zone_state_days/20261122/zone_state_days.parquet",
    ]
    assert provenance["source_url"] == SOURCE_URL
    assert provenance["pipeline_version"] == mspo_pipeline.__version__
    raw = root_upath(f"{root}/raw/mspo/api/spoc/zone-state/20261122/zone-state.parquet")
    with raw.open("rb") as handle:
        assert pq.read_metadata(handle).row_group(0).column(0).compression == "ZSTD"


def test_gcs_bucket_root_reuse_and_failed_write(gcs_emulator: str, tmp_path: Path) -> None:
    root = f"gs://{BUCKET}"
    materialize(root, [raw_asset(ZONE_STATE, PROVENANCE)], "2026-11-22")
    uri = f"{root}/raw/mspo/api/spoc/zone-state/20261122/zone-state.parquet"
    before = root_upath(uri).read_bytes()

    later = {"late_capture": True, REUSE_EXISTING: True}
    reused = materialize(root, [raw_asset(None, later)], "2026-11-22")
    assert materialization(reused, ["raw", "zone_state"]).metadata["dagster/row_count"].value == 3

    unwritable = pl.DataFrame({"thing": pl.Series([object()], dtype=pl.Object)})
    failed = materialize(root, [raw_asset(unwritable, {})], "2026-11-22", raise_on_error=False)
    assert not failed.success

    assert root_upath(uri).read_bytes() == before
    assert read_provenance(uri)["late_capture"] == "false"
    assert objects("raw") == [uri.removeprefix("gs://")]
