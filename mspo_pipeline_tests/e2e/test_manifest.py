"""The store's manifest, and the warehouse that opens from it in constant time.

Small stores written in the pipeline's layout; one test on the GCS emulator counts the requests
``mspo sql`` sends to open, at two sizes of history.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, NamedTuple
from urllib.parse import unquote

import dagster as dg
import duckdb
import gcsfs.core
import polars as pl
import pytest

from mspo_pipeline import sql
from mspo_pipeline.defs.warehouse import manifest_asset
from mspo_pipeline.lib import manifest, storage
from mspo_pipeline.lib.parquet_io import ParquetIOManager
from mspo_pipeline.lib.warehouse import build_warehouse
from mspo_pipeline_tests.gcs import fake_gcs

DAYS = [dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(4)]


def summary(day: dt.date, *, extra: bool = False) -> pl.DataFrame:
    frame = pl.DataFrame(
        {"state": ["Johor", "Sabah"], "plots": [day.day, 10 * day.day]},
        schema={"state": pl.String, "plots": pl.Int64},
    )
    return frame.with_columns(pl.lit("new").alias("note")) if extra else frame


def write(root: str, key: list[str], day: dt.date, frame: pl.DataFrame) -> str:
    path = storage.storage_path(root, key, day.isoformat())
    storage.write_parquet_atomic(frame, storage.as_upath(path), {})
    return path


SUMMARY = ["curated", "certification_summary"]


@pytest.fixture
def root(tmp_path: Path) -> str:
    for day in DAYS[:3]:
        write(str(tmp_path), SUMMARY, day, summary(day))
        write(str(tmp_path), ["validated", "states"], day, pl.DataFrame({"state_id": [1, 2]}))
    return str(tmp_path)


class StoredFile(NamedTuple):
    """A row of the stored manifest."""

    view: str
    path: str
    partition_date: dt.date
    bytes: int
    version: str
    schema: str


def stored(root: str) -> list[StoredFile]:
    rows = pl.read_parquet(manifest.manifest_path(root)).iter_rows(named=True)
    return [StoredFile(**row) for row in rows]


def refreshed(root: str, days: set[dt.date] | None = None) -> list[StoredFile]:
    manifest.update(root, days=days)
    return stored(root)


def test_a_full_refresh_lists_every_file_with_its_view_day_and_schema(root: str) -> None:
    files = refreshed(root)

    by_view = {(f.view, f.partition_date) for f in files}
    assert by_view == {
        *((view, day) for view in ("certification_summary", "states") for day in DAYS[:3]),
        *(("validated_states", day) for day in DAYS[:3]),  # a reference table has two names
    }
    summaries = [f for f in files if f.view == "certification_summary"]
    assert {f.schema for f in summaries} == {"state VARCHAR, plots BIGINT"}
    assert all(f.bytes == Path(f.path).stat().st_size for f in files)


def test_a_day_refresh_looks_at_that_day_only_and_keeps_the_rest(root: str) -> None:
    refreshed(root)
    write(root, SUMMARY, DAYS[3], summary(DAYS[3], extra=True))
    Path(storage.storage_path(root, SUMMARY, DAYS[0].isoformat())).unlink()  # not its day

    files = refreshed(root, days={DAYS[3]})

    summaries = {f.partition_date: f.schema for f in files if f.view == "certification_summary"}
    assert summaries == {
        DAYS[0]: "state VARCHAR, plots BIGINT",  # still listed: only a full refresh forgets it
        DAYS[1]: "state VARCHAR, plots BIGINT",
        DAYS[2]: "state VARCHAR, plots BIGINT",
        DAYS[3]: "state VARCHAR, plots BIGINT, note VARCHAR",
    }
    assert DAYS[0] not in {
        f.partition_date for f in refreshed(root) if f.view == "certification_summary"
    }


def test_a_rewritten_file_has_its_footer_read_again(root: str) -> None:
    refreshed(root)
    write(root, SUMMARY, DAYS[1], summary(DAYS[1], extra=True))

    files = refreshed(root)

    (rewritten,) = [
        f for f in files if f.view == "certification_summary" and f.partition_date == DAYS[1]
    ]
    assert rewritten.schema.endswith("note VARCHAR")


def test_views_union_files_of_different_schemas_by_name(root: str) -> None:
    write(root, SUMMARY, DAYS[3], summary(DAYS[3], extra=True))
    refreshed(root)

    with duckdb.connect() as conn:
        report = build_warehouse(conn, root)
        rows = conn.sql(
            "SELECT partition_date, sum(plots), max(note) FROM certification_summary "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()

    assert report.from_manifest
    assert rows == [(day, 11 * day.day, "new" if day == DAYS[3] else None) for day in DAYS]


def test_the_manifest_is_what_the_warehouse_sees_until_a_rescan(root: str) -> None:
    refreshed(root)
    write(root, SUMMARY, DAYS[3], summary(DAYS[3]))
    query = "SELECT count(DISTINCT partition_date) FROM certification_summary"

    conn, report = sql.connect(root)
    assert report.from_manifest and report.files == 9
    assert sql.query(conn, query).fetchall() == [(3,)]
    conn, report = sql.connect(root, rescan=True)
    assert not report.from_manifest and report.files == 10
    assert sql.query(conn, query).fetchall() == [(4,)]


def test_a_store_without_a_manifest_is_listed(root: str) -> None:
    with duckdb.connect() as conn:
        report = build_warehouse(conn, root)
        days = conn.sql("SELECT count(DISTINCT partition_date) FROM states").fetchall()
        tables = {name for (name,) in conn.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert not report.from_manifest
    assert days == [(3,)]
    assert tables == {"stored_files", "_mspo_file_groups"}  # the listing's scratch tables dropped
    assert not Path(manifest.manifest_path(root)).exists()  # reading never writes


def test_mspo_sql_creates_a_view_when_a_statement_first_names_it(root: str) -> None:
    refreshed(root)
    conn, report = sql.connect(root)
    created = {name for (name,) in conn.sql("SELECT view_name FROM duckdb_views()").fetchall()}
    assert "certification_summary" in report.views
    assert "certification_summary" not in created

    result = sql.query(conn, "SELECT 1; SELECT count(*) FROM certification_summary")

    assert result is not None and result.fetchall() == [(6,)]
    with pytest.raises(duckdb.CatalogException, match="no_such_table"):
        sql.query(conn, "SELECT * FROM no_such_table")


class CountingGCS(gcsfs.core.GCSFileSystem):
    """gcsfs (its plain class, as the pipeline uses against an emulator) that counts the HTTP
    requests it sends and names the objects they touch and the prefixes they list."""

    requests = 0
    objects: ClassVar[set[str]] = set()
    listed: ClassVar[set[str]] = set()

    async def _request(self, *args: object, **kwargs: object) -> object:
        type(self).requests += 1
        _method, path, *fields = args
        if path == "b/{}/o/{}":  # an object's metadata
            type(self).objects.add(str(fields[1]))
        elif path == "b/{}/o":  # a listing
            type(self).listed.add(str(kwargs.get("prefix", "")))
        elif isinstance(path, str) and "/o/" in path:  # an object's bytes
            type(self).objects.add(unquote(path.split("/o/", 1)[1].split("?", 1)[0]))
        return await super()._request(*args, **kwargs)

    @classmethod
    def reset(cls) -> None:
        cls.requests = 0
        cls.objects = set()
        cls.listed = set()


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fake_gcs(tmp_path_factory.mktemp("gcs"), "mspo-manifest") as url:
        yield url


def gcs_history(prefix: str, days: int) -> str:
    """A store of ``days`` days under ``gs://mspo-manifest/<prefix>-<days>``, with its manifest."""
    root = f"gs://mspo-manifest/{prefix}-{days}"
    for n in range(days):
        day = DAYS[0] + dt.timedelta(days=n)
        write(root, SUMMARY, day, summary(day))
        write(root, ["raw", "states"], day, pl.DataFrame({"stateId": [1, 2]}))
        write(root, ["validated", "states"], day, pl.DataFrame({"state_id": [1, 2]}))
    sql.rebuild_manifest(root)
    return root


def counting_gcs() -> CountingGCS:
    gcs = CountingGCS(
        token="anon", endpoint_url=os.environ["STORAGE_EMULATOR_HOST"], skip_instance_cache=True
    )
    CountingGCS.reset()
    return gcs


def test_a_days_refresh_over_gcs_looks_at_that_day_only(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``warehouse/manifest`` does at the end of every daily run: it looks up its day's
    files, reads and rewrites the manifest, and never lists the other days, so it sends as many
    requests after many days as after few. (A full refresh lists every table's folder.)"""
    counts, touched = {}, {}
    for days in (2, 12):
        root = gcs_history("refresh", days)
        folder = (DAYS[0] + dt.timedelta(days=days - 1)).strftime("%Y%m%d")
        gcs = counting_gcs()
        monkeypatch.setattr(manifest, "filesystem_for", lambda _root, gcs=gcs: gcs)
        manifest.update(root, days={DAYS[0] + dt.timedelta(days=days - 1)})
        counts[days] = CountingGCS.requests
        names = CountingGCS.objects | CountingGCS.listed
        home = root.removeprefix("gs://mspo-manifest/")
        touched[days] = {name.replace(home, "H").replace(folder, "DAY") for name in names}
        # A missing file's look lists its own folder (gcsfs asks whether it is one), no other.
        elsewhere = {p for p in CountingGCS.listed if f"/{folder}/" not in p}
        assert elsewhere <= {f"{home}/{manifest.MANIFEST}/"}, elsewhere
        CountingGCS.reset()
        manifest.update(root)
        assert any(f"/{folder}/" not in prefix for prefix in CountingGCS.listed)
    assert touched[2] == touched[12]
    assert counts[12] - counts[2] <= counts[2] // 5, counts


def test_opening_over_gcs_sends_as_many_requests_after_many_days_as_after_few(
    bucket: str,
) -> None:
    """Opening reads the manifest and one footer per view and schema, whatever the days kept.

    gcsfs looks an object up with one or two requests (it sometimes lists the folder as well,
    and fsspec's read-ahead sends a varying number of range requests, more so on a busy
    machine), so the objects touched are compared exactly and the request count may not grow
    by more than a fifth, less than what listing the store adds (the last assertion).
    """
    counts, rescanned, touched = {}, {}, {}
    for days in (2, 12):
        root = gcs_history("history", days)
        gcs = counting_gcs()
        with duckdb.connect() as conn:
            # One thread: DuckDB's threads look at a file's size a varying number of times.
            conn.execute("SET threads = 1")
            report = build_warehouse(conn, root, filesystem=gcs)  # every view created
            counts[days] = CountingGCS.requests
            touched[days] = {
                name.replace(root[len("gs://mspo-manifest/") :], "H")
                for name in CountingGCS.objects
            }
            total = conn.sql("SELECT count(*) FROM certification_summary").fetchall()
            CountingGCS.requests = 0
            build_warehouse(conn, root, filesystem=gcs, rescan=True)
            rescanned[days] = CountingGCS.requests
        assert report.from_manifest and report.files == 4 * days
        assert total == [(2 * days,)]
    assert touched[2] == touched[12]
    assert len(touched[2]) <= 1 + 2 * 4  # the manifest, at most two files per view
    margin = counts[2] // 5
    assert counts[12] - counts[2] <= margin, counts
    # Listing and every footer, what the manifest spares, grows by more than the margin: an
    # opening that listed the store would fail the assertion above.
    assert rescanned[12] - rescanned[2] > margin, (rescanned, counts)


def test_the_manifest_asset_lists_the_store_once_then_refreshes_its_day(root: str) -> None:
    resources = {"io_manager": ParquetIOManager(root=root)}

    def materialize(day: dt.date) -> dg.AssetMaterialization:
        result = dg.materialize(
            [manifest_asset], partition_key=day.isoformat(), resources=resources
        )
        (event,) = result.get_asset_materialization_events()
        return event.materialization

    first = materialize(DAYS[0])  # no manifest yet: every day of the store is listed
    write(root, SUMMARY, DAYS[3], summary(DAYS[3]))
    write(root, SUMMARY, dt.date(2026, 12, 25), summary(DAYS[3]))  # not this run's day
    fourth = materialize(DAYS[3])

    assert first.metadata["files"].value == 9
    assert first.metadata["days"].value == 3
    assert fourth.metadata["files"].value == 10
    assert fourth.metadata["files of this day"].value == 1
    assert fourth.metadata["schemas"].value == 3  # one per view
    assert first.metadata["files of this day"].value == 3
    assert max(f.partition_date for f in stored(root)) == DAYS[3]
