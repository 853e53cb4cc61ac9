"""``mspo sql`` and ``mspo warehouse`` over a store the real pipeline wrote from the emulator.

The store is the session's (``curated_store``): four days, 2026-11-01, 2026-11-18, 2026-11-19
and, after a missing day, 2026-11-21. The README's analyst queries run against it and their
answers are checked against the Parquet files themselves. Nothing here writes to the store.
"""

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from mspo_pipeline import cli, sql
from mspo_pipeline.lib import storage
from mspo_pipeline.lib.warehouse import ANALYST_QUERIES, view_names
from mspo_pipeline_tests.curated_store import DAYS, Store, stored

LATEST = DAYS[-1]
LAST_SEVEN_DAYS = [
    day
    for day in DAYS
    if dt.date.fromisoformat(day) > dt.date.fromisoformat(LATEST) - dt.timedelta(days=7)
]
"""The days within seven days of the newest, as the README's query counts them."""


@pytest.fixture(scope="module")
def root(store: Store) -> Path:
    assert all(run.success for run in store.runs.values())
    return store.root


@pytest.fixture(scope="module")
def conn(root: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection, report = sql.connect(str(root))
    assert not report.skipped
    assert report.from_manifest  # written by the runs' warehouse/manifest steps
    yield connection
    connection.close()


def query(conn: duckdb.DuckDBPyConnection, title: str) -> pl.DataFrame:
    (text,) = [text for name, text in ANALYST_QUERIES if name.startswith(title)]
    return result(conn, text).pl()


def result(conn: duckdb.DuckDBPyConnection, text: str) -> duckdb.DuckDBPyRelation:
    """What ``mspo sql`` gets for ``text``: views it names are created on first use."""
    relation = sql.query(conn, text)
    assert relation is not None
    return relation


def latest(root: Path) -> pl.DataFrame:
    return stored(root, "curated", "smallholders", LATEST)


def test_views_over_every_layer_and_partition(conn: duckdb.DuckDBPyConnection) -> None:
    views = set(view_names(conn))
    assert {
        "smallholders",
        "smallholders_latest",
        "certification_summary",
        "changes",
        "geography",
        "states",
        "zones",
        "zone_state",
        "spocs",
        "daerah",
        "raw_spoc_smallholders",
        "typed_osh_smallholders",
        "validated_gm_smallholders",
        "quarantine_spoc_smallholders",
    } <= views
    days = result(conn, "SELECT DISTINCT partition_date FROM smallholders ORDER BY 1").fetchall()
    assert [d for (d,) in days] == [dt.date.fromisoformat(d) for d in DAYS]
    assert result(conn, "SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]


def test_active_certified_hectares_by_state(conn: duckdb.DuckDBPyConnection, root: Path) -> None:
    expected = (
        latest(root)
        .filter(pl.col("cert_status") == "ACTIVE", ~pl.col("deleted"))
        .group_by("state")
        .agg(pl.len().alias("smallholders"), pl.col("certified_area").sum().alias("certified_ha"))
    )
    actual = query(conn, "Active certified hectares").select(
        "state", "smallholders", "certified_ha"
    )
    assert actual.height > 5
    assert_frame_equal(actual.sort("state"), expected.sort("state"), check_dtypes=False)


def test_smallholders_and_hectares_by_zone(conn: duckdb.DuckDBPyConnection, root: Path) -> None:
    actual = query(conn, "Smallholders and hectares by zone")
    plots = latest(root).filter(pl.col("scheme").is_in(["SPOC", "GM"]), ~pl.col("deleted"))
    assert actual.get_column("smallholders").sum() == plots.height
    assert actual.get_column("certified_ha").sum() == pytest.approx(plots["certified_area"].sum())


def test_osh_hectares_by_organisation(conn: duckdb.DuckDBPyConnection, root: Path) -> None:
    actual = query(conn, "OSH hectares by organisation")
    osh = latest(root).filter(pl.col("scheme") == "OSH")
    assert actual.get_column("smallholders").sum() == osh.height
    assert set(actual.get_column("organisation")) == set(osh.get_column("entity_name"))


def test_certificates_expired_in_the_last_seven_days(
    conn: duckdb.DuckDBPyConnection, root: Path
) -> None:
    actual = query(conn, "Plots whose certificate expired")
    expected = pl.concat(
        stored(root, "curated", "changes", day).filter(
            pl.col("change_type") == "changed",
            pl.col("column_name") == "cert_status",
            pl.col("new_value") == "EXPIRED",
        )
        for day in LAST_SEVEN_DAYS
    )
    assert expected.height > 0
    assert sorted(actual.get_column("entity_smallholder_id")) == sorted(
        expected.get_column("entity_smallholder_id")
    )
    assert set(actual.get_column("previous_status")) <= {"ACTIVE", "DELAYED", "SUSPENDED"}


def test_certified_plots_per_state_day_by_day(conn: duckdb.DuckDBPyConnection, root: Path) -> None:
    actual = query(conn, "Certified (ACTIVE) plots per state, day by day")
    expected = (
        pl.concat(
            stored(root, "curated", "smallholders", day).filter(
                pl.col("cert_status") == "ACTIVE", ~pl.col("deleted")
            )
            for day in DAYS
        )
        .group_by("partition_date", "state")
        .agg(pl.len().alias("certified_plots"))
    )
    order = ["partition_date", "state"]
    assert_frame_equal(
        actual.sort(order, nulls_last=True),
        expected.sort(order, nulls_last=True),
        check_dtypes=False,
    )


def test_sql_command_runs_one_query(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["sql", "--data-root", str(root), "SELECT count(*) AS plots FROM smallholders_latest"]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert f"{latest(root).height}" in out and "plots" in out
    assert "views over" in err


def test_sql_command_reports_a_bad_query(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sql", "--data-root", str(root), "SELECT * FROM no_such_view"]) == 1
    assert "no_such_view" in capsys.readouterr().err


def test_sql_command_reads_the_data_root_from_the_environment(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MSPO_DATA_ROOT", str(root))
    assert cli.main(["sql", "SELECT max(partition_date) AS newest FROM smallholders"]) == 0
    assert LATEST in capsys.readouterr().out


def test_shell_runs_statements_until_quit(
    conn: duckdb.DuckDBPyConnection, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = iter(
        [
            ".tables",
            "SELECT scheme, count(*) AS n",
            "FROM smallholders_latest GROUP BY scheme ORDER BY scheme;",
            "SELECT broken FROM;",
            "SELECT 'still alive' AS status;",
            ".quit",
            "SELECT 'never read';",
        ]
    )
    sql.shell(conn, read=lambda prompt: next(lines))
    out = capsys.readouterr().out
    assert "smallholders_latest" in out  # .tables
    assert "SPOC" in out and "OSH" in out and "GM" in out
    assert "Error:" in out and "still alive" in out
    assert next(lines) == "SELECT 'never read';"


def test_shell_stops_at_end_of_input(conn: duckdb.DuckDBPyConnection) -> None:
    def read(prompt: str) -> str:
        raise EOFError

    sql.shell(conn, read=read)


def test_warehouse_command_writes_a_database_of_views(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out" / "warehouse.duckdb"
    assert cli.main(["warehouse", "--data-root", str(root), "--output", str(output)]) == 0
    assert str(output) in capsys.readouterr().out
    with duckdb.connect(str(output), read_only=True) as database:
        newest = database.sql("SELECT max(partition_date) FROM smallholders_latest").fetchall()
        rows = database.sql("SELECT count(*) FROM smallholders_latest").fetchall()
    assert newest == [(dt.date.fromisoformat(LATEST),)]
    assert rows == [(latest(root).height,)]
    # Views, not copies: the file stays small whatever the store holds.
    size = (root / storage.relative_path(["curated", "smallholders"], LATEST)).stat().st_size
    assert output.stat().st_size < 10 * size


def test_an_empty_root_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "warehouse.duckdb"
    assert cli.main(["warehouse", "--data-root", str(tmp_path), "--output", str(output)]) == 1
    assert "mspo demo" in capsys.readouterr().out
