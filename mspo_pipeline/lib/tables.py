"""The curated tables by name, and what ``plot_history`` adds to a plot's columns.

Kept free of heavy imports: the SQL warehouse needs these names, and ``mspo sql`` opens in a
fraction of a second because it loads neither polars nor pandera.
"""

from __future__ import annotations

from dataclasses import dataclass

CURATED_TABLES = (
    "geography",
    "smallholders",
    "certification_summary",
    "changes",
    "plots_geo",
    "plots_hex",
)
"""Curated tables kept one file per day, each day whole."""
CAPTURES = "captures"
"""The capture ledger: asset ``curated/captures``, warehouse view ``captures``."""
PLOT_HISTORY = "plot_history"
"""One row per plot and version; each day's file holds the whole history up to that day."""


@dataclass(frozen=True, slots=True)
class VersionColumn:
    """One column ``plot_history`` adds to the plot's tidy columns."""

    name: str
    sql_type: str
    description: str


VERSION_COLUMNS = (
    VersionColumn("version", "INTEGER", "1 for the plot's first version, +1 for each next one."),
    VersionColumn("valid_from", "DATE", "First partition day (inclusive) this version was seen."),
    VersionColumn(
        "valid_from_late",
        "BOOLEAN",
        "valid_from's partition is a late capture (a later day's register): the version may "
        "have begun later than valid_from.",
    ),
    VersionColumn(
        "valid_to",
        "DATE",
        "Last partition day (inclusive) this version was seen; null while it is current.",
    ),
    VersionColumn(
        "valid_to_late",
        "BOOLEAN",
        "valid_to's partition is a late capture: the version may have lasted beyond valid_to. "
        "Null while current.",
    ),
    VersionColumn(
        "replaced_on",
        "DATE",
        "Partition day the next version (or the plot's absence) was first seen; null while "
        "current. Days between valid_to and replaced_on were not captured.",
    ),
    VersionColumn(
        "removed",
        "BOOLEAN",
        "The plot was absent from the register from valid_from (tidy columns null). A soft "
        "delete is a version with deleted = true, not a removal.",
    ),
)
"""What ``plot_history`` says about each version, between the key and the plot's tidy columns."""
