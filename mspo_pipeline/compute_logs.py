"""Step logs kept where the data is: in the data root's bucket for a ``gs://`` root, else on disk.

The Compose deployment's instance (``docker/dagster.yaml``) names this class as its compute log
manager, so one instance file serves both stores: with ``MSPO_DATA_ROOT=gs://BUCKET/...`` each
step's stdout and stderr go to ``gs://BUCKET/dagster/compute-logs/`` through dagster-gcp's
``GCSComputeLogManager`` (the path the Kubernetes deployment uses), and a production run's logs
outlive the container that ran it; with a local root they stay in ``local_dir``, as Dagster's
default keeps them.

Dagster builds an instance's configurable classes with ``from_config_value``, which may return
any ``ComputeLogManager``: this class is never instantiated, it picks the real one. The
webserver and the daemon import only this module (and dagster-gcp only for a bucket), never the
pipeline's code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster._core.instance.ref import compute_logs_directory
from dagster._core.storage.compute_log_manager import ComputeLogManager
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from mspo_pipeline.lib.roots import bucket_of, is_gcs

LOG_PREFIX = "dagster/compute-logs"
"""Where step logs go in the data root's bucket: beside the data's prefix, never inside it."""


class ComputeLogsBesideTheData(ComputeLogManager, ConfigurableClass):
    """Chooses the compute log manager from the data root; see the module docstring."""

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            "data_root": dg.StringSource,
            "local_dir": dg.Field(
                dg.StringSource,
                is_required=False,
                description="Where logs are written (and staged for upload to a bucket). "
                "Default: $DAGSTER_HOME/storage, as Dagster's own default.",
            ),
            "upload_interval": dg.Field(
                dg.Noneable(int),
                is_required=False,
                default_value=30,
                description="Seconds between uploads of a running step's logs to the bucket.",
            ),
        }

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> ComputeLogManager:
        data_root = config_value["data_root"]
        local_dir = config_value.get("local_dir")
        if not local_dir:
            if not os.environ.get("DAGSTER_HOME"):
                raise ValueError(
                    "compute_logs: set local_dir in dagster.yaml, or DAGSTER_HOME (the logs "
                    "default to $DAGSTER_HOME/storage, as Dagster's own)"
                )
            local_dir = compute_logs_directory(os.environ["DAGSTER_HOME"])
        if not is_gcs(data_root):
            return LocalComputeLogManager(base_dir=local_dir, inst_data=inst_data)
        try:
            from dagster_gcp.gcs.compute_log_manager import GCSComputeLogManager
        except ImportError as error:
            raise ImportError(
                f"MSPO_DATA_ROOT={data_root} keeps step logs in its bucket through dagster-gcp, "
                "which is the `gcp` extra: the image installs it; elsewhere run "
                "`uv sync --extra gcp`."
            ) from error
        return GCSComputeLogManager(
            bucket=bucket_of(data_root),
            prefix=LOG_PREFIX,
            local_dir=local_dir,
            upload_interval=config_value["upload_interval"],
            inst_data=inst_data,
        )
