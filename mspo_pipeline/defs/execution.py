"""How runs execute: in one process, with the instance's database connections kept open.

On a small machine Dagster's multiprocess executor spends most of a run starting a Python process
per step (~3.5 s each, measured on a 2-core machine) while the steps themselves are I/O or
vectorised polars. A deployment that scales out by step would set another executor here.

A run stores an event before it goes on for every step start and end, input, output,
materialisation and check result: about 650 for the daily run. On PostgreSQL (the Compose and GKE
deployments), dagster-postgres opens a new connection for each event and closes it after
(SQLAlchemy's ``NullPool``), so that no long-lived process holds an idle one: a TCP handshake,
SCRAM authentication and a new server process each time. On loopback the full-scale daily run
took 20.4 s that way and 11.9 s pooled (``benchmarks.daily --instance deployment``); across a
network to Cloud SQL each connection costs more. A run is not long-lived, so this executor gives
its instance the pool Dagster gives its webserver (``DagsterInstance.optimize_for_webserver``):
one connection kept open for the run, up to ``MAX_OVERFLOW`` more while threads write at once.
The instance is the run's own (its process's), so the webserver and the daemon are not
affected; on SQLite, which has no pool, nothing changes. It is done in the executor because that
is the one piece of a run the code location chooses on every deployment: the GKE chart writes
the instance's storage settings itself.
"""

import dagster as dg

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 20
"""The webserver's own defaults (``dagster-webserver --db-pool-recycle``,
``--db-pool-max-overflow``)."""
NO_STATEMENT_TIMEOUT = 0
"""A run's queries are never cut short, as without the pool."""


def keep_connections_open(instance: dg.DagsterInstance) -> None:
    """Pool ``instance``'s storage connections for as long as the process lives."""
    instance.optimize_for_webserver(
        statement_timeout=NO_STATEMENT_TIMEOUT,
        pool_recycle=POOL_RECYCLE_SECONDS,
        max_overflow=MAX_OVERFLOW,
    )


@dg.executor(name="in_process", config_schema=dg.in_process_executor.config_schema.as_field())
def in_process_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Dagster's in-process executor (same name and run config), the run's instance pooled."""
    keep_connections_open(init_context.instance)
    create = dg.in_process_executor.executor_creation_fn
    assert create is not None, "Dagster's in-process executor has a creation function"
    return create(init_context)


defs = dg.Definitions(executor=in_process_executor)
