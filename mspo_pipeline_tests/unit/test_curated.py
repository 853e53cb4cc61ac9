"""The curated layer on small frames that follow the validated-layer contract.

The fixture is two daily snapshots of the three registers, with every reference flag and every
kind of change built in on purpose; the helpers are shared with ``test_warehouse``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any
from unittest import mock

import duckdb
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from mspo_pipeline.lib import curated
from mspo_pipeline.lib.schemas import REFERENCE_FLAGS, curated_table, table_schema

UTC = pl.Datetime("us", "UTC")
_COMMON_HEAD: dict[str, Any] = {
    "entity_smallholder_id": pl.Int64,
    "entity_name": pl.String,
    "mpob_no": pl.String,
    "name": pl.String,
    "planted_area": pl.Float64,
    "certified_area": pl.Float64,
    "gps_coordinate_lat": pl.Float64,
    "gps_coordinate_long": pl.Float64,
    "state_id": pl.Int32,
    "state": pl.String,
    "daerah_id": pl.Int32,
    "daerah": pl.String,
}
_SPOC_TAIL: dict[str, Any] = {
    "mukim_id": pl.Int32,
    "mukim": pl.String,
    "lot_no": pl.String,
    "zone_id": pl.Int32,
    "zone": pl.String,
    "spoc_code": pl.String,
}
_SPOC_END: dict[str, Any] = {
    "cert_no": pl.String,
    "cert_status": pl.String,
    "track_id": pl.String,
    "record_status": pl.String,
    "deleted": pl.Boolean,
    "created_at": UTC,
    "updated_at": UTC,
}
FLAGS = (
    "flag_certified_above_planted",
    "flag_gps_missing",
    "flag_gps_zero",
    "flag_gps_outside_malaysia",
    "flag_gps_swapped",
    "flag_created_after_updated",
)
_FLAG_SCHEMA: dict[str, Any] = dict.fromkeys(FLAGS, pl.Boolean)

SPOC_SCHEMA = {**_COMMON_HEAD, **_SPOC_TAIL, **_SPOC_END, **_FLAG_SCHEMA}
GM_SCHEMA = {**_COMMON_HEAD, **_SPOC_TAIL, "gm_code": pl.String, **_SPOC_END, **_FLAG_SCHEMA}
OSH_SCHEMA = {
    "entity_smallholder_id": pl.Int64,
    "entity_code": pl.String,
    **{k: v for k, v in _COMMON_HEAD.items() if k != "entity_smallholder_id"},
    "lot_no": pl.String,
    "cert_status": pl.String,
    "cert_no": pl.String,
    "track_id": pl.String,
    "created_at": UTC,
    "updated_at": UTC,
    **_FLAG_SCHEMA,
}

STATES = pl.DataFrame(
    {
        "state_id": range(1, 17),
        "state": [
            "Johor",
            "Kedah",
            "Kelantan",
            "Melaka",
            "Negeri Sembilan",
            "Pahang",
            "Perak",
            "Perlis",
            "Pulau Pinang",
            "Sabah",
            "Sarawak",
            "Selangor",
            "Terengganu",
            "Kuala Lumpur",
            "Labuan",
            "Putrajaya",
        ],
    },
    schema={"state_id": pl.Int32, "state": pl.String},
)
ZONES = pl.DataFrame(
    {
        "zone_id": range(1, 12),
        "zone": [
            "Zon Utara 1",
            "Zon Utara 2",
            "Zon Tengah 1",
            "Zon Tengah 2",
            "Zon Selatan 1",
            "Zon Selatan 2",
            "Zon Timur 1",
            "Zon Timur 2",
            "Zon Sabah 1",
            "Zon Sabah 2",
            "Zon Sarawak",
        ],
    },
    schema={"zone_id": pl.Int32, "zone": pl.String},
)
_ZONE_STATE_IDS = {
    1: (8, 2, 7),
    2: (9, 2, 7),
    3: (12, 14),
    4: (5, 4),
    5: (1,),
    6: (1,),
    7: (6,),
    8: (13, 3),
    9: (10,),
    10: (10,),
    11: (11,),
}
"""The SPOC docs' zone table: Kedah, Perak, Johor and Sabah are split between two zones."""
_STATE_NAME = dict(STATES.iter_rows())
ZONE_STATE = pl.DataFrame(
    [
        {"zone_id": z, "state_id": s, "state": _STATE_NAME[s]}
        for z, ids in _ZONE_STATE_IDS.items()
        for s in ids
    ],
    schema={"zone_id": pl.Int32, "state_id": pl.Int32, "state": pl.String},
)
SPOCS = pl.DataFrame(
    [
        (5, 1, "A1"),
        (6, 1, "A2"),
        (28, 2, "B1"),
        (40, 5, "J1"),
        (60, 6, "S1"),
        (80, 8, "Q1"),
        (81, 8, "Q2"),
        (100, 11, "T1"),
        (101, 11, "D1"),
        (102, 11, "D2"),
    ],
    schema={"spoc_id": pl.Int32, "zone_id": pl.Int32, "spoc_code": pl.String},
    orient="row",
)
DAERAH = pl.DataFrame(
    [
        (4, "KOTA TINGGI", 1),
        (20, "GUA MUSANG", 3),
        (21, "MACHANG", 3),
        (30, "KUANTAN", 6),
        (40, "KEMAMAN", 13),
    ],
    schema={"daerah_id": pl.Int32, "daerah": pl.String, "state_id": pl.Int32},
    orient="row",
)
REFERENCES = {
    "states": STATES,
    "zones": ZONES,
    "zone_state": ZONE_STATE,
    "spocs": SPOCS,
    "daerah": DAERAH,
}


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def plot(entity_smallholder_id: int, **values: Any) -> dict[str, Any]:
    """A clean, certified Terengganu SPOC plot, changed by ``values``."""
    row: dict[str, Any] = {
        "entity_smallholder_id": entity_smallholder_id,
        "entity_name": "KEMAMAN/ DUNGUN",
        "mpob_no": f"{entity_smallholder_id:012d}",
        "name": f"SMALLHOLDER {entity_smallholder_id}",
        "planted_area": 2.0,
        "certified_area": 2.0,
        "gps_coordinate_lat": 4.25,
        "gps_coordinate_long": 103.4,
        "state_id": 13,
        "state": "Terengganu",
        "daerah_id": 40,
        "daerah": "KEMAMAN",
        "lot_no": f"L{entity_smallholder_id}",
        "zone_id": 8,
        "zone": "Zon Timur 2",
        "spoc_code": "Q1",
        "cert_no": "MSPO-100/24",
        "cert_status": "ACTIVE",
        "track_id": f"OPMC{entity_smallholder_id}",
        "record_status": "NO CHANGE",
        "deleted": False,
        "created_at": ts("2024-01-10T00:00:00"),
        "updated_at": ts("2024-07-24T01:17:06.101"),
        **dict.fromkeys(FLAGS, False),
    }
    row.update(values)
    return row


DOCS_SAMPLE = plot(
    73042,
    entity_name="JELI/ GUA MUSANG/ KRAI/ MACHANG",
    mpob_no="832452001098",
    name="ROSNANI BINTI IBRAHIM",
    planted_area=2.43,
    certified_area=2.43,
    gps_coordinate_lat=5.55106,
    gps_coordinate_long=101.920321,
    state_id=3,
    state="Kelantan",
    daerah_id=None,
    daerah=None,
    lot_no="14165",
    cert_status="DELAYED",
    zone_id=11,
    zone="Zon Timur 2",
    cert_no="MSPO-492/24",
    spoc_code="D1",
    created_at=ts("2025-06-03T04:46:41.581"),
    updated_at=ts("2024-07-24T01:17:06.101"),
    track_id="OPMC205946",
    flag_created_after_updated=True,
)
"""The SPOC docs' own sample record: zone 11 is Zon Sarawak and does not cover Kelantan."""

KEDAH = {"state_id": 2, "state": "Kedah", "zone_id": 1, "zone": "Zon Utara 1", "daerah_id": None}
PAHANG = {"state_id": 6, "state": "Pahang", "zone_id": 7, "zone": "Zon Timur 1", "spoc_code": None}
SPOC_DAY1 = [
    DOCS_SAMPLE,
    plot(1001),
    plot(1002, **KEDAH, spoc_code="A1"),
    plot(1003, **KEDAH, spoc_code="A99", mpob_no=f"{1002:012d}"),
    plot(1004, **KEDAH, spoc_code="Q1", cert_status="EXPIRED"),
    plot(1005, **PAHANG, daerah_id=4, daerah="KOTA TINGGI"),
    plot(
        1006,
        **{**PAHANG, "state": " PAHANG "},
        daerah_id=999,
        daerah="NOWHERE",
        gps_coordinate_lat=None,
        gps_coordinate_long=None,
        flag_gps_missing=True,
    ),
    plot(
        1007,
        **{**PAHANG, "state": "Johor"},
        cert_status="SUSPENDED",
        daerah_id=30,
        daerah="KUANTAN",
    ),
    plot(
        1008,
        state_id=3,
        state="Kelantan",
        zone="ZON TIMUR 2",
        daerah_id=20,
        daerah="Gua Musang",
        gps_coordinate_lat=40.0,
        flag_gps_outside_malaysia=True,
        flag_certified_above_planted=True,
        certified_area=2.5,
    ),
    plot(1009, deleted=True),
    plot(1010, zone_id=99, zone="Zon X", spoc_code=None),
    plot(1011, deleted=True, cert_status="EXPIRED"),
]
"""Day-1 SPOC plots; each one exists to exercise one flag (see ``EXPECTED_FLAGS``)."""

EXPECTED_FLAGS = {
    73042: {"zone_mismatch", "state_not_in_zone"},
    1003: {"unknown_spoc_code"},
    1004: {"unknown_spoc_code"},
    1005: {"unknown_daerah"},
    1006: {"unknown_daerah"},
    1007: {"state_mismatch"},
    1010: {"zone_mismatch", "state_not_in_zone"},
}
"""SPOC plots and the reference flags they must raise; every other plot raises none."""

_JOHOR_GM = {"state_id": 1, "state": "Johor", "zone_id": 5, "zone": "Zon Selatan 1"}
GM_DAY1 = [
    plot(5001, **_JOHOR_GM, spoc_code=None, gm_code="GM01", daerah_id=4, daerah="KOTA TINGGI"),
    plot(5002, **_JOHOR_GM, spoc_code=None, gm_code="GM01", daerah_id=4, cert_status="EXPIRED"),
]


def osh_plot(entity_smallholder_id: int, **values: Any) -> dict[str, Any]:
    """An organised smallholder plot: the SPOC defaults without the columns OSH lacks."""
    row = {k: v for k, v in plot(entity_smallholder_id).items() if k in OSH_SCHEMA}
    row.update(
        entity_code=f"ORS{entity_smallholder_id}",
        entity_name="FELDA LOK HENG BARAT",
        mpob_no=None,
        state_id=1,
        state="Johor",
        daerah_id=4,
        daerah="KOTA TINGGI",
    )
    row.update(values)
    return row


OSH_DAY1 = [
    osh_plot(474748, planted_area=3.952, certified_area=3.952, cert_status="EXPIRED"),
    osh_plot(474749, planted_area=4.1, certified_area=4.1),
    osh_plot(474750, entity_name="FELCRA", state_id=6, state="Pahang", daerah_id=30),
]


def frames(
    spoc: list[dict[str, Any]], osh: list[dict[str, Any]], gm: list[dict[str, Any]]
) -> dict[str, pl.DataFrame]:
    """Validated frames with exactly the contract's columns and dtypes."""
    return {
        "spoc": pl.DataFrame(spoc, schema=SPOC_SCHEMA),
        "osh": pl.DataFrame(osh, schema=OSH_SCHEMA),
        "gm": pl.DataFrame(gm, schema=GM_SCHEMA),
    }


def edit_rows(rows: list[dict[str, Any]], edits: dict[int, dict[str, Any] | None]) -> list[dict]:
    """Rows with some replaced by updated copies and those mapped to None dropped."""
    out = []
    for row in rows:
        key = row["entity_smallholder_id"]
        if key not in edits:
            out.append(row)
        elif (update := edits[key]) is not None:
            out.append({**row, **update})
    return out


DAY2_UPDATED_AT = ts("2026-11-21T08:00:00")
SPOC_DAY2 = [
    *edit_rows(
        SPOC_DAY1,
        {
            1001: {
                "cert_status": "EXPIRED",
                "record_status": "UPDATED",
                "updated_at": DAY2_UPDATED_AT,
            },
            1002: {"deleted": True},
            1003: None,
            1009: {"deleted": False},
            1011: {"cert_status": "ACTIVE"},
        },
    ),
    plot(2001),
]
OSH_DAY2 = edit_rows(OSH_DAY1, {474748: {"planted_area": 4.0, "certified_area": 4.0}, 474750: None})
EXPECTED_CHANGES = {
    ("SPOC", 1001, "changed", "cert_status", "ACTIVE", "EXPIRED"),
    ("SPOC", 1001, "changed", "record_status", "NO CHANGE", "UPDATED"),
    ("SPOC", 1001, "changed", "updated_at", "2024-07-24 01:17:06.101+00", "2026-11-21 08:00:00+00"),
    ("SPOC", 1002, "removed", "deleted", "false", "true"),
    ("SPOC", 1003, "removed", None, None, None),
    ("SPOC", 1009, "new", "deleted", "true", "false"),
    ("SPOC", 2001, "new", None, None, None),
    ("OSH", 474748, "changed", "planted_area", "3.952", "4.0"),
    ("OSH", 474748, "changed", "certified_area", "3.952", "4.0"),
    ("OSH", 474750, "removed", None, None, None),
}
"""Every change built into day 2. Plot 1011 changes while deleted on both days: not reported."""


def build_smallholders(
    conn: duckdb.DuckDBPyConnection,
    registers: dict[str, pl.DataFrame],
    partition: str,
    captures: Mapping[str, curated.Capture] | None = None,
) -> pl.DataFrame:
    """``curated.smallholders`` of ``registers``, captured on time unless ``captures`` says."""
    geo = curated.geography(conn, **REFERENCES)
    return curated.smallholders(
        conn,
        **registers,
        geography=geo,
        partition=partition,
        captures=captures or curated.on_time(partition),
    )


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        yield connection


@pytest.fixture
def day1(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return build_smallholders(conn, frames(SPOC_DAY1, OSH_DAY1, GM_DAY1), "2026-11-20")


@pytest.fixture
def day2(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return build_smallholders(conn, frames(SPOC_DAY2, OSH_DAY2, GM_DAY1), "2026-11-21")


def test_geography_pairs_every_zone_and_state(conn: duckdb.DuckDBPyConnection) -> None:
    geo = curated.geography(conn, **REFERENCES)

    assert geo.height == ZONE_STATE.height + 2  # plus Labuan and Putrajaya, in no zone
    johor = geo.filter(pl.col("state_id") == 1)
    assert johor.select("zone_id", "zone").rows() == [(5, "Zon Selatan 1"), (6, "Zon Selatan 2")]
    zoneless = geo.filter(pl.col("zone_id").is_null())
    assert sorted(zoneless["state"]) == ["Labuan", "Putrajaya"]
    sarawak = geo.filter(pl.col("zone_id") == 11).row(0, named=True)
    assert (sarawak["zone"], sarawak["state"]) == ("Zon Sarawak", "Sarawak")
    assert sarawak["spoc_codes"] == ["D1", "D2", "T1"]
    kelantan = geo.filter(pl.col("state_id") == 3).row(0, named=True)
    assert kelantan["districts"] == [
        {"daerah_id": 20, "daerah": "GUA MUSANG"},
        {"daerah_id": 21, "daerah": "MACHANG"},
    ]
    assert geo.schema["zone_id"] == pl.Int32
    assert geo.schema["state_id"] == pl.Int32


def test_geography_keeps_a_zone_without_states(conn: duckdb.DuckDBPyConnection) -> None:
    geo = curated.geography(
        conn, **{**REFERENCES, "zone_state": ZONE_STATE.filter(pl.col("zone_id") != 11)}
    )

    sarawak_zone = geo.filter(pl.col("zone_id") == 11)
    assert sarawak_zone.select("zone", "state_id").rows() == [("Zon Sarawak", None)]
    assert sarawak_zone["spoc_codes"].to_list() == [["D1", "D2", "T1"]]
    assert geo.filter(pl.col("zone_id").is_null())["state"].sort().to_list() == [
        "Labuan",
        "Putrajaya",
        "Sarawak",
    ]


def test_smallholders_aligns_the_three_registers(day1: pl.DataFrame) -> None:
    counts = dict(day1.group_by("scheme").len().iter_rows())
    assert counts == {"SPOC": len(SPOC_DAY1), "OSH": len(OSH_DAY1), "GM": len(GM_DAY1)}
    assert day1["partition_date"].unique().to_list() == [dt.date(2026, 11, 20)]
    assert day1.schema["created_at"] == UTC
    assert day1.schema["state_id"] == pl.Int32
    osh = day1.filter(pl.col("scheme") == "OSH")
    assert osh["entity_code"].to_list() == ["ORS474748", "ORS474749", "ORS474750"]
    assert osh["deleted"].to_list() == [False, False, False]
    assert osh["zone_id"].null_count() == osh.height
    gm = day1.filter(pl.col("scheme") == "GM")
    assert gm["gm_code"].to_list() == ["GM01", "GM01"]
    assert day1.filter(pl.col("scheme") != "GM")["gm_code"].null_count() == day1.height - 2


def test_every_tidy_column_of_every_register_reaches_smallholders(day1: pl.DataFrame) -> None:
    """The aligned columns are read off the tidy schemas: none is left behind or retyped."""
    for scheme, table in curated.REGISTER_TABLES.items():
        for column in table_schema(table).columns:
            name = column.name if column.name in day1.columns else f"{column.name}_reported"
            assert day1.schema[name] == column.dtype, (scheme, column.name)


def test_smallholders_names_come_from_the_references(day1: pl.DataFrame) -> None:
    sample = day1.filter(pl.col("entity_smallholder_id") == 73042).row(0, named=True)
    assert (sample["zone"], sample["zone_reported"]) == ("Zon Sarawak", "Zon Timur 2")
    assert (sample["state"], sample["state_reported"]) == ("Kelantan", "Kelantan")

    unknown_zone = day1.filter(pl.col("entity_smallholder_id") == 1010).row(0, named=True)
    assert (unknown_zone["zone"], unknown_zone["zone_reported"]) == (None, "Zon X")
    gua_musang = day1.filter(pl.col("entity_smallholder_id") == 1008).row(0, named=True)
    assert (gua_musang["daerah"], gua_musang["daerah_reported"]) == ("GUA MUSANG", "Gua Musang")


def test_smallholders_flags_rows_that_disagree_with_the_references(day1: pl.DataFrame) -> None:
    spoc = day1.filter(pl.col("scheme") == "SPOC")
    raised = {
        row["entity_smallholder_id"]: {f for f in REFERENCE_FLAGS if row[f]}
        for row in spoc.iter_rows(named=True)
    }

    assert {k: v for k, v in raised.items() if v} == EXPECTED_FLAGS
    others = day1.filter(pl.col("scheme") != "SPOC").select(list(REFERENCE_FLAGS))
    assert not others.select(pl.any_horizontal(pl.all()).any()).item()
    assert day1.select(list(REFERENCE_FLAGS)).null_count().sum_horizontal().item() == 0


def test_usable_gps_means_no_gps_flag(day1: pl.DataFrame) -> None:
    unusable = day1.filter(~pl.col("gps_usable"))["entity_smallholder_id"].sort().to_list()
    assert unusable == [1006, 1008]


def test_smallholders_refuses_duplicate_plots(conn: duckdb.DuckDBPyConnection) -> None:
    registers = frames([*SPOC_DAY1, plot(1001)], OSH_DAY1, GM_DAY1)
    with pytest.raises(ValueError, match=r"2026-11-20: 1 plots .* SPOC 1001 \(2 rows\)"):
        build_smallholders(conn, registers, "2026-11-20")


def test_smallholders_names_missing_contract_columns(conn: duckdb.DuckDBPyConnection) -> None:
    registers = frames(SPOC_DAY1, OSH_DAY1, GM_DAY1)
    registers["gm"] = registers["gm"].drop("gm_code", "cert_status")
    with pytest.raises(ValueError, match="GM smallholders for partition 2026-11-20 lack the col"):
        build_smallholders(conn, registers, "2026-11-20")


def test_summary_adds_up_to_the_live_plots(
    conn: duckdb.DuckDBPyConnection, day1: pl.DataFrame
) -> None:
    summary = curated.certification_summary(conn, day1)

    keys = ["state_id", "zone_id", "scheme", "cert_status"]
    assert summary.select(keys).is_duplicated().sum() == 0
    live = day1.filter(~pl.col("deleted"))
    totals = ["plots", "planted_ha", "certified_ha", "plots_gps_usable"]
    by_scheme = summary.group_by("scheme").agg(pl.col(totals).sum()).sort("scheme")
    expected = (
        live.group_by("scheme")
        .agg(
            pl.len().alias("plots"),
            pl.col("planted_area").sum().alias("planted_ha"),
            pl.col("certified_area").sum().alias("certified_ha"),
            pl.col("gps_usable").sum().alias("plots_gps_usable"),
        )
        .sort("scheme")
    )
    assert_frame_equal(by_scheme, expected, check_dtypes=False)
    assert summary["plots"].sum() == len(SPOC_DAY1) + len(OSH_DAY1) + len(GM_DAY1) - 2


def test_summary_counts_distinct_mpob_numbers_and_gps_share(
    conn: duckdb.DuckDBPyConnection, day1: pl.DataFrame
) -> None:
    summary = curated.certification_summary(conn, day1)

    kedah = summary.filter((pl.col("state") == "Kedah") & (pl.col("cert_status") == "ACTIVE")).row(
        0, named=True
    )
    assert (kedah["plots"], kedah["mpob_numbers"]) == (2, 1)  # plots 1002 and 1003 share one
    osh_johor = summary.filter(
        (pl.col("scheme") == "OSH")
        & (pl.col("state") == "Johor")
        & (pl.col("cert_status") == "ACTIVE")
    ).row(0, named=True)
    assert osh_johor["mpob_numbers"] == 0
    pahang = summary.filter(
        (pl.col("state") == "Pahang")
        & (pl.col("scheme") == "SPOC")
        & (pl.col("cert_status") == "ACTIVE")
    ).row(0, named=True)
    assert (pahang["plots"], pahang["plots_gps_usable"]) == (2, 1)
    assert pahang["gps_usable_share"] == pytest.approx(0.5)


def test_changes_find_every_new_removed_and_changed_plot(
    conn: duckdb.DuckDBPyConnection, day1: pl.DataFrame, day2: pl.DataFrame
) -> None:
    result = curated.changes(
        conn,
        current=day2,
        previous=day1,
        current_partition="2026-11-21",
        previous_partition="2026-11-20",
    )

    found = set(
        result.select(
            "scheme",
            "entity_smallholder_id",
            "change_type",
            "column_name",
            "old_value",
            "new_value",
        ).iter_rows()
    )
    assert found == EXPECTED_CHANGES
    assert result.height == len(EXPECTED_CHANGES)
    assert result["partition_date"].unique().to_list() == [dt.date(2026, 11, 21)]
    assert result["compared_with"].unique().to_list() == [dt.date(2026, 11, 20)]
    assert result.schema == curated_table("changes").schema


def test_changes_say_which_partition_they_compared_against(
    conn: duckdb.DuckDBPyConnection, day1: pl.DataFrame, day2: pl.DataFrame
) -> None:
    available = ["2026-11-18", "2026-11-19", "2026-11-21"]
    previous = curated.previous_partition("2026-11-21", available)
    assert previous == "2026-11-19"

    result = curated.changes(
        conn,
        current=day2,
        previous=day1,
        current_partition="2026-11-21",
        previous_partition=previous,
    )
    assert result["compared_with"].unique().to_list() == [dt.date(2026, 11, 19)]


def test_previous_partition_of_the_first_snapshot_is_none() -> None:
    assert curated.previous_partition("2026-11-20", ["2026-11-20", "2026-11-22"]) is None
    with pytest.raises(ValueError, match="'20261120' is not a day"):
        curated.previous_partition("20261120", [])


def test_changes_without_a_baseline_are_empty(
    conn: duckdb.DuckDBPyConnection, day1: pl.DataFrame
) -> None:
    result = curated.changes(
        conn, current=day1, previous=None, current_partition="2026-11-20", previous_partition=None
    )

    assert result.is_empty()
    assert result.columns == [
        "partition_date",
        "snapshot_date",
        "late_capture",
        "compared_with",
        "compared_snapshot_date",
        "compared_late_capture",
        "scheme",
        "entity_smallholder_id",
        "change_type",
        "column_name",
        "old_value",
        "new_value",
    ]


def test_changes_refuse_a_previous_partition_without_its_frame(
    conn: duckdb.DuckDBPyConnection, day1: pl.DataFrame
) -> None:
    with pytest.raises(ValueError, match="2026-11-21: pass the previous smallholders frame"):
        curated.changes(
            conn,
            current=day1,
            previous=None,
            current_partition="2026-11-21",
            previous_partition="2026-11-20",
        )


def test_unchanged_snapshots_have_no_changes(
    conn: duckdb.DuckDBPyConnection, day1: pl.DataFrame
) -> None:
    result = curated.changes(
        conn,
        current=day1.with_columns(partition_date=pl.lit(dt.date(2026, 11, 21))),
        previous=day1,
        current_partition="2026-11-21",
        previous_partition="2026-11-20",
    )
    assert result.is_empty()


def test_registered_views_do_not_outlive_the_call(
    conn: duckdb.DuckDBPyConnection, day1: pl.DataFrame
) -> None:
    curated.certification_summary(conn, day1)
    views = conn.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    assert views == []


LATE_SPOC = {
    "SPOC": curated.Capture(dt.date(2026, 11, 24), True),
    "OSH": curated.Capture(dt.date(2026, 11, 21), False),
    "GM": curated.Capture(dt.date(2026, 11, 21), False),
}
"""Day 2 with the SPOC register backfilled three days late, OSH and GM captured on time."""


def _captures_by_scheme(frame: pl.DataFrame, *columns: str) -> dict[str, tuple[Any, ...]]:
    rows = frame.select("scheme", *columns).unique().sort("scheme")
    assert rows.get_column("scheme").is_unique().all(), "one capture per scheme and day"
    return {row[0]: tuple(row[1:]) for row in rows.iter_rows()}


def test_capture_is_read_off_the_raw_footer() -> None:
    on_time = {"snapshot_date": "2026-11-20", "late_capture": "false", "lag_days": "0"}
    late = {"snapshot_date": "2026-11-23", "late_capture": "true", "lag_days": "3"}
    assert curated.Capture.from_provenance(on_time, "2026-11-20") == curated.Capture(
        dt.date(2026, 11, 20), False
    )
    assert curated.Capture.from_provenance(late, "2026-11-20") == curated.Capture(
        dt.date(2026, 11, 23), True
    )
    # An older footer with only captured_at: 17:00 UTC is already the next day in Malaysia.
    older = {"captured_at": "2026-11-20T17:00:00+00:00"}
    assert curated.Capture.from_provenance(older, "2026-11-20") == curated.Capture(
        dt.date(2026, 11, 21), True
    )
    assert curated.Capture.from_provenance({}, "2026-11-20") == curated.Capture(None, None)


def test_smallholders_say_which_register_each_scheme_is(conn: duckdb.DuckDBPyConnection) -> None:
    frame = build_smallholders(conn, frames(SPOC_DAY2, OSH_DAY2, GM_DAY1), "2026-11-21", LATE_SPOC)
    assert frame.columns[:3] == ["partition_date", "snapshot_date", "late_capture"]
    assert frame.schema["snapshot_date"] == pl.Date
    assert frame.schema["late_capture"] == pl.Boolean
    assert _captures_by_scheme(frame, "snapshot_date", "late_capture") == {
        scheme: (capture.snapshot_date, capture.late_capture)
        for scheme, capture in LATE_SPOC.items()
    }


def test_smallholders_refuse_a_scheme_without_a_capture(conn: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ValueError, match=r"no capture .* for scheme\(s\) GM"):
        build_smallholders(
            conn,
            frames(SPOC_DAY1, OSH_DAY1, GM_DAY1),
            "2026-11-20",
            {k: v for k, v in curated.on_time("2026-11-20").items() if k != "GM"},
        )


def test_summary_and_changes_carry_the_captures_of_both_days(
    conn: duckdb.DuckDBPyConnection, day1: pl.DataFrame
) -> None:
    day2 = build_smallholders(conn, frames(SPOC_DAY2, OSH_DAY2, GM_DAY1), "2026-11-21", LATE_SPOC)
    summary = curated.certification_summary(conn, day2)
    assert _captures_by_scheme(summary, "snapshot_date", "late_capture") == {
        scheme: (capture.snapshot_date, capture.late_capture)
        for scheme, capture in LATE_SPOC.items()
    }
    found = curated.changes(
        conn,
        current=day2,
        previous=day1,
        current_partition="2026-11-21",
        previous_partition="2026-11-20",
    )
    columns = ("snapshot_date", "late_capture", "compared_snapshot_date", "compared_late_capture")
    day1_on_time = (dt.date(2026, 11, 20), False)
    assert _captures_by_scheme(found, *columns) == {
        "SPOC": (dt.date(2026, 11, 24), True, *day1_on_time),
        "OSH": (dt.date(2026, 11, 21), False, *day1_on_time),
    }


def test_changes_name_a_frame_without_capture_columns(
    conn: duckdb.DuckDBPyConnection, day1: pl.DataFrame, day2: pl.DataFrame
) -> None:
    with pytest.raises(ValueError, match="smallholders of 2026-11-20 lack snapshot_date"):
        curated.changes(
            conn,
            current=day2,
            previous=day1.drop("snapshot_date", "late_capture"),
            current_partition="2026-11-21",
            previous_partition="2026-11-20",
        )
    restored = curated.with_captures(
        day1.drop("snapshot_date", "late_capture"),
        curated.on_time("2026-11-20"),
        partition="2026-11-20",
    )
    assert_frame_equal(restored, day1)


def _edited(column: str, dtype: pl.DataType) -> pl.Expr:
    """Another value of ``column``'s type (a null becomes one)."""
    value = pl.col(column)
    if dtype == pl.String:
        return value.fill_null("") + "x"
    if dtype == pl.Boolean:
        return ~value.fill_null(False)
    if dtype.is_temporal():
        return value.fill_null(pl.lit(dt.date(2026, 1, 1)).cast(dtype)).dt.offset_by("1d")
    return value.fill_null(0) + 1


@settings(max_examples=40, deadline=None)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, 16),  # the day's 17 plots
            st.one_of(
                st.just("deleted"),  # liveness: as likely as all the rest together
                st.sampled_from([*curated.CHANGE_COLUMNS, "flag_gps_zero"]),
            ),
            st.booleans(),  # to null, or to another value
        ),
        max_size=8,
    ),
    dropped=st.sets(st.integers(0, 16), max_size=3),
)
@example(edits=[(0, "deleted", False), (13, "deleted", False)], dropped=set())
def test_comparing_only_plots_that_differ_loses_no_change(
    edits: list[tuple[int, str, bool]], dropped: set[int]
) -> None:
    """``changes`` compares in full only the plots whose compared values or liveness differ:
    on any edits, its rows are those of the full comparison of every plot."""
    with duckdb.connect() as conn:
        before = build_smallholders(conn, frames(SPOC_DAY1, OSH_DAY1, GM_DAY1), "2026-11-20")
        row = pl.int_range(pl.len())
        now = before.with_columns(partition_date=pl.lit(dt.date(2026, 11, 21)))
        for index, column, to_null in edits:
            dtype = now.schema[column]
            new = pl.lit(None, dtype) if to_null else _edited(column, dtype)
            now = now.with_columns(pl.when(row == index).then(new).otherwise(column).alias(column))
        now = now.filter(~row.is_in(list(dropped)))

        def compare() -> pl.DataFrame:
            return curated.changes(
                conn,
                current=now,
                previous=before,
                current_partition="2026-11-21",
                previous_partition="2026-11-20",
            )

        found = compare()
        nobody_quiet = pl.DataFrame(schema={k: before.schema[k] for k in curated.KEY})
        with mock.patch.object(curated, "_quiet_plots", return_value=nobody_quiet):
            assert_frame_equal(found, compare())
