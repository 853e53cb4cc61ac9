"""The whole daily graph on ``gs://``: fake-gcs-server on 127.0.0.1 is the bucket.

One module-scoped store materialises every asset the definitions have (``*``) for DAY1, moves
the API emulator to DAY2 and materialises again, then re-materialises DAY1 (a past day by now),
all into ``gs://<bucket>/<prefix>`` through ``MSPO_DATA_ROOT``. The tests then read the bucket
the way an analyst or a later run would: object listing, footers, DuckDB over gcsfs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

import mspo_pipeline
from mspo_pipeline import cli
from mspo_pipeline.defs.geo import MAPPED_KEYS
from mspo_pipeline.defs.warehouse import MANIFEST_KEY
from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import curated, layout, manifest, storage
from mspo_pipeline.lib.casting import to_typed
from mspo_pipeline.lib.warehouse import ANALYST_QUERIES, build_warehouse
from mspo_pipeline_tests import pipeline
from mspo_pipeline_tests.conftest import EMULATOR_DATE
from mspo_pipeline_tests.gcs import fake_gcs

BUCKET = "mspo-daily"
PREFIX = "prod/mspo"
ROOT = f"gs://{BUCKET}/{PREFIX}"
DAY1 = EMULATOR_DATE.isoformat()
DAY2 = (EMULATOR_DATE + dt.timedelta(days=1)).isoformat()

DOCUMENTED_OBJECTS = [
    f"{PREFIX}/raw/mspo/api/smallholders/spoc/list-public/20261120/list-public.parquet",
    f"{PREFIX}/raw/mspo/api/smallholders/osh/all-smallholder/20261120/all-smallholder.parquet",
    f"{PREFIX}/raw/mspo/api/smallholders/groupmanager/list-public/20261120/list-public.parquet",
    f"{PREFIX}/raw/mspo/api/spoc/zone-state/20261120/zone-state.parquet",
    f"{PREFIX}/raw/mspo/api/references/states/20261120/states.parquet",
    f"{PREFIX}/typed/mspo/spoc_smallholders/20261120/spoc_smallholders.parquet",
    f"{PREFIX}/validated/mspo/spoc_smallholders/20261120/spoc_smallholders.parquet",
    f"{PREFIX}/quarantine/mspo/osh_smallholders/20261121/osh_smallholders.parquet",
    f"{PREFIX}/curated/mspo/smallholders/20261121/smallholders.parquet",
    f"{PREFIX}/curated/mspo/changes/20261121/changes.parquet",
]
"""Names spelled out as the README and the API docs spell them, not derived from the code."""

CREDENTIAL_LIKE = re.compile(
    r"token|secret|passw|credential|private.?key|authori[sz]ation|bearer|ya29\.|"
    r"client.?email|-----BEGIN",
    re.IGNORECASE,
)
"""What an OAuth token, a service-account key or an auth header looks like in text."""


@dataclasses.dataclass(frozen=True)
class Store:
    runs: Mapping[str, dg.ExecuteInProcessResult]
    """Runs by name: ``day1``, ``day2``, ``day1_again``."""
    objects: Mapping[str, dict[str, Any]]
    """Object name (under the bucket) → GCS object info, after each run."""
    api_requests: Mapping[str, list[str]]
    """Request lines the MSPO API emulator received during each run."""
    api_base_url: str
    instance: dg.DagsterInstance
    """The one instance of the three runs (its event log is scanned for credentials)."""


def bucket_objects() -> dict[str, dict[str, Any]]:
    """Every object in the bucket (not only under the prefix), by name, fresh from the server."""
    fs = storage.root_upath(f"gs://{BUCKET}").fs
    fs.invalidate_cache()
    found: dict[str, dict[str, Any]] = fs.find(BUCKET, detail=True)
    return {name.removeprefix(f"{BUCKET}/"): info for name, info in found.items()}


def expected_objects(*partitions: str) -> set[str]:
    """One object per stored asset of the definitions and partition, where ``storage`` places
    it, the maps beside the mapped ones, and the store's manifest."""
    keys = [
        spec.key.path
        for spec in pipeline.definitions().resolve_all_asset_specs()
        if spec.key != MANIFEST_KEY
    ]
    files = {storage.relative_path(key, day) for key in keys for day in partitions}
    maps = {layout.picture_path(key.path, day) for key in MAPPED_KEYS for day in partitions}
    return {f"{PREFIX}/{path}" for path in files | maps} | {f"{PREFIX}/{manifest.MANIFEST}"}


def uri(layer: str, table: str, partition: str) -> str:
    return storage.storage_path(ROOT, [layer, table], partition)


def stored(layer: str, table: str, partition: str) -> pl.DataFrame:
    return storage.read_parquet(storage.as_upath(uri(layer, table, partition)))


@pytest.fixture(scope="module")
def store(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    instance = dg.DagsterInstance.ephemeral()
    runs: dict[str, dg.ExecuteInProcessResult] = {}
    objects: dict[str, dict[str, Any]] = {}
    requests: dict[str, list[str]] = {}
    day2 = dt.date.fromisoformat(DAY2)
    # (run name, partition, the day the API emulator serves): DAY1 again once it is over.
    plan = [("day1", DAY1, EMULATOR_DATE), ("day2", DAY2, day2), ("day1_again", DAY1, day2)]
    with (
        fake_gcs(tmp_path_factory.mktemp("gcs"), BUCKET),
        pytest.MonkeyPatch.context() as env,
    ):
        env.setenv("MSPO_API_BASE_URL", emulator.base_url)
        env.setenv("MSPO_DATA_ROOT", ROOT)
        env.setenv("MSPO_LATE_CAPTURE", "allow")
        try:
            for name, partition, served in plan:
                emulator.set_date(served)
                before = len(emulator.request_lines)
                runs[name] = pipeline.materialize(partition, instance=instance)
                requests[name] = emulator.request_lines[before:]
                objects[name] = bucket_objects()
        finally:
            emulator.set_date(EMULATOR_DATE)
        yield Store(runs, objects, requests, emulator.base_url, instance)


def test_every_layer_runs_on_gcs(store: Store) -> None:
    for name, run in store.runs.items():
        assert run.success, f"{name}: {pipeline.failure_messages(run)}"


def test_gcsfs_skips_the_zonal_bucket_probe(store: Store) -> None:
    """The emulator gets gcsfs's plain class: the default one stalls 60 s per open on it."""
    import gcsfs.core

    assert type(storage.root_upath(ROOT).fs) is gcsfs.core.GCSFileSystem
    assert type(manifest.filesystem_for(ROOT)) is gcsfs.core.GCSFileSystem


PRODUCTION_GCSFS = """
import os, fsspec, gcsfs
from mspo_pipeline.lib import manifest, storage
storage.root_upath("gs://calee_data/mspo")
manifest.filesystem_for("gs://calee_data/mspo")
print(os.environ.get("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"), gcsfs.GCSFileSystem.__name__,
      fsspec.get_filesystem_class("gs").__name__)
"""


def test_a_real_bucket_keeps_the_gcsfs_defaults() -> None:
    """Without an emulator nothing changes gcsfs: no variable set, its own class for gs://."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("STORAGE_", "GCSFS_"))}
    printed = subprocess.run(
        [sys.executable, "-c", PRODUCTION_GCSFS],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert printed == ["None", "ExtendedGcsFileSystem", "ExtendedGcsFileSystem"]


def test_object_names_are_the_documented_layout_and_nothing_else(store: Store) -> None:
    day1 = expected_objects(DAY1)
    both = expected_objects(DAY1, DAY2)
    assert set(DOCUMENTED_OBJECTS) <= set(store.objects["day2"])
    # Every asset of the graph, and nothing else: no temporary or stray object anywhere.
    assert set(store.objects["day1"]) == day1
    assert set(store.objects["day2"]) == both
    assert set(store.objects["day1_again"]) == both
    materialised = {
        storage.relative_path(key.split("/"), DAY1)
        for key in pipeline.materializations(store.runs["day1"])
        if key != MANIFEST_KEY.to_user_string()
    }
    maps = {f"{PREFIX}/{layout.picture_path(key.path, DAY1)}" for key in MAPPED_KEYS}
    assert {f"{PREFIX}/{path}" for path in materialised} | {
        f"{PREFIX}/{manifest.MANIFEST}"
    } | maps == day1


def test_parquet_objects_are_zstd_with_provenance_in_the_footer(store: Store) -> None:
    spoc = uri("raw", "spoc_smallholders", DAY1)
    provenance = storage.read_provenance(spoc)
    assert provenance["source_url"].startswith(f"{store.api_base_url}/spoc/get-spoc-list-public")
    assert provenance["snapshot_date"] == DAY1
    assert provenance["late_capture"] == "false"
    assert provenance["pipeline_version"] == mspo_pipeline.__version__
    assert provenance["partition"] == DAY1
    with storage.as_upath(spoc).open("rb") as handle:
        assert pq.read_metadata(handle).row_group(0).column(0).compression == "ZSTD"
    typed = storage.read_provenance(uri("typed", "spoc_smallholders", DAY2))
    assert typed["asset_key"] == "typed/spoc_smallholders"
    assert typed["partition"] == DAY2


def test_day2_layers_load_day2_raw_from_the_bucket(store: Store) -> None:
    raw1, raw2 = stored("raw", "spoc_smallholders", DAY1), stored("raw", "spoc_smallholders", DAY2)
    assert not raw1.equals(raw2), "the emulator's register should change from one day to the next"
    typed2 = stored("typed", "spoc_smallholders", DAY2)
    assert_frame_equal(typed2, to_typed(raw2, "spoc_smallholders").frame)
    validated = stored("validated", "spoc_smallholders", DAY2)
    quarantine = stored("quarantine", "spoc_smallholders", DAY2)
    assert validated.height + quarantine.height == raw2.height


def test_rematerialising_a_past_day_reuses_the_stored_raw_snapshot(store: Store) -> None:
    assert store.api_requests["day1"], "the first run should have called the API"
    assert store.api_requests["day2"], "the second day should have called the API"
    assert store.api_requests["day1_again"] == []
    first, again = store.objects["day1"], store.objects["day1_again"]
    raw = [name for name in first if name.startswith(f"{PREFIX}/raw/")]
    assert raw
    for name in raw:  # the very same objects: not rewritten, not re-uploaded
        assert again[name]["generation"] == first[name]["generation"], name
    reused = pipeline.materializations(store.runs["day1_again"])["raw/spoc_smallholders"]
    assert reused.metadata["reused_snapshot"].value is True
    # The layers above were recomputed from the stored raw objects, to the same content.
    typed = f"{PREFIX}/{storage.relative_path(['typed', 'spoc_smallholders'], DAY1)}"
    assert again[typed]["generation"] != first[typed]["generation"]
    assert_frame_equal(
        stored("typed", "spoc_smallholders", DAY1),
        to_typed(stored("raw", "spoc_smallholders", DAY1), "spoc_smallholders").frame,
    )


def test_changes_of_day2_compare_with_day1_from_the_bucket(store: Store) -> None:
    run = pipeline.materializations(store.runs["day2"])["curated/changes"]
    assert run.metadata["compared_with"].value == DAY1
    found = stored("curated", "changes", DAY2)
    assert found.height > 0, "the emulator changes plots from one day to the next"
    assert found.get_column("compared_with").unique().to_list() == [EMULATOR_DATE]
    with duckdb.connect() as conn:
        expected = curated.changes(
            conn,
            current=stored("curated", "smallholders", DAY2),
            previous=stored("curated", "smallholders", DAY1),
            current_partition=DAY2,
            previous_partition=DAY1,
        )
    assert_frame_equal(found, expected)


def test_export_and_map_read_the_bucket(store: Store, tmp_path: Path) -> None:
    """``mspo export geojson`` and ``mspo map`` over ``gs://``: the views, and the footer of
    the day's plots_hex (its k), read through gcsfs."""
    output = tmp_path / "plots.geojson"
    export = ["export", "geojson", "--data-root", ROOT, "--date", DAY2, "--output", str(output)]
    assert cli.main(export) == 0
    features = json.loads(output.read_text())["features"]
    assert len(features) == stored("curated", "plots_geo", DAY2).filter(~pl.col("deleted")).height
    assert (
        cli.main(["map", "--data-root", ROOT, "--date", DAY2, "--output-dir", str(tmp_path)]) == 0
    )
    for name in (f"mspo-plots-{DAY2}.png", f"mspo-hex-{DAY2}.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_warehouse_answers_sql_over_the_bucket(store: Store) -> None:
    with duckdb.connect() as conn:
        report = build_warehouse(conn, ROOT)
        assert {"raw_spoc_smallholders", "validated_spoc_smallholders", "states"} <= set(
            report.views
        )
        counts = conn.sql(
            "SELECT partition_date, count(*) FROM validated_spoc_smallholders "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        latest = conn.sql("SELECT DISTINCT partition_date FROM smallholders_latest").fetchall()
        changes = conn.sql("SELECT count(*) FROM changes GROUP BY partition_date ORDER BY ALL")
        changes_per_day = changes.fetchall()
        answers = {title: conn.sql(sql).fetchall() for title, sql in ANALYST_QUERIES}
        # plot_history reads the newest partition only: its file is found in the bucket too.
        as_of = conn.sql(f"SELECT count(*) FROM smallholders_as_of(DATE '{DAY1}')").fetchall()
    assert as_of == [(stored("curated", "smallholders", DAY1).height,)]
    assert counts == [
        (dt.date.fromisoformat(day), stored("validated", "spoc_smallholders", day).height)
        for day in (DAY1, DAY2)
    ]
    assert latest == [(dt.date.fromisoformat(DAY2),)]
    assert changes_per_day == [(stored("curated", "changes", DAY2).height,)]  # DAY1: none
    assert answers[ANALYST_QUERIES[0][0]], "no active certified hectares in the newest snapshot"


def test_no_credentials_in_footers_or_logs(store: Store) -> None:
    """Nothing credential-like in any object's key-value metadata or any run's event log.

    The scan covers what a leak would go through: every footer key and value (provenance is
    copied from output metadata, so a resource setting put there would land in the bucket) and
    every log line and event payload of the three runs.
    """
    footers: list[str] = []
    for name in (n for n in store.objects["day1_again"] if n.endswith(".parquet")):
        with storage.as_upath(f"gs://{BUCKET}/{name}").open("rb") as handle:
            footer = pq.read_metadata(handle).metadata or {}
        footers += [f"{name}: {k.decode()}={v.decode()}" for k, v in footer.items()]
    logs: list[str] = []
    for run in store.runs.values():
        for entry in store.instance.all_logs(run.run_id):
            logs.append(entry.message)
            if entry.dagster_event is not None:
                logs.append(repr(entry.dagster_event.event_specific_data))
    # The scan reads what it should: provenance in footers, the assets' own log lines.
    assert any("mspo.source_url=" in text for text in footers)
    assert any("kept and not re-fetched" in text for text in logs)
    leaks = [text[:300] for text in footers + logs if CREDENTIAL_LIKE.search(text)]
    assert leaks == []
