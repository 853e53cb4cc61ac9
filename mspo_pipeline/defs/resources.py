"""Resources bound from the environment: everything a deployment changes is an env var.

Unset variables fall back to the defaults in README's table (the real API, ``./data``, TLS on);
set ones are bound through ``dg.EnvVar`` so the UI shows where each value came from without
showing the value.
"""

import os

import dagster as dg

from mspo_pipeline.lib.api import MspoApi
from mspo_pipeline.lib.capture import LatePolicy
from mspo_pipeline.lib.catalog import DEFAULT_BASE_URL
from mspo_pipeline.lib.parquet_io import ParquetIOManager
from mspo_pipeline.lib.storage import DEFAULT_DATA_ROOT


class CaptureSettings(dg.ConfigurableResource):
    """How the raw layer treats a partition whose day is already over (DESIGN.md §5)."""

    late_capture: LatePolicy = LatePolicy.ALLOW


def _env(name: str, default: str) -> str:
    """``dg.EnvVar(name)`` when the variable is set, else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default  # type: ignore[return-value]


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean; use true or false")


def _late_policy() -> LatePolicy:
    value = os.environ.get("MSPO_LATE_CAPTURE") or LatePolicy.ALLOW.value
    try:
        return LatePolicy(value.strip().lower())
    except ValueError:
        raise ValueError(
            f"MSPO_LATE_CAPTURE={value!r}: use 'allow' (fill a missed day with a late capture) "
            "or 'refuse' (leave it empty)"
        ) from None


defs = dg.Definitions(
    resources={
        "mspo_api": MspoApi(
            base_url=_env("MSPO_API_BASE_URL", DEFAULT_BASE_URL),
            ca_bundle=os.environ.get("MSPO_CA_BUNDLE") or None,
            verify_tls=_env_bool("MSPO_VERIFY_TLS", default=True),
        ),
        "io_manager": ParquetIOManager(root=_env("MSPO_DATA_ROOT", DEFAULT_DATA_ROOT)),
        "capture_settings": CaptureSettings(late_capture=_late_policy()),
    }
)
