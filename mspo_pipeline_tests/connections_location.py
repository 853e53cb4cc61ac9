"""A small code location for counting a run's database connections: ten assets with a check
each, once with the project's executor (``defs``) and once with Dagster's own (``dagsters``).
``benchmarks.bookkeeping`` builds its per-step graph from the same tables."""

# No "from __future__ import annotations": Dagster inspects the asset annotations at runtime.

from collections.abc import Iterator

import dagster as dg

from mspo_pipeline.defs.execution import in_process_executor

TABLES = 10
CHECK = "rows_present"


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
defs = dg.Definitions(assets=ASSETS, executor=in_process_executor)
dagsters = dg.Definitions(assets=ASSETS, executor=dg.in_process_executor)
