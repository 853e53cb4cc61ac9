"""The code location: everything Dagster sees is loaded from the ``defs/`` folder."""

import functools
from pathlib import Path

import dagster as dg


@functools.cache
def _load() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)


@dg.definitions
def defs() -> dg.Definitions:
    """Built once per process: Dagster asks for the code location several times per run (seven
    times in ``dagster asset materialize``), and every build assembled all the assets anew, 0.6 s
    each. The modules of ``defs/`` are imported once anyway, so a second build could only differ
    in ``MSPO_VERIFY_TLS``, which is read when the code location loads."""
    return _load()
