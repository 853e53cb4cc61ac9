"""Which raw snapshots a stored file was derived from, carried from layer to layer.

The API keeps no history, so every file of every layer must say on its own how the day it holds
was captured: a late capture (a past day filled with a later register) must stay visible in the
typed, validated and curated files too, not only in raw. A raw file's footer holds its capture
(``source_url``, ``captured_at``, ``snapshot_date``, ``late_capture``, ``lag_days``); every
derived file's footer holds ``sources``, a JSON object of one ``Source`` per raw snapshot behind
it, keyed by endpoint, each with the raw file's SHA-256, plus a summary of them under the same
keys a raw file uses, so a reader of any one file finds ``late_capture`` where it expects it.

Assets get their inputs as ``StoredFrame`` (the IO manager reads the footer with the data) and
hand ``lineage_metadata(...)`` to their output, which the IO manager writes into the footer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import polars as pl

SOURCES = "sources"
"""Footer key of a derived file: JSON object, endpoint -> ``Source`` fields."""


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """A stored partition as an asset input: the frame and its footer's provenance.

    Annotate an input with this type (instead of ``pl.DataFrame``) to get the provenance too.
    """

    frame: pl.DataFrame
    provenance: Mapping[str, str]
    """The file's ``mspo.`` footer keys, prefix removed, values as text."""
    sha256: str | None = None
    """The file's SHA-256; the IO manager computes it for raw files only."""


@dataclass(frozen=True, slots=True)
class Source:
    """One raw snapshot behind a derived file."""

    endpoint: str
    source_url: str
    captured_at: str
    """UTC instant the API answered, ISO 8601."""
    snapshot_date: str
    """The Malaysian day whose register the API served, ISO 8601."""
    late_capture: bool
    lag_days: int
    raw_sha256: str | None


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() == "true"


def sources_of(endpoint: str, stored: StoredFrame) -> dict[str, Source]:
    """The raw snapshots behind ``stored``: itself if it is raw, else what its footer names.

    A raw file captured before provenance carried every key reads as unknown rather than
    failing: the history it holds is still worth deriving.
    """
    footer = stored.provenance
    if SOURCES in footer:
        return {name: Source(**fields) for name, fields in json.loads(footer[SOURCES]).items()}
    return {
        endpoint: Source(
            endpoint=endpoint,
            source_url=footer.get("source_url", "unknown"),
            captured_at=footer.get("captured_at", "unknown"),
            snapshot_date=footer.get("snapshot_date", "unknown"),
            late_capture=_flag(footer.get("late_capture")),
            lag_days=int(footer.get("lag_days") or 0),
            raw_sha256=stored.sha256,
        )
    }


def derived_sources(*inputs: StoredFrame) -> dict[str, Source]:
    """The raw snapshots behind several derived inputs, as one, by endpoint name (a file
    written before derived files named their sources adds none)."""
    merged: dict[str, Source] = {}
    for stored in inputs:
        if SOURCES in stored.provenance:
            merged.update(sources_of("", stored))
    return dict(sorted(merged.items()))


def lineage_metadata(sources: Mapping[str, Source]) -> dict[str, str | int | bool]:
    """Output metadata of a derived partition: the ``sources`` and their summary.

    The summary reads like a raw file's provenance: ``late_capture`` if any source was late,
    ``lag_days`` the largest lag, ``snapshot_date`` and ``captured_at`` the latest. These are
    also the values the Dagster UI plots per partition.
    """
    values: Iterable[Source] = sources.values()
    known = [source for source in values if source.snapshot_date != "unknown"]
    return {
        SOURCES: json.dumps({name: asdict(source) for name, source in sources.items()}),
        "late_capture": any(source.late_capture for source in sources.values()),
        "lag_days": max((source.lag_days for source in sources.values()), default=0),
        "snapshot_date": max((source.snapshot_date for source in known), default="unknown"),
        "captured_at": max((source.captured_at for source in known), default="unknown"),
    }
