"""Running the real definitions against the emulator, for end-to-end tests.

Resources are the ones ``defs/resources.py`` binds from the environment (the tests set the
variables), except the API's backoff, shortened so retry tests take milliseconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from mspo_pipeline.definitions import defs as load_defs
from mspo_pipeline.lib.days import today_in_malaysia
from mspo_pipeline.lib.resources import MspoApi

FAST_RETRIES = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "retry_after_max_s": 0.05}
JOB_NAME = "__ephemeral_asset_job__"
"""``dg.materialize``'s own name for the job it runs, kept so runs look the same to sensors."""


def definitions() -> dg.Definitions:
    return load_defs()


def resources() -> dict[str, Any]:
    bound = dict(definitions().resources or {})
    api: MspoApi = bound["mspo_api"]
    # Built anew, not ``model_copy(update=...)``: that changes the object but not the config
    # Dagster initialises the resource from, so runs kept the default backoff (seconds per retry).
    settings = {name: getattr(api, name) for name in api.model_fields_set}  # EnvVars stay EnvVars
    bound["mspo_api"] = MspoApi(**{**settings, **FAST_RETRIES})
    return bound


def materialize(
    partition: str | dt.date,
    selection: str | Iterable[str] = "*",
    *,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = False,
) -> dg.ExecuteInProcessResult:
    """Materialise ``selection`` (an asset selection string) of the real graph for one day:
    what ``dg.materialize`` does, with the job built once per selection and process."""
    return _job(selection if isinstance(selection, str) else tuple(selection)).execute_in_process(
        partition_key=str(partition),
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


@functools.cache
def _job(selection: str | tuple[str, ...]) -> dg.JobDefinition:
    """The job ``dg.materialize`` would build: the real graph's assets and checks, the test
    resources, ``selection`` selected. Building it took about 0.15 s a run; the suite makes
    hundreds of runs over a few selections. The resources read their variables when a run
    starts, so one job serves every test's environment."""
    graph = definitions()
    assets = [a for a in graph.assets or [] if isinstance(a, dg.AssetsDefinition | dg.AssetSpec)]
    checks = list(graph.asset_checks or [])
    job = dg.define_asset_job(
        JOB_NAME, selection=selection if isinstance(selection, str) else list(selection)
    )
    return dg.Definitions(
        jobs=[job], assets=[*assets, *checks], resources=resources()
    ).resolve_job_def(JOB_NAME)


def materializations(result: dg.ExecuteInProcessResult) -> Mapping[str, dg.AssetMaterialization]:
    """The run's materialisations by asset key string (``raw/states``)."""
    return {
        event.materialization.asset_key.to_user_string(): event.materialization
        for event in result.get_asset_materialization_events()
    }


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message and cause, as one text to search."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data is not None:
            error = event.step_failure_data.error
            while error is not None:
                texts.append(error.message)
                error = error.cause
    return "\n".join(texts)


def today() -> dt.date:
    return today_in_malaysia()
