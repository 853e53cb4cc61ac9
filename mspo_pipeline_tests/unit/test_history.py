"""Plot history on hand-made days: exact versions, the incremental fold against the all-at-once
build, and the register as of a day.

The hand-made sequence has every case on purpose: a new plot, a change, a change back to an
earlier value (a new version, not the old one), a soft delete, a removal and a reappearance, a
late day (SPOC captured three days late on 2026-11-03) and a gap (2026-11-04 and -05 missing).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from mspo_pipeline.lib import curated, history
from mspo_pipeline_tests.unit.test_curated import (
    GM_DAY1,
    OSH_DAY1,
    OSH_DAY2,
    SPOC_DAY1,
    SPOC_DAY2,
    build_smallholders,
    edit_rows,
    frames,
)

SCHEMA: dict[str, Any] = {
    "partition_date": pl.Date,
    "snapshot_date": pl.Date,
    "late_capture": pl.Boolean,
    "scheme": pl.String,
    "entity_smallholder_id": pl.Int64,
    "cert_status": pl.String,
    "certified_area": pl.Float64,
    "deleted": pl.Boolean,
}
"""A ``smallholders`` frame cut down to a few tidy columns: the history treats any the same."""

Plot = tuple[str, int, str, float, bool]


def day(
    partition: str, plots: Sequence[Plot], late: Mapping[str, int] | None = None
) -> pl.DataFrame:
    """One day's smallholders; ``late`` maps a scheme to how many days late it was captured."""
    date = dt.date.fromisoformat(partition)
    lag = dict(late or {})
    rows = [
        {
            "partition_date": date,
            "snapshot_date": date + dt.timedelta(days=lag.get(scheme, 0)),
            "late_capture": lag.get(scheme, 0) > 0,
            "scheme": scheme,
            "entity_smallholder_id": plot_id,
            "cert_status": status,
            "certified_area": area,
            "deleted": deleted,
        }
        for scheme, plot_id, status, area, deleted in plots
    ]
    return pl.DataFrame(rows, schema=SCHEMA)


S1, S2 = ("SPOC", 1, "ACTIVE", 2.0, False), ("SPOC", 2, "ACTIVE", 1.0, False)
DAYS = {
    "2026-11-01": day("2026-11-01", [S1, S2, ("OSH", 7, "ACTIVE", 2.0, False)]),
    "2026-11-02": day(
        "2026-11-02",
        [
            ("SPOC", 1, "EXPIRED", 2.0, False),  # changes
            S2,
            ("SPOC", 3, "ACTIVE", 3.0, False),  # new
            ("OSH", 7, "ACTIVE", 2.0, False),
        ],
    ),
    "2026-11-03": day(
        "2026-11-03",
        [
            S1,  # back to its first value: a third version
            # SPOC 2 absent: removed
            ("SPOC", 3, "ACTIVE", 3.0, True),  # soft-deleted: a version, not a removal
            ("OSH", 7, "ACTIVE", 2.0, False),
        ],
        late={"SPOC": 3},
    ),
    # 2026-11-04 and 2026-11-05 were never captured.
    "2026-11-06": day(
        "2026-11-06",
        [
            S1,
            S2,  # back, exactly as it was: a new version after its removal
            ("SPOC", 3, "ACTIVE", 3.0, True),
            ("OSH", 7, "ACTIVE", 2.5, False),  # changes across the gap
        ],
    ),
    "2026-11-07": day(
        "2026-11-07",
        [S1, S2, ("SPOC", 3, "ACTIVE", 3.0, True), ("OSH", 8, "ACTIVE", 4.0, False)],
    ),  # OSH 7 gone, OSH 8 new
}

D = dt.date.fromisoformat
EXPECTED_COLUMNS = [
    "scheme",
    "entity_smallholder_id",
    "version",
    "valid_from",
    "valid_from_late",
    "valid_to",
    "valid_to_late",
    "replaced_on",
    "removed",
    "cert_status",
    "certified_area",
    "deleted",
]
EXPECTED = pl.DataFrame(
    [
        ("OSH", 7, 1, D("2026-11-01"), False, D("2026-11-03"), False, D("2026-11-06"), False,
         "ACTIVE", 2.0, False),
        ("OSH", 7, 2, D("2026-11-06"), False, D("2026-11-06"), False, D("2026-11-07"), False,
         "ACTIVE", 2.5, False),
        ("OSH", 7, 3, D("2026-11-07"), False, None, None, None, True, None, None, None),
        ("OSH", 8, 1, D("2026-11-07"), False, None, None, None, False, "ACTIVE", 4.0, False),
        ("SPOC", 1, 1, D("2026-11-01"), False, D("2026-11-01"), False, D("2026-11-02"), False,
         "ACTIVE", 2.0, False),
        ("SPOC", 1, 2, D("2026-11-02"), False, D("2026-11-02"), False, D("2026-11-03"), False,
         "EXPIRED", 2.0, False),
        ("SPOC", 1, 3, D("2026-11-03"), True, None, None, None, False, "ACTIVE", 2.0, False),
        ("SPOC", 2, 1, D("2026-11-01"), False, D("2026-11-02"), False, D("2026-11-03"), False,
         "ACTIVE", 1.0, False),
        ("SPOC", 2, 2, D("2026-11-03"), True, D("2026-11-03"), True, D("2026-11-06"), True,
         None, None, None),
        ("SPOC", 2, 3, D("2026-11-06"), False, None, None, None, False, "ACTIVE", 1.0, False),
        ("SPOC", 3, 1, D("2026-11-02"), False, D("2026-11-02"), False, D("2026-11-03"), False,
         "ACTIVE", 3.0, False),
        ("SPOC", 3, 2, D("2026-11-03"), True, None, None, None, False, "ACTIVE", 3.0, True),
    ],
    schema=history.history_schema(pl.Schema(SCHEMA)),
    orient="row",
)  # fmt: skip
"""Every version of the hand-made days, by hand."""


@pytest.fixture
def conn() -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect() as connection:
        yield connection


def late_by_scheme(frame: pl.DataFrame) -> dict[str, bool | None]:
    """What the raw footers would say of a day: its late_capture per scheme."""
    rows = frame.select("scheme", "late_capture").unique()
    return {scheme: late for scheme, late in rows.iter_rows()}


def fold(
    conn: duckdb.DuckDBPyConnection, days: Mapping[str, pl.DataFrame]
) -> dict[str, pl.DataFrame]:
    """The history of every day, each built only from the day before's history (as the asset)."""
    built: dict[str, pl.DataFrame] = {}
    previous: str | None = None
    for partition in sorted(days):
        built[partition] = history.merge_history(
            history=built[previous] if previous else None,
            history_partition=previous,
            history_late=late_by_scheme(days[previous]) if previous else {},
            smallholders=days[partition],
            partition=partition,
        )
        previous = partition
    return built


def register(frame: pl.DataFrame) -> pl.DataFrame:
    """A day's smallholders as the history should give them back: no per-day columns."""
    return frame.drop(curated.DAY_COLUMNS).sort(curated.KEY)


def test_every_version_of_the_hand_made_days(conn: duckdb.DuckDBPyConnection) -> None:
    built = fold(conn, DAYS)
    newest = built["2026-11-07"]
    assert newest.columns == EXPECTED_COLUMNS
    assert_frame_equal(newest, EXPECTED)


def test_each_day_only_adds_to_the_day_before(conn: duckdb.DuckDBPyConnection) -> None:
    """Closed versions are never rewritten; a current one is closed at most once."""
    built = fold(conn, DAYS)
    days = sorted(built)
    for before, after in itertools.pairwise(days):
        old, new = built[before], built[after]
        closed = old.filter(pl.col("replaced_on").is_not_null())
        assert_frame_equal(
            closed,
            new.join(
                closed.select(*curated.KEY, "version"), on=[*curated.KEY, "version"], how="semi"
            ),
        )
        # Every plot ever seen has exactly one current row (its version or its removal).
        assert new.filter(pl.col("replaced_on").is_null()).select(curated.KEY).is_unique().all()
        assert (
            new.select(curated.KEY).n_unique() == new.filter(pl.col("replaced_on").is_null()).height
        )


def test_the_history_is_sorted_by_plot_and_version(conn: duckdb.DuckDBPyConnection) -> None:
    newest = fold(conn, DAYS)["2026-11-07"]
    assert_frame_equal(newest, newest.sort(*curated.KEY, "version"))


@pytest.mark.parametrize("max_pieces", [10_000, 1], ids=["pieces", "gathered"])
def test_a_history_stored_out_of_order_still_folds_into_order(
    conn: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, max_pieces: int
) -> None:
    """The day's new versions are placed among the kept ones by a binary search, which needs the
    stored history in plot order: one that is not is sorted whole, to the same result. A day
    that cuts the history into too many pieces is gathered, to the same result too."""
    monkeypatch.setattr(history, "_MAX_PIECES", max_pieces)
    built = fold(conn, DAYS)
    before, after = sorted(DAYS)[-2:]
    assert_frame_equal(built[after], history.build_history(conn, pl.concat(DAYS.values())))
    for stored in (built[before], built[before].reverse()):
        assert_frame_equal(
            history.merge_history(
                history=stored,
                history_partition=before,
                history_late=late_by_scheme(DAYS[before]),
                smallholders=DAYS[after],
                partition=after,
            ),
            built[after],
        )


def test_building_all_days_at_once_gives_the_same_history(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    at_once = history.build_history(conn, pl.concat(DAYS.values()))
    assert_frame_equal(at_once, EXPECTED)


@pytest.mark.parametrize("partition", list(DAYS))
def test_as_of_a_captured_day_is_that_days_register(
    conn: duckdb.DuckDBPyConnection, partition: str
) -> None:
    newest = fold(conn, DAYS)["2026-11-07"]
    assert_frame_equal(history.as_of(newest, D(partition)), register(DAYS[partition]))


def test_as_of_a_day_not_captured_is_the_register_last_captured(
    conn: duckdb.DuckDBPyConnection,
) -> None:
    newest = fold(conn, DAYS)["2026-11-07"]
    for missing in ("2026-11-04", "2026-11-05"):
        assert_frame_equal(history.as_of(newest, D(missing)), register(DAYS["2026-11-03"]))
    assert history.as_of(newest, D("2026-10-31")).is_empty()
    assert_frame_equal(history.as_of(newest, D("2026-12-31")), register(DAYS["2026-11-07"]))


def test_days_are_folded_in_date_order(conn: duckdb.DuckDBPyConnection) -> None:
    first = fold(conn, {"2026-11-02": DAYS["2026-11-02"]})["2026-11-02"]
    with pytest.raises(ValueError, match="days are folded in date order"):
        history.merge_history(
            history=first,
            history_partition="2026-11-02",
            history_late={},
            smallholders=DAYS["2026-11-01"],
            partition="2026-11-01",
        )
    with pytest.raises(ValueError, match="pass the previous history and its partition together"):
        history.merge_history(
            history=None,
            history_partition="2026-11-01",
            history_late={},
            smallholders=DAYS["2026-11-02"],
            partition="2026-11-02",
        )


def test_a_column_retyped_or_added_between_days_changes_only_what_it_says() -> None:
    """A pipeline upgrade may widen a column's type or add one: equal values are the same
    version whatever their type, and an added column that is null says nothing new."""
    first = day("2026-11-01", [S1, S2])
    second = day("2026-11-02", [S1, S2]).with_columns(
        pl.col("certified_area").cast(pl.Float32),  # the same values, narrower
        pl.when(pl.col("entity_smallholder_id") == 2)
        .then(pl.lit("MSPO-2"))
        .otherwise(None)
        .alias("cert_no"),  # new: null for plot 1, a value for plot 2
    )
    old = history.merge_history(
        history=None, history_partition=None, history_late={}, smallholders=first,
        partition="2026-11-01",
    )  # fmt: skip
    new = history.merge_history(
        history=old, history_partition="2026-11-01", history_late={"SPOC": False},
        smallholders=second, partition="2026-11-02",
    )  # fmt: skip
    assert new.columns[-1] == "cert_no"
    versions = new.select("entity_smallholder_id", "version", "replaced_on", "cert_no")
    assert versions.rows() == [
        (1, 1, None, None),  # unchanged: still its first version
        (2, 1, D("2026-11-02"), None),
        (2, 2, None, "MSPO-2"),
    ]


def test_history_of_full_smallholders_frames(conn: duckdb.DuckDBPyConnection) -> None:
    """Every column of the real ``smallholders`` is part of a version; the provenance is not."""
    day3_rows = edit_rows(
        SPOC_DAY2, {1001: {"cert_status": "ACTIVE", "record_status": "NO CHANGE"}}
    )
    days = {
        "2026-11-20": build_smallholders(conn, frames(SPOC_DAY1, OSH_DAY1, GM_DAY1), "2026-11-20"),
        "2026-11-21": build_smallholders(conn, frames(SPOC_DAY2, OSH_DAY2, GM_DAY1), "2026-11-21"),
        "2026-11-22": build_smallholders(
            conn,
            frames(day3_rows, OSH_DAY2, GM_DAY1),
            "2026-11-22",
            {**curated.on_time("2026-11-22"), "GM": curated.Capture(D("2026-11-25"), True)},
        ),
    }
    newest = fold(conn, days)["2026-11-22"]
    assert newest.columns[9:] == [
        c for c in days["2026-11-22"].columns if c not in (*curated.DAY_COLUMNS, *curated.KEY)
    ]
    for partition, frame in days.items():
        assert_frame_equal(history.as_of(newest, D(partition)), register(frame))
    # A late capture of an unchanged register opens no version: only the boundary days say late.
    gm = newest.filter(pl.col("scheme") == "GM")
    assert gm.get_column("version").to_list() == [1, 1]
    plot_1001 = newest.filter(pl.col("entity_smallholder_id") == 1001)
    assert plot_1001.get_column("cert_status").to_list() == ["ACTIVE", "EXPIRED", "ACTIVE"]
    assert_frame_equal(history.build_history(conn, pl.concat(days.values())), newest)


# Property: any sequence of days, folded one by one, equals the history built all at once, and
# gives back every day's register.

_STATES = st.one_of(
    st.none(),  # absent that day
    st.tuples(st.sampled_from(["ACTIVE", "EXPIRED"]), st.sampled_from([1.0, 2.0]), st.booleans()),
)


@st.composite
def _days(draw: st.DrawFn) -> dict[str, pl.DataFrame]:
    plots = [("SPOC", 1), ("SPOC", 2), ("SPOC", 3), ("OSH", 1), ("OSH", 2)]
    offsets = draw(st.lists(st.integers(0, 12), min_size=1, max_size=7, unique=True))
    built = {}
    for offset in sorted(offsets):
        partition = (D("2026-11-01") + dt.timedelta(days=offset)).isoformat()
        rows = []
        for scheme, plot_id in plots:
            state = draw(_STATES)
            if state is not None:
                rows.append((scheme, plot_id, *state))
        if not rows:  # an empty register is refused upstream (raw never stores one)
            continue
        late = {s: draw(st.sampled_from([0, 0, 2])) for s in ("SPOC", "OSH")}
        built[partition] = day(partition, rows, late)
    return built


@settings(max_examples=25, deadline=None)
@given(days=_days())
def test_folding_day_by_day_equals_building_at_once(days: dict[str, pl.DataFrame]) -> None:
    if not days:
        return
    with duckdb.connect() as conn:
        built = fold(conn, days)
        newest = built[max(days)]
        assert_frame_equal(newest, history.build_history(conn, pl.concat(days.values())))
    for partition, frame in days.items():
        assert_frame_equal(history.as_of(newest, D(partition)), register(frame))
