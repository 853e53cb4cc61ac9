"""BigQuery external tables over the curated Parquet files in the bucket: the statements, plain.

External tables, not loads: the Parquet files in the bucket stay the one record, each new day is
visible in BigQuery as soon as its file lands (no copy to keep in step, no load quota), and every
curated file carries its own ``partition_date`` column, so the documented ``YYYYMMDD/`` folders
need no Hive-style copy. ``CREATE OR REPLACE`` re-infers each table's schema from the files, so a
column added by a later version of the pipeline appears the next day.
"""

from __future__ import annotations

import re

from mspo_pipeline.lib.manifest import PARTITION_FOLDER_GLOB, view_specs
from mspo_pipeline.lib.roots import is_gcs
from mspo_pipeline.lib.tables import CAPTURES, CURATED_TABLES

PUBLISHED_TABLES = (*CURATED_TABLES, CAPTURES)
"""The curated tables and the capture ledger, under their warehouse view names. Not
``plot_history``: each of its daily files holds the whole history, so a table over all of them
would repeat every version once per day."""
_DATASET = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_]+")


def source_uri(data_root: str, table: str) -> str:
    """The one-wildcard Cloud Storage URI of every daily file of ``table``."""
    if not is_gcs(data_root):
        raise ValueError(
            f"BigQuery reads the curated tables from Cloud Storage, but MSPO_DATA_ROOT is "
            f"{data_root!r}: set it to gs://bucket[/prefix], or unset MSPO_BIGQUERY_DATASET"
        )
    (pattern,) = [spec.pattern for spec in view_specs(data_root) if spec.name == table]
    return pattern.replace("gcs://", "gs://", 1).replace(PARTITION_FOLDER_GLOB, "*")


def external_table_ddl(dataset: str, table: str, data_root: str) -> str:
    """``CREATE OR REPLACE EXTERNAL TABLE`` of ``table`` in ``dataset`` (``project.dataset``)."""
    if not _DATASET.fullmatch(dataset):
        raise ValueError(
            f"MSPO_BIGQUERY_DATASET={dataset!r} is not project.dataset (e.g. my-project.mspo)"
        )
    return (
        f"CREATE OR REPLACE EXTERNAL TABLE `{dataset}.{table}`\n"
        f"OPTIONS (format = 'PARQUET', uris = ['{source_uri(data_root, table)}'])"
    )
