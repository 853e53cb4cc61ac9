"""Resources bound from the environment: everything a deployment changes is an env var.

A variable set when the code location loads is bound through ``dg.EnvVar``, so it is read when a
run starts (a test changes it without reloading code) and the UI shows which variable a value
came from without showing the value. An unset one is bound to README's default (the real API,
``./data``, no extra CA bundle, late captures allowed, H3 resolution 7 with cells of at least 5
plots); nothing is written to ``os.environ``.
"""

import os

import dagster as dg

from mspo_pipeline.lib.parquet_io import ParquetIOManager
from mspo_pipeline.lib.resources import CaptureSettings, HexGrid, MspoApi
from mspo_pipeline.lib.settings import ENV_DEFAULTS, flag


def from_env(name: str) -> str:
    """``name`` bound as a ``dg.EnvVar`` when it is set, else its default (module docstring)."""
    return dg.EnvVar(name) if name in os.environ else ENV_DEFAULTS[name]


def int_from_env(name: str) -> int:
    """An integer setting, bound like ``from_env``."""
    return dg.EnvVar.int(name) if name in os.environ else int(ENV_DEFAULTS[name])


defs = dg.Definitions(
    resources={
        "mspo_api": MspoApi(
            base_url=from_env("MSPO_API_BASE_URL"),
            ca_bundle=from_env("MSPO_CA_BUNDLE"),
            verify_tls=flag("MSPO_VERIFY_TLS", os.environ.get("MSPO_VERIFY_TLS"), default=True),
        ),
        "io_manager": ParquetIOManager(root=from_env("MSPO_DATA_ROOT")),
        "capture_settings": CaptureSettings(late_capture=from_env("MSPO_LATE_CAPTURE")),
        "hex_grid": HexGrid(
            resolution=int_from_env("MSPO_H3_RESOLUTION"),
            min_plots=int_from_env("MSPO_HEX_MIN_PLOTS"),
        ),
    }
)
