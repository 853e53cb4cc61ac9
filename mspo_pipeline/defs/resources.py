"""Resources bound from the environment: everything a deployment changes is an env var.

Each setting is bound through ``dg.EnvVar``, so it is read when a run starts (a test or a
deployment changes it without reloading code) and the UI shows which variable a value came from
without showing the value. Unset variables get the defaults of README's table on load: the real
API, ``./data``, TLS on, late captures allowed.
"""

import os

import dagster as dg

from mspo_pipeline.lib.catalog import DEFAULT_BASE_URL
from mspo_pipeline.lib.late_capture import LatePolicy
from mspo_pipeline.lib.parquet_io import ParquetIOManager
from mspo_pipeline.lib.resources import CaptureSettings, MspoApi
from mspo_pipeline.lib.roots import DEFAULT_DATA_ROOT
from mspo_pipeline.lib.settings import flag

ENV_DEFAULTS = {
    "MSPO_API_BASE_URL": DEFAULT_BASE_URL,
    "MSPO_DATA_ROOT": DEFAULT_DATA_ROOT,
    "MSPO_CA_BUNDLE": "",
    "MSPO_LATE_CAPTURE": LatePolicy.ALLOW.value,
}


for _name, _default in ENV_DEFAULTS.items():
    os.environ.setdefault(_name, _default)

defs = dg.Definitions(
    resources={
        "mspo_api": MspoApi(
            base_url=dg.EnvVar("MSPO_API_BASE_URL"),
            ca_bundle=dg.EnvVar("MSPO_CA_BUNDLE"),
            verify_tls=flag("MSPO_VERIFY_TLS", os.environ.get("MSPO_VERIFY_TLS"), default=True),
        ),
        "io_manager": ParquetIOManager(root=dg.EnvVar("MSPO_DATA_ROOT")),
        "capture_settings": CaptureSettings(late_capture=dg.EnvVar("MSPO_LATE_CAPTURE")),
    }
)
