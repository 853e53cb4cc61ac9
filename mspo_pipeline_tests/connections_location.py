"""A small code location for counting a run's database connections: ten assets with a check
each, once with the project's executor (``defs``) and once with Dagster's own (``dagsters``).
``benchmarks.bookkeeping`` builds its per-step graph from the same tables."""

# No "from __future__ import annotations": Dagster inspects the asset annotations at runtime.

import os
from collections.abc import Iterator

import dagster as dg
import psycopg2

from mspo_pipeline.defs.execution import in_process_executor

TABLES = 10
CHECK = "rows_present"
ENDED = "connections_ended"


def one_step_per_table(tables: int) -> list[dg.AssetsDefinition]:
    """``tables`` assets, each its own step, each yielding a number and one passing check."""

    def build(number: int) -> dg.AssetsDefinition:
        key = dg.AssetKey(["layer", f"table_{number}"])

        @dg.asset(key=key, check_specs=[dg.AssetCheckSpec(CHECK, asset=key)])
        def table() -> Iterator[dg.Output[int] | dg.AssetCheckResult]:
            yield dg.Output(number, metadata={"rows": number})
            yield dg.AssetCheckResult(passed=True)

        return table

    return [build(number) for number in range(tables)]


ASSETS = one_step_per_table(TABLES)


@dg.asset(key=dg.AssetKey(["layer", "database_restart"]), deps=[ASSETS[0]])
def database_restart() -> dg.Output[int]:
    """Ends every other connection to the database, as a restart or a failover does, midway
    through the run: the run's kept connection is among them."""
    conn = psycopg2.connect(
        host=os.environ["DAGSTER_POSTGRES_HOST"],
        port=os.environ["DAGSTER_POSTGRES_PORT"],
        user=os.environ["DAGSTER_POSTGRES_USER"],
        password=os.environ["DAGSTER_POSTGRES_PASSWORD"],
        dbname=os.environ["DAGSTER_POSTGRES_DB"],
    )
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            (ended,) = cursor.fetchone() or (0,)
    finally:
        conn.close()
    return dg.Output(int(ended), metadata={ENDED: int(ended)})


defs = dg.Definitions(assets=ASSETS, executor=in_process_executor)
dagsters = dg.Definitions(assets=ASSETS, executor=dg.in_process_executor)

restarted = dg.Definitions(assets=[*ASSETS, database_restart], executor=in_process_executor)
"""The project's executor, the database's connections ended midway through the run."""
