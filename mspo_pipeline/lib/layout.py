"""Where each asset partition lives in the store: the one spelling of the path scheme.

``["raw", <endpoint>]`` follows the API docs' layout (``raw/mspo/api/...``, from the catalogue);
every other ``[<layer>, <table>]`` is ``<layer>/mspo/<table>/YYYYMMDD/<table>.parquet``. The IO
manager writes there, the curated assets and the ledger list the days stored there, and the SQL
warehouse globs there.

Light on purpose (no polars): the warehouse and ``mspo sql`` import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mspo_pipeline.lib import catalog
from mspo_pipeline.lib.days import folder_day, partition_folder

if TYPE_CHECKING:
    import datetime as dt

    from upath import UPath


def relative_pattern(asset_key: Sequence[str], folder: str) -> str:
    """The file of ``asset_key`` in the partition folder ``folder`` (a ``YYYYMMDD`` name, or a
    glob standing for any), relative to the data root."""
    if len(asset_key) != 2:
        raise ValueError(
            f"asset key {list(asset_key)!r} is not [<layer>, <table>]; the MSPO store has no "
            "place for it"
        )
    layer, table = asset_key
    if layer == "raw":
        return catalog.endpoint(table).raw_key(folder)
    return f"{layer}/mspo/{table}/{folder}/{table}.parquet"


def relative_path(asset_key: Sequence[str], partition_key: str) -> str:
    """The file of one asset partition, relative to the data root."""
    folder = partition_folder(partition_key)  # a bad key is named before the asset key
    return relative_pattern(asset_key, folder)


def picture_path(asset_key: Sequence[str], partition_key: str) -> str:
    """A day's map of ``asset_key``, beside its Parquet file (``.../<table>.png``)."""
    return relative_path(asset_key, partition_key).removesuffix(".parquet") + ".png"


def stored_days(root: UPath, asset_key: Sequence[str]) -> list[dt.date]:
    """The days of ``asset_key`` that have a file under ``root``, oldest first, in one listing."""
    days = []
    for path in root.glob(relative_pattern(asset_key, "*")):
        day = folder_day(path.parent.name)
        if day is not None:
            days.append(day)
    return sorted(days)
