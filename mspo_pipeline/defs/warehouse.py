"""The store's manifest as an asset: ``warehouse/manifest``, refreshed at the end of every day.

``mspo sql`` and ``mspo warehouse`` read the manifest (``lib/manifest.py``) instead of listing
the store and reading every footer, which is what keeps them opening in under a second after
years of daily partitions. Every stored asset of its day is upstream of it, so it runs last in
the daily job and in every backfilled day, and the ledger-only run that follows a failed capture
refreshes it too. It looks only at its own day's files (one look per table, and the footers of
new or rewritten files) and copies the other days' rows inside DuckDB, so its cost grows only
with the manifest's size (0.2 s after three years). It has no
automation condition: re-deriving a day rewrites files the manifest already lists, and only a
run that stores a new day needs it (a day materialised alone, outside the daily job, needs
this asset for that day, or ``mspo manifest``).

One manifest is shared by every day, so its refreshes must not interleave: the asset runs in the
``mspo_manifest`` pool, which the deployment's ``default_limit: 1`` limits to one at a time.
``mspo manifest`` rebuilds it from a full listing, for a store written before the manifest or
changed by hand.
"""

import dagster as dg

from mspo_pipeline.defs.partitions import daily_partitions
from mspo_pipeline.lib import manifest
from mspo_pipeline.lib.catalog import ENDPOINTS
from mspo_pipeline.lib.days import partition_date
from mspo_pipeline.lib.parquet_io import ParquetUPathIOManager
from mspo_pipeline.lib.tables import CAPTURES, CURATED_TABLES, PLOT_HISTORY

MANIFEST_KEY = dg.AssetKey(["warehouse", "manifest"])
MANIFEST_POOL = "mspo_manifest"
STORED_KEYS = (
    *(
        dg.AssetKey([layer, e.name])
        for layer in ("raw", *manifest.DERIVED_LAYERS)
        for e in ENDPOINTS
    ),
    *(dg.AssetKey(["curated", table]) for table in (*CURATED_TABLES, CAPTURES, PLOT_HISTORY)),
)
"""Every asset that stores one Parquet file per day: what the manifest lists."""
MANIFEST_DEPS = tuple(key for key in STORED_KEYS if key.path[0] not in ("raw", "typed"))
"""What the manifest waits for: every table's validated, quarantine and curated files. A table's
raw and typed files come before its validated one, so the manifest runs after them all the same;
and each direct dependency costs the step a lookup of that asset's data version in the instance
(all 64 took about 1 s of every run on SQLite, half of a daily run's lookups)."""


@dg.asset(
    key=MANIFEST_KEY,
    group_name="warehouse",
    kinds={"duckdb", "parquet"},
    partitions_def=daily_partitions,
    deps=list(MANIFEST_DEPS),
    pool=MANIFEST_POOL,
    description=(
        f"The store's manifest (`{manifest.MANIFEST}` under the data root): every stored "
        "Parquet file with its view, day, size and schema, so `mspo sql` opens without listing "
        "the store. Each day's run refreshes that day's rows."
    ),
)
def manifest_asset(
    context: dg.AssetExecutionContext, io_manager: dg.ResourceParam[ParquetUPathIOManager]
) -> dg.MaterializeResult:
    day = partition_date(context.partition_key)
    root = str(io_manager.root)
    listed = manifest.update(root, days={day})  # every day, the first time
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(manifest.manifest_path(root)),
            "files": listed.files,
            "days": listed.days,
            "bytes": dg.MetadataValue.int(listed.bytes),
            "files of this day": listed.files_on_days,
            "views": listed.views,
            "schemas": listed.schemas,
        }
    )


defs = dg.Definitions(assets=[manifest_asset])
