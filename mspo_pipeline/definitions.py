"""The code location: the ``defs`` of every module of the ``defs/`` folder, merged.

Not ``dg.load_from_defs_folder``, which finds the same definitions but also imports every
installed package that offers Dagster components, to list them in the UI. In the image that is
dagster-gcp, whose BigQuery client imports pandas: about 0.9 s and 95 MB more in every process
that loads the code location (the code server, each run; ``benchmarks.code_location``), for
components this project does not use. ``e2e/test_definitions.py`` checks that both loaders
find the same definitions, so a module that defines some and forgets its ``defs`` is caught.
"""

import functools
import importlib
import pkgutil
from types import ModuleType

import dagster as dg

import mspo_pipeline.defs


def defs_modules() -> list[ModuleType]:
    """Every module of ``defs/``, in name order."""
    package = mspo_pipeline.defs
    return [
        importlib.import_module(f"{package.__name__}.{module.name}")
        for module in pkgutil.iter_modules(package.__path__)
    ]


@functools.cache
def _load() -> dg.Definitions:
    return dg.Definitions.merge(
        *(
            module.defs
            for module in defs_modules()
            if isinstance(getattr(module, "defs", None), dg.Definitions)
        )
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Built once per process: Dagster asks for the code location several times per run (seven
    times in ``dagster asset materialize``), and every build assembled all the assets anew, 0.6 s
    each. The modules of ``defs/`` are imported once anyway, so a second build could only differ
    in ``MSPO_VERIFY_TLS``, which is read when the code location loads."""
    return _load()
