"""The deployment's Dagster instance: its PostgreSQL connections kept open, checked before use.

dagster-postgres opens a new connection each time it touches the database and closes it after
(SQLAlchemy's ``NullPool``), so that no long-lived process holds an idle one: a TCP handshake,
SCRAM authentication and a new server process each time. Every event is stored that way, and a
run records about 650 (a step start and end, each input, output, materialisation and check
result), 122 of them as the run is created (by the daemon, for a schedule or a backfill) before
any step runs. On loopback the full-scale daily run took 28.6 s connecting for each event and
14.0 s pooled (``benchmarks.daily --instance deployment``); across a network to Cloud SQL each
connection costs more.

So a process gets the pool Dagster gives its webserver
(``DagsterInstance.optimize_for_webserver``): one connection kept open, up to ``MAX_OVERFLOW``
more while threads write at once. A connection kept open can be ended under a process (a
database restart, a failover, an idle timeout on the way): each is tried with ``SELECT 1`` as it
is taken from the pool and replaced if it is gone, as SQLAlchemy's ``pool_pre_ping`` does, which
Dagster's pool does not set; a process that connected each time never noticed such an end, and
a pooled one must not fail on it.

Two ways in. ``PooledInstance`` is the Compose deployment's instance class (``instance_class``
in ``docker/dagster.yaml``): every process there runs the project's image, so the daemon (which
creates the runs of schedules and backfills) and the webserver pool as well as the runs. The
code location's executor (``defs/execution.py``) pools its own run's instance whatever the
instance settings: on GKE the chart runs the webserver and the daemon from Dagster's images,
which cannot import this class, so there only the run pods pool. On SQLite, which has no pool,
nothing changes.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.instance.ref import InstanceRef
from sqlalchemy import event, exc
from sqlalchemy.pool import QueuePool

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 20
"""The webserver's own defaults (``dagster-webserver --db-pool-recycle``,
``--db-pool-max-overflow``)."""
NO_STATEMENT_TIMEOUT = 0
"""Queries are never cut short, as without the pool (the webserver sets its own timeout)."""

_pooled: weakref.WeakSet[dg.DagsterInstance] = weakref.WeakSet()


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
    before use; an instance already pooled is left as it is. The check listens on every
    ``QueuePool`` of the process: the pools this call creates, and the webserver's own, are the
    only ones (SQLite storages, and Dagster without this call, use none)."""
    if instance in _pooled:
        return
    if not event.contains(QueuePool, "checkout", _replace_if_ended):
        event.listen(QueuePool, "checkout", _replace_if_ended)
    instance.optimize_for_webserver(
        statement_timeout=NO_STATEMENT_TIMEOUT,
        pool_recycle=POOL_RECYCLE_SECONDS,
        max_overflow=MAX_OVERFLOW,
    )
    _pooled.add(instance)


class PooledInstance(dg.DagsterInstance):
    """Dagster's instance, its connections pooled as it is built (see the module docstring).
    Named in the instance settings as ``instance_class``; it takes no settings of its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        keep_connections_open(self)

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return {}

    @staticmethod
    def config_defaults(base_dir: str) -> Mapping[str, Any]:
        return InstanceRef.config_defaults(base_dir)
