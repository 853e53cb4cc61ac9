import polars as pl

from mspo_pipeline.lib.schemas import curated_table
from mspo_pipeline.lib.ui_metadata import counts, flag_counts


def test_counts_are_the_rows_meeting_each_condition_nulls_not_counted() -> None:
    frame = pl.DataFrame(
        {
            "scheme": ["SPOC", "SPOC", "OSH", None],
            "removed": [False, True, None, False],
        }
    )
    assert counts(
        frame,
        {
            "spoc": pl.col("scheme") == "SPOC",
            "spoc_kept": (pl.col("scheme") == "SPOC") & ~pl.col("removed"),
            "removed": pl.col("removed"),
            "gm": pl.col("scheme") == "GM",
        },
    ) == {"spoc": 2, "spoc_kept": 1, "removed": 1, "gm": 0}
    assert counts(frame.clear(), {"spoc": pl.col("scheme") == "SPOC"}) == {"spoc": 0}


def test_flag_counts_are_plain_ints_per_declared_flag() -> None:
    flags = curated_table("plots_geo").flags
    raised = [[True, False, True], [True, True, None], [False, False, False]]
    frame = pl.DataFrame({flag: raised[n % len(raised)] for n, flag in enumerate(flags)})
    found = flag_counts("plots_geo", frame)
    assert found == {flag: (2, 2, 0)[n % len(raised)] for n, flag in enumerate(flags)}
    assert all(type(value) is int for value in found.values())
