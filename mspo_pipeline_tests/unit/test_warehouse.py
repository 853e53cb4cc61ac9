"""The analysts' warehouse over Parquet files written in the documented layout.

Three snapshots (2026-11-01, 2026-11-10, 2026-11-21; the days between are missing) go through
the curated functions and are written where the pipeline would write them.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from mspo_pipeline.lib import curated
from mspo_pipeline.lib.catalog import endpoint
from mspo_pipeline.lib.warehouse import ANALYST_QUERIES, build_warehouse
from mspo_pipeline_tests.unit.test_curated import (
    GM_DAY1,
    OSH_DAY1,
    OSH_DAY2,
    REFERENCES,
    SPOC_DAY1,
    SPOC_DAY2,
    build_smallholders,
    edit_rows,
    frames,
)

SPOC_DAY0 = edit_rows(SPOC_DAY1, {1004: {"cert_status": "ACTIVE"}})
SNAPSHOTS = {
    "2026-11-01": frames(SPOC_DAY0, OSH_DAY1, GM_DAY1),
    "2026-11-10": frames(SPOC_DAY1, OSH_DAY1, GM_DAY1),
    "2026-11-21": frames(SPOC_DAY2, OSH_DAY2, GM_DAY1),
}
"""Plot 1004 expires on 2026-11-10 (11 days before the newest snapshot), plot 1001 on 11-21."""
REGISTERS = {"spoc": "spoc_smallholders", "osh": "osh_smallholders", "gm": "gm_smallholders"}


def _folder(partition: str) -> str:
    return partition.replace("-", "")


def write_table(root: Path, layer: str, table: str, partition: str, frame: pl.DataFrame) -> None:
    path = root / layer / "mspo" / table / _folder(partition) / f"{table}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path, compression="zstd")


def write_data_root(root: Path) -> dict[str, pl.DataFrame]:
    """Validated, curated and one raw table for every snapshot; the curated smallholders back."""
    written: dict[str, pl.DataFrame] = {}
    previous: str | None = None
    with duckdb.connect() as conn:
        for partition, registers in SNAPSHOTS.items():
            for name, frame in REFERENCES.items():
                write_table(root, "validated", name, partition, frame)
            for short, table in REGISTERS.items():
                write_table(root, "validated", table, partition, registers[short])
            smallholders = build_smallholders(conn, registers, partition)
            summary = curated.certification_summary(conn, smallholders)
            changes = curated.changes(
                conn,
                current=smallholders,
                previous=written.get(previous) if previous else None,
                current_partition=partition,
                previous_partition=previous,
            )
            for table, frame in (
                ("smallholders", smallholders),
                ("certification_summary", summary),
                ("changes", changes),
            ):
                write_table(root, "curated", table, partition, frame)
            raw = root / endpoint("states").raw_key(_folder(partition))
            raw.parent.mkdir(parents=True, exist_ok=True)
            REFERENCES["states"].rename({"state_id": "stateId"}).write_parquet(raw)
            written[partition] = smallholders
            previous = partition
    # A half-written file in a folder that is not a partition must not show up.
    stray = root / "curated" / "mspo" / "smallholders" / "tmp-upload" / "smallholders.parquet"
    stray.parent.mkdir(parents=True)
    written["2026-11-21"].write_parquet(stray)
    return written


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pl.DataFrame]]:
    root = tmp_path_factory.mktemp("data")
    return root, write_data_root(root)


@pytest.fixture
def warehouse(data_root: tuple[Path, dict[str, pl.DataFrame]]) -> Any:
    with duckdb.connect() as conn:
        build_warehouse(conn, str(data_root[0]))
        yield conn


def _query(conn: duckdb.DuckDBPyConnection, title_start: str) -> pl.DataFrame:
    (sql,) = [sql for title, sql in ANALYST_QUERIES if title.startswith(title_start)]
    return conn.sql(sql).pl()


def test_build_reports_created_and_skipped_views(
    data_root: tuple[Path, dict[str, pl.DataFrame]],
) -> None:
    with duckdb.connect() as conn:
        report = build_warehouse(conn, str(data_root[0]))

    assert {
        "raw_states",
        "states",
        "zones",
        "zone_state",
        "spocs",
        "daerah",
        "validated_spoc_smallholders",
        "validated_osh_smallholders",
        "validated_gm_smallholders",
        "smallholders",
        "smallholders_latest",
        "certification_summary",
        "changes",
    } <= set(report.views)
    skipped = {spec.name for spec in report.skipped}
    assert {"typed_spoc_smallholders", "quarantine_states", "raw_zones", "geography"} <= skipped
    assert not skipped & set(report.views)


def test_an_empty_root_skips_every_view(tmp_path: Path) -> None:
    with duckdb.connect() as conn:
        report = build_warehouse(conn, str(tmp_path))
    assert report.views == ()
    assert "smallholders" in {spec.name for spec in report.skipped}


def test_views_carry_every_partition_from_the_folder_name(warehouse: Any) -> None:
    dates = warehouse.sql("SELECT DISTINCT partition_date FROM smallholders ORDER BY 1").fetchall()
    assert [d for (d,) in dates] == [
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 10),
        dt.date(2026, 11, 21),
    ]
    raw = warehouse.sql("SELECT DISTINCT partition_date, stateId FROM raw_states").fetchall()
    assert len(raw) == 3 * 16
    latest = warehouse.sql("SELECT DISTINCT partition_date FROM smallholders_latest").fetchall()
    assert latest == [(dt.date(2026, 11, 21),)]
    compared = warehouse.sql(
        "SELECT DISTINCT partition_date, compared_with FROM changes ORDER BY 1"
    ).fetchall()
    assert compared == [
        (dt.date(2026, 11, 10), dt.date(2026, 11, 1)),
        (dt.date(2026, 11, 21), dt.date(2026, 11, 10)),
    ]


def test_smallholders_view_returns_what_was_written(
    warehouse: Any, data_root: tuple[Path, dict[str, pl.DataFrame]]
) -> None:
    warehouse.execute("SET TimeZone = 'UTC'")  # the files hold UTC; DuckDB shows local time
    latest = warehouse.sql("SELECT * FROM smallholders_latest ORDER BY ALL").pl()
    assert_frame_equal(latest, data_root[1]["2026-11-21"].sort(pl.all()))


def test_active_certified_hectares_by_state(
    warehouse: Any, data_root: tuple[Path, dict[str, pl.DataFrame]]
) -> None:
    expected = (
        data_root[1]["2026-11-21"]
        .filter((pl.col("cert_status") == "ACTIVE") & ~pl.col("deleted"))
        .group_by("state")
        .agg(pl.len().alias("smallholders"), pl.col("certified_area").sum().alias("certified_ha"))
        .sort("state")
    )
    result = _query(warehouse, "Active certified hectares by state")
    got = result.select("state", "smallholders", "certified_ha").sort("state")
    assert_frame_equal(got, expected, check_dtypes=False)


def test_smallholders_and_hectares_by_zone(
    warehouse: Any, data_root: tuple[Path, dict[str, pl.DataFrame]]
) -> None:
    live = data_root[1]["2026-11-21"].filter(~pl.col("deleted") & (pl.col("scheme") != "OSH"))
    result = _query(warehouse, "Smallholders and hectares by zone")

    assert result["smallholders"].sum() == live.height
    sarawak = result.filter(pl.col("zone") == "Zon Sarawak").select("state", "smallholders")
    assert sarawak.rows() == [("Kelantan", 1)]  # the docs' sample record, by its zone id


def test_osh_hectares_by_organisation(warehouse: Any) -> None:
    result = _query(warehouse, "OSH hectares by organisation")
    felda = [r for r in OSH_DAY2 if r["entity_name"] == "FELDA LOK HENG BARAT"]

    assert result.select("organisation", "state", "smallholders").rows() == [
        ("FELDA LOK HENG BARAT", "Johor", len(felda))
    ]
    assert result["certified_ha"].item() == pytest.approx(sum(r["certified_area"] for r in felda))


def test_certificates_expired_in_the_last_7_days(warehouse: Any) -> None:
    result = _query(warehouse, "Plots whose certificate expired")

    assert result.select(
        "expired_in_snapshot", "scheme", "entity_smallholder_id", "previous_status", "state"
    ).rows() == [(dt.date(2026, 11, 21), "SPOC", 1001, "ACTIVE", "Terengganu")]
    older = warehouse.sql(
        "SELECT entity_smallholder_id FROM changes WHERE new_value = 'EXPIRED'"
        " AND partition_date = DATE '2026-11-10'"
    ).fetchall()
    assert older == [(1004,)]  # expired too, but 11 days before the newest snapshot


def test_certified_plots_per_state_day_by_day(
    warehouse: Any, data_root: tuple[Path, dict[str, pl.DataFrame]]
) -> None:
    expected = (
        pl.concat(data_root[1].values())
        .filter((pl.col("cert_status") == "ACTIVE") & ~pl.col("deleted"))
        .group_by("partition_date", "state")
        .agg(pl.len().alias("certified_plots"))
        .sort("partition_date", "state")
    )
    result = _query(warehouse, "Certified (ACTIVE) plots per state")
    assert_frame_equal(result, expected, check_dtypes=False)


def test_every_analyst_query_runs(warehouse: Any) -> None:
    for title, sql in ANALYST_QUERIES:
        assert not warehouse.sql(sql).pl().is_empty(), title


def test_a_database_file_keeps_the_views(
    tmp_path: Path, data_root: tuple[Path, dict[str, pl.DataFrame]]
) -> None:
    database = tmp_path / "mspo.duckdb"
    with duckdb.connect(database) as conn:
        build_warehouse(conn, str(data_root[0]))
    with duckdb.connect(database, read_only=True) as conn:
        count = conn.sql("SELECT count(*) FROM smallholders").fetchall()
    assert count == [(sum(frame.height for frame in data_root[1].values()),)]


def test_a_filesystem_root_reads_through_fsspec(
    data_root: tuple[Path, dict[str, pl.DataFrame]],
) -> None:
    """The code path a ``gs://`` root takes, on fsspec's in-memory filesystem."""
    fs = fsspec.filesystem("memory")
    frame = data_root[1]["2026-11-10"]
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    fs.pipe(
        "memory://warehouse-test/curated/mspo/smallholders/20261110/smallholders.parquet",
        buffer.getvalue(),
    )
    try:
        with duckdb.connect() as conn:
            report = build_warehouse(conn, "memory://warehouse-test", filesystem=fs)
            rows = conn.sql("SELECT DISTINCT partition_date FROM smallholders").fetchall()
    finally:
        fs.rm("memory://warehouse-test", recursive=True)
    assert "smallholders" in report.views
    assert rows == [(dt.date(2026, 11, 10),)]
