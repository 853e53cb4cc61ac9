"""Temporary files of killed writes are removed by the next write to their folder, and nothing
else is: not a live writer's file, not a file that is not ours."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from mspo_pipeline.lib import storage
from mspo_pipeline_tests.temp_writers import age, killed_writer, live_writer

FRAME = pl.DataFrame({"zoneId": [1, 2], "zone": ["North", "South"]})


def _write(folder: Path) -> Path:
    target = folder / "zones.parquet"
    storage.write_parquet_atomic(FRAME, storage.as_upath(target), {"mspo.test": "yes"})
    return target


def test_the_next_write_removes_what_a_killed_writer_left(tmp_path: Path) -> None:
    left = killed_writer(tmp_path)
    age(left, storage.STALE_TEMP_MIN_AGE_S + 1)
    not_ours = [tmp_path / "notes.parquet.tmp", tmp_path / ".mspo-notes.txt"]
    for path in not_ours:
        path.write_bytes(b"keep me")
        age(path, 3600)

    target = _write(tmp_path)

    assert not left.exists()
    assert pl.read_parquet(target).equals(FRAME)
    assert all(path.read_bytes() == b"keep me" for path in not_ours)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["zones.parquet", *(p.name for p in not_ours)]
    )


def test_a_live_writers_file_is_kept_however_old_it_is(tmp_path: Path) -> None:
    with live_writer(tmp_path) as temp:
        age(temp, 24 * 3600)  # a write that has been going on for a day

        target = _write(tmp_path)
        assert storage.remove_stale_temps(tmp_path, min_age_s=0) == []

        assert temp.read_bytes() == b"PAR1 half a file"
        assert target.is_file()
    assert temp.exists()  # killed now: the next sweep may take it
    age(temp, storage.STALE_TEMP_MIN_AGE_S + 1)
    assert storage.remove_stale_temps(tmp_path) == [temp]


def test_a_file_just_created_is_kept_until_its_writer_has_had_time_to_lock_it(
    tmp_path: Path,
) -> None:
    """Between mkstemp and flock a live writer's file is unlocked for an instant."""
    fresh = tmp_path / ".mspo-abc123.parquet.tmp"
    fresh.write_bytes(b"")

    assert storage.remove_stale_temps(tmp_path) == []
    assert fresh.exists()
    age(fresh, storage.STALE_TEMP_MIN_AGE_S + 1)
    assert storage.remove_stale_temps(tmp_path) == [fresh]


def test_a_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    _write(tmp_path)
    _write(tmp_path)

    assert [p.name for p in tmp_path.iterdir()] == ["zones.parquet"]
