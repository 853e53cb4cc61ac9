"""How runs execute: in one process, with the instance's database connections kept open.

On a small machine Dagster's multiprocess executor spends most of a run starting a Python process
per step (~3.5 s each, measured on a 2-core machine) while the steps themselves are I/O or
vectorised polars. A deployment that scales out by step would set another executor here.

The executor pools the run's instance (``mspo_pipeline.instance.keep_connections_open``): the
deployments name ``PooledInstance`` in their instance settings, so their runs are pooled already,
and this covers an instance configured without it. It is done in the executor because that is
the one piece of a run the code location chooses on every deployment.
"""

from types import MappingProxyType

import dagster as dg

from mspo_pipeline.instance import keep_connections_open

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


@dg.executor(name="in_process", config_schema=dg.in_process_executor.config_schema.as_field())
def in_process_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Dagster's in-process executor (same name and run config), the run's instance pooled."""
    keep_connections_open(init_context.instance)
    create = dg.in_process_executor.executor_creation_fn
    assert create is not None, "Dagster's in-process executor has a creation function"
    return create(init_context)


defs = dg.Definitions(executor=in_process_executor)
