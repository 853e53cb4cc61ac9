"""Resources bound from the environment: everything a deployment changes is an env var.

A variable set when the code location loads is bound through ``dg.EnvVar``, so it is read when a
run starts (a test changes it without reloading code) and the UI shows which variable a value
came from without showing the value. An unset one is bound to README's default (the real API,
``./data``, no extra CA bundle, late captures allowed); nothing is written to ``os.environ``.
"""

import os

import dagster as dg

from mspo_pipeline.lib.parquet_io import ParquetIOManager
from mspo_pipeline.lib.resources import CaptureSettings, MspoApi
from mspo_pipeline.lib.settings import ENV_DEFAULTS, flag


def from_env(name: str) -> str:
    """``name`` bound as a ``dg.EnvVar`` when it is set, else its default (module docstring)."""
    return dg.EnvVar(name) if name in os.environ else ENV_DEFAULTS[name]


defs = dg.Definitions(
    resources={
        "mspo_api": MspoApi(
            base_url=from_env("MSPO_API_BASE_URL"),
            ca_bundle=from_env("MSPO_CA_BUNDLE"),
            verify_tls=flag("MSPO_VERIFY_TLS", os.environ.get("MSPO_VERIFY_TLS"), default=True),
        ),
        "io_manager": ParquetIOManager(root=from_env("MSPO_DATA_ROOT")),
        "capture_settings": CaptureSettings(late_capture=from_env("MSPO_LATE_CAPTURE")),
    }
)
