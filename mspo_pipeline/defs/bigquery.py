"""Group ``bigquery``: the curated tables and the ledger as BigQuery external tables.

Off unless ``MSPO_BIGQUERY_DATASET`` (``project.dataset``) is set when the code location loads:
then one daily asset, ``bigquery/external_tables``, runs after the curated layer and issues one
``CREATE OR REPLACE EXTERNAL TABLE`` per table through dagster-gcp's ``BigQueryResource``
(``lib/bigquery.py`` says why external tables). dagster-gcp is the ``gcp`` extra, which the image
installs; setting the variable without it stops the code location from loading, with the fix.
"""

import os

import dagster as dg

from mspo_pipeline.defs.partitions import daily_partitions
from mspo_pipeline.lib.bigquery import PUBLISHED_TABLES, external_table_ddl
from mspo_pipeline.lib.parquet_io import ParquetUPathIOManager

DATASET_ENV = "MSPO_BIGQUERY_DATASET"
LOCATION_ENV = "MSPO_BIGQUERY_LOCATION"
EXTERNAL_TABLES_KEY = dg.AssetKey(["bigquery", "external_tables"])


def build_defs(dataset: str) -> dg.Definitions:
    try:
        from dagster_gcp import BigQueryResource
    except ImportError as error:
        raise ImportError(
            f"{DATASET_ENV}={dataset!r} asks for the BigQuery tables, which need dagster-gcp: "
            "install the gcp extra (pip install 'mspo-pipeline[gcp]'; the image has it), or "
            f"unset {DATASET_ENV}"
        ) from error

    @dg.asset(
        key=EXTERNAL_TABLES_KEY,
        group_name="bigquery",
        kinds={"bigquery", "parquet"},
        partitions_def=daily_partitions,
        deps=[dg.AssetKey(["curated", table]) for table in PUBLISHED_TABLES],
        description=(
            f"External tables in BigQuery dataset `{dataset}` over the curated Parquet files in "
            f"the bucket: {', '.join(PUBLISHED_TABLES)}. Re-created each day, so each table's "
            "schema follows its files; every row carries `partition_date`."
        ),
    )
    def external_tables(
        context: dg.AssetExecutionContext,
        bigquery: BigQueryResource,
        io_manager: dg.ResourceParam[ParquetUPathIOManager],
    ) -> dg.MaterializeResult:
        # The store the curated files were written to: the IO manager's root, as bound.
        root = str(io_manager.root)
        statements = {t: external_table_ddl(dataset, t, root) for t in PUBLISHED_TABLES}
        with bigquery.get_client() as client:
            for table, statement in statements.items():
                client.query(statement).result()
                context.log.info(f"{dataset}.{table}: external table over its daily files")
        return dg.MaterializeResult(
            metadata={
                "dataset": dataset,
                "tables": ", ".join(PUBLISHED_TABLES),
                "ddl": dg.MetadataValue.md(
                    "\n\n".join(f"```sql\n{s}\n```" for s in statements.values())
                ),
            }
        )

    return dg.Definitions(
        assets=[external_tables],
        resources={
            "bigquery": BigQueryResource(
                project=dataset.split(".", 1)[0],
                location=os.environ.get(LOCATION_ENV) or None,
            )
        },
    )


_dataset = (os.environ.get(DATASET_ENV) or "").strip()
defs = build_defs(_dataset) if _dataset else dg.Definitions()
