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
A connection kept open can be ended under the run (a database restart, a failover, an idle
timeout on the way): each is tried with ``SELECT 1`` as it is taken from the pool and replaced
if it is gone, as SQLAlchemy's ``pool_pre_ping`` does, which Dagster's pool does not set; a run
that connected for each event never noticed such an end, and a pooled one must not fail on it.
The instance is the run's own (its process's), so the webserver and the daemon are not
affected; on SQLite, which has no pool, nothing changes. It is done in the executor because that
is the one piece of a run the code location chooses on every deployment: the GKE chart writes
the instance's storage settings itself.
"""

from types import MappingProxyType
from typing import Any

import dagster as dg
from sqlalchemy import event, exc
from sqlalchemy.pool import QueuePool

RUN_PROCESS_ENV = MappingProxyType(
    {"_RJEM_MALLOC_CONF": "background_thread:true,dirty_decay_ms:200,muzzy_decay_ms:0"}
)
"""Set in the image (``docker/Dockerfile``) for every process, read by polars' allocator
(jemalloc) as polars loads: memory a step frees goes back to the system within 200 ms, by a
thread of the allocator's own, instead of staying resident for the steps after it (10 s and
more by default, which in a run of back-to-back steps is the whole run). The run's peak is then
closer to the largest step's own than to that step's on top of what the steps before it held:
at full scale 880 -> 851 MiB, no run time measurably lost (``benchmarks.daily --against`` a
checkout without it, 5 rounds); 1,048 -> 928 MiB before the largest steps' own peaks were cut.
polars is loaded with the code location, so a process cannot set it for itself: it must be in
the environment the process starts with."""
POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 20
"""The webserver's own defaults (``dagster-webserver --db-pool-recycle``,
``--db-pool-max-overflow``)."""
NO_STATEMENT_TIMEOUT = 0
"""A run's queries are never cut short, as without the pool."""


def _replace_if_ended(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection's check as it is taken: raising ``DisconnectionError`` makes the pool
    drop it and connect anew (SQLAlchemy's ``PoolEvents.checkout``)."""
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except Exception as error:  # whatever the driver raises, the connection cannot be used
        raise exc.DisconnectionError(f"a pooled connection was ended: {error}") from error


def keep_connections_open(instance: dg.DagsterInstance) -> None:
    """Pool ``instance``'s storage connections for as long as the process lives, each checked
    before use. The check listens on every ``QueuePool`` of the process: the pools this call
    creates are the only ones in a run (SQLite storages, and Dagster without this call, use
    none)."""
    if not event.contains(QueuePool, "checkout", _replace_if_ended):
        event.listen(QueuePool, "checkout", _replace_if_ended)
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
