"""The store's path scheme: the docs' layout for raw, one pattern for every other layer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from upath import UPath

from mspo_pipeline.lib.layout import relative_path, relative_pattern, stored_days


def test_raw_follows_the_docs_and_every_other_layer_one_pattern() -> None:
    assert (
        relative_path(["raw", "spoc_smallholders"], "2026-11-22")
        == "raw/mspo/api/smallholders/spoc/list-public/20261122/list-public.parquet"
    )
    assert (
        relative_path(["curated", "smallholders"], "2026-11-22")
        == "curated/mspo/smallholders/20261122/smallholders.parquet"
    )
    assert relative_pattern(["typed", "zones"], "*") == "typed/mspo/zones/*/zones.parquet"


def test_a_key_with_no_place_is_refused() -> None:
    with pytest.raises(ValueError, match="is not \\[<layer>, <table>\\]"):
        relative_pattern(["curated"], "*")


def test_stored_days_are_the_partition_folders_holding_the_file(tmp_path: Path) -> None:
    key = ["curated", "smallholders"]
    for day in ("2026-11-21", "2026-11-19"):
        path = tmp_path / relative_path(key, day)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
    (tmp_path / "curated/mspo/smallholders/20261120").mkdir()  # a day without its file
    stray = tmp_path / "curated/mspo/smallholders/backup/smallholders.parquet"
    stray.parent.mkdir()
    stray.write_bytes(b"")
    assert stored_days(UPath(tmp_path), key) == [dt.date(2026, 11, 19), dt.date(2026, 11, 21)]
