"""The deployment's event log: Dagster's PostgreSQL storage, with its connection kept open.

``docker/dagster.yaml`` names ``PooledPostgresEventLogStorage`` as its ``event_log_storage``.

Dagster's ``PostgresEventLogStorage`` opens a new connection for every event it stores and
closes it right after (SQLAlchemy's ``NullPool``), so that no process ever holds an idle one. A
run stores an event for every step start and end, input, output, materialisation and check
result: about 650 for the daily run. Each new connection is a TCP handshake, a SCRAM
authentication and a new server process: about 9 ms on loopback (``benchmarks.bookkeeping``),
more to a database across a network, so the run spent more time connecting than its data work
takes. This is the same storage, built by Dagster's own ``from_config_value``, with the pool
Dagster gives its webserver (``optimize_for_webserver``): one connection kept open per process,
up to ``MAX_OVERFLOW`` more while threads write at once, each replaced after an hour. A run
worker, the daemon and the webserver each keep one connection open while they live.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from dagster._serdes.config_class import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 20
"""The webserver's own defaults (``dagster-webserver --db-pool-recycle``,
``--db-pool-max-overflow``)."""
NO_STATEMENT_TIMEOUT = 0
"""A run's queries are never cut short, as with Dagster's own storage; the webserver sets its
own timeout when it starts."""


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """``PostgresEventLogStorage`` whose connections are pooled instead of opened per event.

    Configured exactly like ``dagster_postgres.event_log.PostgresEventLogStorage`` (its
    ``postgres_db`` or ``postgres_url``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.optimize_for_webserver(
            statement_timeout=NO_STATEMENT_TIMEOUT,
            pool_recycle=POOL_RECYCLE_SECONDS,
            max_overflow=MAX_OVERFLOW,
        )

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> Self:
        # As the parent's, which names its own class rather than ``cls``.
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
