"""The curated assets through the real definitions, on the emulator, over several days: the
session's shared store of four days (``mspo_pipeline_tests/curated_store.py``)."""

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from mspo_pipeline import sql
from mspo_pipeline.defs.curated import (
    CHANGES_KEY,
    CURATED_GROUP,
    GEOGRAPHY_KEY,
    HISTORY_KEY,
    NO_BASELINE,
    NO_HISTORY,
    SMALLHOLDERS_KEY,
    SUMMARY_KEY,
    previous_stored,
    stored_partitions,
)
from mspo_pipeline.defs.partitions import GAP_LOOKBACK_DAYS, daily_partitions
from mspo_pipeline.emulator.generator import SAMPLE_RECORDS, changes_between
from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import curated, storage
from mspo_pipeline.lib.schemas import REFERENCE_FLAGS, snake_case
from mspo_pipeline_tests import pipeline
from mspo_pipeline_tests.conftest import EMULATOR_SCALE, EMULATOR_SEED
from mspo_pipeline_tests.curated_store import (
    BASELINES,
    DAYS,
    Store,
    materialize_days,
    metadata,
    stored,
)

SCHEMES = {"spoc_smallholders": "SPOC", "osh_smallholders": "OSH", "gm_smallholders": "GM"}
CURATED_KEYS = (GEOGRAPHY_KEY, SMALLHOLDERS_KEY, SUMMARY_KEY, CHANGES_KEY, HISTORY_KEY)


def test_every_run_succeeds_and_writes_every_curated_table(store: Store) -> None:
    for day, run in store.runs.items():
        assert run.success, f"{day}: {pipeline.failure_messages(run)}"
        for key in CURATED_KEYS:
            assert (store.root / storage.relative_path(key.path, day)).exists()


def test_curated_assets_in_the_graph() -> None:
    graph = pipeline.definitions().resolve_asset_graph()
    for key in CURATED_KEYS:
        node = graph.get(key)
        assert node.group_name == CURATED_GROUP
        # plot_history merges in polars; the others join in DuckDB.
        engine = "polars" if key == HISTORY_KEY else "duckdb"
        assert set(node.kinds) >= {engine, "polars", "parquet"}
        assert node.partitions_def == daily_partitions
        assert node.backfill_policy is None  # a backfill is one run per day, the default
    assert graph.get(GEOGRAPHY_KEY).parent_keys == {
        dg.AssetKey(["validated", t]) for t in ("states", "zones", "zone_state", "spocs", "daerah")
    }
    assert graph.get(SMALLHOLDERS_KEY).parent_keys == {
        GEOGRAPHY_KEY,
        *(dg.AssetKey(["validated", t]) for t in SCHEMES),
    }
    assert graph.get(SUMMARY_KEY).parent_keys == {SMALLHOLDERS_KEY}
    assert graph.get(CHANGES_KEY).parent_keys == {SMALLHOLDERS_KEY, CHANGES_KEY}
    assert graph.get(HISTORY_KEY).parent_keys == {SMALLHOLDERS_KEY, HISTORY_KEY}


def earlier(day: str, days: int) -> list[str]:
    """The ``days`` days before ``day`` (fewer than ``GAP_LOOKBACK_DAYS`` here: the partitions
    start on the first of November)."""
    assert days <= GAP_LOOKBACK_DAYS
    end = dt.date.fromisoformat(day)
    return [(end - dt.timedelta(days=n)).isoformat() for n in range(days, 0, -1)]


@pytest.mark.parametrize("key", [CHANGES_KEY, HISTORY_KEY])
@pytest.mark.parametrize(
    ("day", "previous"),
    [
        ("2026-11-19", earlier("2026-11-19", 18)),  # back to the first day
        ("2026-11-01", []),
    ],
)
def test_chained_assets_depend_on_the_days_they_may_build_on(
    key: dg.AssetKey, day: str, previous: list[str]
) -> None:
    """What makes a backfill run the days of ``changes`` and ``plot_history`` in order (none
    before the first), and marks a day stale when any day it may build on is filled in."""
    graph = pipeline.definitions().resolve_asset_graph()
    mapping = graph.get_partition_mapping(key, key)
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        daily_partitions.empty_subset().with_partition_keys([day]),
        daily_partitions,
        daily_partitions,
    )
    assert list(upstream.partitions_subset.get_partition_keys()) == previous


def test_docs_sample_record_comes_out_flagged(store: Store) -> None:
    sample = SAMPLE_RECORDS["spoc_smallholders"]
    rows = stored(store.root, "curated", "smallholders", DAYS[-1]).filter(
        pl.col("scheme") == "SPOC",
        pl.col("entity_smallholder_id") == sample["entity_smallholder_id"],
    )
    assert rows.height == 1
    row = rows.row(0, named=True)
    assert (row["zone_id"], row["zone_reported"]) == (11, "Zon Timur 2")
    assert row["zone"] == "Zon Sarawak"
    assert row["zone_mismatch"] is True
    assert row["state_not_in_zone"] is True  # Kelantan (3) is not in zone 11


def _oracle_flags(root: Path, day: str) -> pl.DataFrame:
    """Each reference flag recomputed in polars from the stored validated tables of ``day``."""
    zones = stored(root, "validated", "zones", day).rename({"zone": "ref_zone"})
    states = stored(root, "validated", "states", day).rename({"state": "ref_state"})
    pairs = stored(root, "validated", "zone_state", day).select("zone_id", "state_id")
    spocs = stored(root, "validated", "spocs", day).select("zone_id", "spoc_code")
    districts = stored(root, "validated", "daerah", day).select("daerah_id", "state_id")

    def differs(own: str, ref: str) -> pl.Expr:
        text = pl.col(own).str.strip_chars().str.to_lowercase()
        known = pl.col(ref).str.strip_chars().str.to_lowercase()
        return (
            pl.col(f"{own}_id").is_not_null()
            & pl.col(own).is_not_null()
            & (pl.col(ref).is_null() | (text != known))
        )

    frames = []
    for table, scheme in SCHEMES.items():
        rows = stored(root, "validated", table, day)
        for column, dtype in (("zone_id", pl.Int32), ("zone", pl.String), ("spoc_code", pl.String)):
            if column not in rows.columns:
                rows = rows.with_columns(pl.lit(None, dtype).alias(column))
        in_pair = pairs.with_columns(pl.lit(True).alias("paired"))
        in_spocs = spocs.with_columns(pl.lit(True).alias("listed"))
        in_districts = districts.with_columns(pl.lit(True).alias("district_known"))
        frames.append(
            rows.join(zones, on="zone_id", how="left")
            .join(states, on="state_id", how="left")
            .join(in_pair, on=["zone_id", "state_id"], how="left", nulls_equal=False)
            .join(in_spocs, on=["zone_id", "spoc_code"], how="left")
            .join(in_districts, on=["daerah_id", "state_id"], how="left")
            .select(
                pl.lit(scheme).alias("scheme"),
                "entity_smallholder_id",
                differs("zone", "ref_zone").alias("zone_mismatch"),
                differs("state", "ref_state").alias("state_mismatch"),
                (
                    pl.col("zone_id").is_not_null()
                    & pl.col("state_id").is_not_null()
                    & pl.col("paired").is_null()
                ).alias("state_not_in_zone"),
                (pl.col("spoc_code").is_not_null() & pl.col("listed").is_null()).alias(
                    "unknown_spoc_code"
                ),
                (pl.col("daerah_id").is_not_null() & pl.col("district_known").is_null()).alias(
                    "unknown_daerah"
                ),
            )
        )
    return pl.concat(frames).sort(curated.KEY)


@pytest.mark.parametrize("day", [DAYS[0], DAYS[-1]])
def test_reference_flags_match_the_reference_tables(store: Store, day: str) -> None:
    flags = list(REFERENCE_FLAGS)
    actual = stored(store.root, "curated", "smallholders", day).select(*curated.KEY, *flags)
    assert_frame_equal(actual.sort(curated.KEY), _oracle_flags(store.root, day))
    raised = {flag for flag in flags if actual.get_column(flag).any()}
    # The emulator never misspells a state's name, so state_mismatch has no case in its data
    # (test_curated covers it); every flag of the issue must have real cases here.
    assert raised >= {"zone_mismatch", "state_not_in_zone", "unknown_spoc_code", "unknown_daerah"}


def test_flag_and_scheme_counts_are_published(store: Store) -> None:
    day = DAYS[-1]
    frame = stored(store.root, "curated", "smallholders", day)
    published = metadata(store, day, SMALLHOLDERS_KEY)
    for flag in (*REFERENCE_FLAGS, "flag_gps_missing", "gps_usable", "deleted"):
        name = {"gps_usable": "plots_gps_usable", "deleted": "plots_deleted"}.get(flag, flag)
        assert published[name] == frame.get_column(flag).sum(), flag
    for scheme in curated.SCHEMES:
        rows = frame.filter(pl.col("scheme") == scheme).height
        assert rows > 0
        assert published[f"plots_{scheme.lower()}"] == rows
    assert published["dagster/row_count"] == frame.height
    schema = published["dagster/column_schema"]
    assert [c.name for c in schema.columns] == frame.columns
    assert [c.name for c in schema.columns if not c.description] == []
    flag_docs = {c.name: c.description for c in schema.columns if c.name.startswith("flag_")}
    assert flag_docs["flag_gps_swapped"] and "swapped" in flag_docs["flag_gps_swapped"].lower()


@pytest.mark.parametrize("day", DAYS)
def test_summary_sums_equal_sums_over_smallholders(store: Store, day: str) -> None:
    group = ["state", "zone", "scheme", "cert_status"]
    expected = (
        stored(store.root, "curated", "smallholders", day)
        .filter(~pl.col("deleted"))
        .group_by(group)
        .agg(
            pl.len().alias("plots"),
            pl.col("planted_area").sum().alias("planted_ha"),
            pl.col("certified_area").sum().alias("certified_ha"),
        )
    )
    summary = stored(store.root, "curated", "certification_summary", day)
    actual = summary.group_by(group).agg(pl.col("plots", "planted_ha", "certified_ha").sum())
    assert summary.get_column("partition_date").unique().to_list() == [dt.date.fromisoformat(day)]
    assert_frame_equal(
        actual.sort(group, nulls_last=True),
        expected.sort(group, nulls_last=True),
        check_dtypes=False,
        abs_tol=1e-6,
    )


def _api_field_as_column(field: str) -> str:
    """The ``changes.column_name`` of an API field: snake_case, own names as ``*_reported``."""
    column = snake_case(field)
    return f"{column}_reported" if column in ("zone", "state", "daerah") else column


def assert_changes_match_emulator(root: Path, day: str, previous: str) -> dict[str, int]:
    """``changes`` of ``day`` is exactly what the emulator changed since ``previous``.

    Returns how many plots were new, removed and changed.
    """
    truth = changes_between(
        EMULATOR_SEED,
        EMULATOR_SCALE,
        dt.date.fromisoformat(previous),
        dt.date.fromisoformat(day),
    )
    found = stored(root, "curated", "changes", day)
    if found.height:
        assert found.get_column("compared_with").unique().to_list() == [
            dt.date.fromisoformat(previous)
        ]
    totals = {"new": 0, "removed": 0, "changed": 0}
    for table, scheme in SCHEMES.items():
        # A quarantined row is not in curated.smallholders: its changes cannot be seen there.
        hidden = {
            i
            for d in (previous, day)
            for i in stored(root, "quarantine", table, d)["entity_smallholder_id"]
        }
        expected = truth[table]
        mine = found.filter(pl.col("scheme") == scheme)

        def ids(change_type: str, mine: pl.DataFrame = mine) -> set[int]:
            rows = mine.filter(pl.col("change_type") == change_type)
            return set(rows.get_column("entity_smallholder_id").to_list())

        assert ids("new") == set(expected.new) - hidden, (day, scheme)
        assert ids("removed") == set(expected.removed) - hidden, (day, scheme)
        changed: dict[int, set[str]] = {}
        for plot, column in (
            mine.filter(pl.col("change_type") == "changed")
            .select("entity_smallholder_id", "column_name")
            .iter_rows()
        ):
            changed.setdefault(plot, set()).add(column)
        assert changed == {
            plot: {_api_field_as_column(f) for f in fields}
            for plot, fields in expected.changed.items()
            if plot not in hidden
        }, (day, scheme)
        totals["new"] += len(ids("new"))
        totals["removed"] += len(ids("removed"))
        totals["changed"] += len(changed)
    return totals


@pytest.mark.parametrize("day", list(BASELINES))
def test_changes_are_exactly_what_the_emulator_changed(store: Store, day: str) -> None:
    totals = assert_changes_match_emulator(store.root, day, BASELINES[day])
    if day == "2026-11-18":  # 17 days since the first partition: every kind of change happens
        assert all(totals.values()), totals


def test_changed_values_are_the_old_and_new_values(store: Store) -> None:
    day, previous = "2026-11-18", BASELINES["2026-11-18"]
    status = (
        stored(store.root, "curated", "changes", day)
        .filter(pl.col("change_type") == "changed", pl.col("column_name") == "cert_status")
        .select(*curated.KEY, "old_value", "new_value")
    )
    assert status.height > 0

    def statuses(partition: str, alias: str) -> pl.DataFrame:
        frame = stored(store.root, "curated", "smallholders", partition)
        return frame.select(*curated.KEY, pl.col("cert_status").alias(alias))

    joined = status.join(statuses(previous, "before"), on=curated.KEY).join(
        statuses(day, "after"), on=curated.KEY
    )
    assert joined.height == status.height
    assert joined.get_column("old_value").to_list() == joined.get_column("before").to_list()
    assert joined.get_column("new_value").to_list() == joined.get_column("after").to_list()


def test_changes_metadata_names_the_baseline(store: Store) -> None:
    first = metadata(store, DAYS[0], CHANGES_KEY)
    assert first["compared_with"] == NO_BASELINE
    assert first["dagster/row_count"] == 0
    after_gap = metadata(store, "2026-11-21", CHANGES_KEY)
    assert after_gap["compared_with"] == "2026-11-19"
    frame = stored(store.root, "curated", "changes", "2026-11-21")
    for kind in ("new", "removed"):
        assert after_gap[f"{kind}_plots"] == frame.filter(pl.col("change_type") == kind).height
    changed = frame.filter(pl.col("change_type") == "changed")
    assert after_gap["changed_values"] == changed.height
    transitions = metadata(store, "2026-11-18", CHANGES_KEY)["cert_status_transitions"]
    assert "| old_status | new_status | plots |" in transitions


def test_filling_the_gap_rebuilds_the_chain(
    store: Store, emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Backfilling the missing day, then the day after it, in order: the chain runs through it.

    A copy of the store and a fresh Dagster instance: the baseline comes from the store alone.
    """
    root = tmp_path / "store"
    shutil.copytree(store.root, root)
    runs = materialize_days(emulator, root, ("2026-11-20", "2026-11-21"))
    assert all(run.success for run in runs.values()), pipeline.failure_messages(runs["2026-11-20"])
    for day, previous in (("2026-11-20", "2026-11-19"), ("2026-11-21", "2026-11-20")):
        found = stored(root, "curated", "changes", day)
        assert found.get_column("compared_with").unique().to_list() == [
            dt.date.fromisoformat(previous)
        ]
        assert_changes_match_emulator(root, day, previous)


def test_stored_partitions_lists_only_days_with_a_file(tmp_path: Path) -> None:
    table = tmp_path / "curated" / "mspo" / "smallholders"
    for folder in ("20261118", "20261121"):
        (table / folder).mkdir(parents=True)
        (table / folder / "smallholders.parquet").write_bytes(b"")
    (table / "20261120").mkdir()  # a day whose write never finished: no file
    (table / "tmp-copy").mkdir()
    (table / "tmp-copy" / "smallholders.parquet").write_bytes(b"")
    assert stored_partitions(str(tmp_path), SMALLHOLDERS_KEY.path) == ["2026-11-18", "2026-11-21"]
    assert stored_partitions(str(tmp_path), CHANGES_KEY.path) == []


def _store_days(root: Path, days: list[dt.date]) -> None:
    for day in days:
        path = root / storage.relative_path(SMALLHOLDERS_KEY.path, day.isoformat())
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")


@pytest.mark.parametrize(
    ("gaps", "expected"),
    [
        ((1, 3), 1),  # yesterday, found by the first look
        ((GAP_LOOKBACK_DAYS, GAP_LOOKBACK_DAYS + 5), GAP_LOOKBACK_DAYS),  # the last day looked at
        ((GAP_LOOKBACK_DAYS + 1, 400), GAP_LOOKBACK_DAYS + 1),  # beyond the looks: the listing
        ((), None),
    ],
)
def test_previous_stored_finds_the_newest_earlier_day_however_far(
    tmp_path: Path, gaps: tuple[int, ...], expected: int | None
) -> None:
    day = dt.date(2026, 11, 21)
    _store_days(
        tmp_path, [day - dt.timedelta(days=gap) for gap in gaps] + [day, day + dt.timedelta(days=1)]
    )

    found = previous_stored(str(tmp_path), SMALLHOLDERS_KEY.path, day.isoformat())

    assert found == (None if expected is None else (day - dt.timedelta(days=expected)).isoformat())


def test_previous_stored_lists_nothing_when_a_recent_day_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing grows with the days kept: the daily run's lookup must not need one."""
    day = dt.date(2026, 11, 21)
    _store_days(tmp_path, [day - dt.timedelta(days=n) for n in (2, 400)])

    def no_listing(*_: object) -> None:
        raise AssertionError("the store was listed")

    monkeypatch.setattr("mspo_pipeline.lib.layout.stored_days", no_listing)
    found = previous_stored(str(tmp_path), SMALLHOLDERS_KEY.path, day.isoformat())
    assert found == "2026-11-19"


def _as_of(conn: duckdb.DuckDBPyConnection, day: str) -> pl.DataFrame:
    return conn.sql(f"SELECT * FROM smallholders_as_of(DATE '{day}')").pl().sort(curated.KEY)


def _register(root: Path, day: str) -> pl.DataFrame:
    """A stored day of smallholders without its per-day columns: what the history gives back."""
    return stored(root, "curated", "smallholders", day).drop(curated.DAY_COLUMNS).sort(curated.KEY)


def test_smallholders_as_of_each_captured_day_is_that_days_smallholders(store: Store) -> None:
    conn, report = sql.connect(str(store.root))
    with conn:
        assert {"plot_history", "smallholders_as_of", "plot_timeline"} <= set(report.views)
        for day in DAYS:
            assert_frame_equal(_as_of(conn, day), _register(store.root, day))
        # 2026-11-20 was not captured: the register as last captured before it.
        assert_frame_equal(_as_of(conn, "2026-11-20"), _register(store.root, "2026-11-19"))
        assert _as_of(conn, "2026-10-31").is_empty()


def test_plot_history_is_the_newest_partition_sorted_by_plot(store: Store) -> None:
    newest = stored(store.root, "curated", "plot_history", DAYS[-1])
    assert_frame_equal(newest, newest.sort(*curated.KEY, "version"))
    conn, _ = sql.connect(str(store.root))
    with conn:
        viewed = conn.sql("SELECT * FROM plot_history").pl()
    assert_frame_equal(viewed, newest)
    published = metadata(store, DAYS[-1], HISTORY_KEY)
    assert published["history_of"] == "2026-11-19"
    assert (
        published["plots_current"] == stored(store.root, "curated", "smallholders", DAYS[-1]).height
    )
    current = newest.filter(pl.col("replaced_on").is_null())
    opened = newest.filter(pl.col("valid_from") == dt.date.fromisoformat(DAYS[-1]))
    assert {
        name: published[name]
        for name in ("plots", "plots_current", "versions_opened", "plots_removed")
    } == {
        "plots": current.height,
        "plots_current": current.filter(~pl.col("removed")).height,
        "versions_opened": opened.filter(~pl.col("removed")).height,
        "plots_removed": opened.filter(pl.col("removed")).height,
    }
    assert published["versions_opened"] > 0
    assert metadata(store, DAYS[0], HISTORY_KEY)["history_of"] == NO_HISTORY


def test_plot_timeline_follows_a_changed_plot(store: Store) -> None:
    """A plot whose certificate changed on 2026-11-18: two versions, the first closed there."""
    change = (
        stored(store.root, "curated", "changes", "2026-11-18")
        .filter(pl.col("change_type") == "changed", pl.col("column_name") == "cert_status")
        .row(0, named=True)
    )
    conn, _ = sql.connect(str(store.root))
    with conn:
        timeline = conn.sql(
            "SELECT * FROM plot_timeline($scheme, $id)",
            params={"scheme": change["scheme"], "id": change["entity_smallholder_id"]},
        ).pl()
    first, second = timeline.row(0, named=True), timeline.row(1, named=True)
    assert (first["cert_status"], second["cert_status"]) == (
        change["old_value"],
        change["new_value"],
    )
    assert (first["valid_from"], first["valid_to"]) == (dt.date(2026, 11, 1), dt.date(2026, 11, 1))
    assert first["replaced_on"] == second["valid_from"] == dt.date(2026, 11, 18)
    assert timeline.get_column("version").to_list() == list(range(1, timeline.height + 1))


def test_on_time_days_say_so(store: Store) -> None:
    for day in DAYS:
        frame = stored(store.root, "curated", "smallholders", day)
        assert frame.select("snapshot_date", "late_capture").unique().rows() == [
            (dt.date.fromisoformat(day), False)
        ]


def test_a_late_day_says_which_register_it_holds(
    store: Store, emulator: EmulatorServer, tmp_path: Path
) -> None:
    """2026-11-20 backfilled while the API serves 2026-11-23, then 2026-11-21 rebuilt after it
    (its raw snapshot kept): every curated table and the history say which register is which."""
    root = tmp_path / "store"
    shutil.copytree(store.root, root)
    late_day, served = "2026-11-20", dt.date(2026, 11, 23)
    runs = materialize_days(emulator, root, (late_day, "2026-11-21"), {late_day: served})
    assert all(run.success for run in runs.values()), pipeline.failure_messages(runs[late_day])
    raw = storage.read_provenance(
        root / storage.relative_path(["raw", "spoc_smallholders"], late_day)
    )
    assert (raw["snapshot_date"], raw["late_capture"]) == (served.isoformat(), "true")

    capture_columns = ["snapshot_date", "late_capture"]
    for table in ("smallholders", "certification_summary"):
        frame = stored(root, "curated", table, late_day)
        assert frame.select(capture_columns).unique().rows() == [(served, True)], table
    compared = ["compared_snapshot_date", "compared_late_capture"]
    into_late = stored(root, "curated", "changes", late_day)
    assert into_late.height > 0
    assert into_late.select(*capture_columns, *compared).unique().rows() == [
        (served, True, dt.date(2026, 11, 19), False)
    ]
    after_late = stored(root, "curated", "changes", "2026-11-21")
    assert after_late.select(*capture_columns, *compared).unique().rows() == [
        (dt.date(2026, 11, 21), False, served, True)
    ]

    newest = stored(root, "curated", "plot_history", "2026-11-21")
    opened_late = newest.filter(pl.col("valid_from") == dt.date.fromisoformat(late_day))
    closed_late = newest.filter(pl.col("valid_to") == dt.date.fromisoformat(late_day))
    assert opened_late.height > 0 and closed_late.height > 0
    assert opened_late.get_column("valid_from_late").unique().to_list() == [True]
    assert closed_late.get_column("valid_to_late").unique().to_list() == [True]
    on_time = newest.filter(pl.col("valid_from") == dt.date(2026, 11, 21))
    assert on_time.get_column("valid_from_late").unique().to_list() == [False]
    conn, _ = sql.connect(str(root))
    with conn:
        for day in (*DAYS, late_day):
            assert_frame_equal(_as_of(conn, day), _register(root, day))


def test_plot_history_refuses_to_skip_a_stored_day(store: Store, tmp_path: Path) -> None:
    """A day of smallholders the history never folded in: the run says which days to rebuild."""
    root = tmp_path / "store"
    shutil.copytree(store.root, root)
    (root / storage.relative_path(HISTORY_KEY.path, "2026-11-19")).unlink()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MSPO_DATA_ROOT", str(root))
        run = pipeline.materialize("2026-11-21", [HISTORY_KEY.to_user_string()])
    assert not run.success
    message = pipeline.failure_messages(run)
    assert "stored day(s) 2026-11-19" in message
    assert "for 2026-11-19 through 2026-11-21" in message
