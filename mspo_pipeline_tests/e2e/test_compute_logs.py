"""The Compose deployment's compute logs, as ``docker/dagster.yaml`` configures them: a real run's
step output lands beside the data, on disk for a local data root and in the data root's bucket
(the GCS emulator) for a ``gs://`` root, and is read back as the webserver reads it.

The bucket case needs dagster-gcp, the ``gcp`` extra: ``./dev test`` runs this module again in
``.venv-deploy`` (the image's packages) with ``MSPO_IMAGE_ENV=1``, where a missing package fails
instead of skipping.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

from mspo_pipeline.compute_logs import LOG_PREFIX
from mspo_pipeline.lib.roots import bucket_of
from mspo_pipeline_tests.deployment import DOCKER_DIR
from mspo_pipeline_tests.gcs import fake_gcs
from mspo_pipeline_tests.step_logs import STEP_OUTPUT, captured_stdout, instance_home

HAS_GCP = importlib.util.find_spec("dagster_gcp") is not None
needs_gcp = pytest.mark.skipif(
    not HAS_GCP and os.environ.get("MSPO_IMAGE_ENV") != "1",
    reason="dagster-gcp is the gcp extra: ./dev test runs this in .venv-deploy",
)


@pytest.fixture
def deployment_block() -> dict[str, Any]:
    """``compute_logs`` exactly as docker/dagster.yaml has it."""
    block: dict[str, Any] = yaml.safe_load((DOCKER_DIR / "dagster.yaml").read_text())[
        "compute_logs"
    ]
    return block


@pytest.fixture
def home(tmp_path: Path, deployment_block: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    home = instance_home(tmp_path / "dagster_home", deployment_block)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_gs_roots_name_their_bucket() -> None:
    assert bucket_of("gs://calee_data/mspo/daily") == "calee_data"
    assert bucket_of("gcs://calee_data") == "calee_data"


def test_without_dagster_home_or_local_dir_the_error_says_which_to_set(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSPO_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.delenv("DAGSTER_HOME")
    with (
        dg.DagsterInstance.from_config(str(home)) as instance,
        pytest.raises(ValueError, match=r"set local_dir in dagster\.yaml, or DAGSTER_HOME"),
    ):
        instance.compute_log_manager  # noqa: B018 (loading it is the point)


def test_a_local_data_root_keeps_step_logs_under_dagster_home(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSPO_DATA_ROOT", str(tmp_path / "data"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.compute_log_manager, LocalComputeLogManager)
        assert STEP_OUTPUT in captured_stdout(instance)
    logs = list((home / "storage").rglob("*.out"))
    assert [STEP_OUTPUT in path.read_text() for path in logs] == [True]


@pytest.mark.skipif(HAS_GCP, reason="the message for an environment without the gcp extra")
def test_a_bucket_without_dagster_gcp_says_which_extra_to_install(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MSPO_DATA_ROOT", "gs://mspo-data/prod")
    with (
        dg.DagsterInstance.from_config(str(home)) as instance,
        pytest.raises(ImportError, match=r"MSPO_DATA_ROOT=gs://mspo-data/prod.*`gcp` extra"),
    ):
        instance.compute_log_manager  # noqa: B018 (loading it is the point)


@needs_gcp
def test_a_gs_data_root_keeps_step_logs_in_its_bucket(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's stdout is uploaded to ``gs://BUCKET/dagster/compute-logs/``; a webserver on
    another machine, with nothing on its disk, reads it from there."""
    from dagster_gcp.gcs.compute_log_manager import GCSComputeLogManager
    from google.cloud import storage as gcs

    monkeypatch.setenv("MSPO_DATA_ROOT", "gs://mspo-data/prod")
    with fake_gcs(tmp_path, "mspo-data"):
        with dg.DagsterInstance.from_config(str(home)) as instance:
            assert isinstance(instance.compute_log_manager, GCSComputeLogManager)
            assert STEP_OUTPUT in captured_stdout(instance)
            run_id = instance.get_runs()[0].run_id
        blobs = list(gcs.Client(project="mspo-test").bucket("mspo-data").list_blobs())
        stdout = [blob for blob in blobs if blob.name.endswith(".out")]
        assert [blob.name.startswith(f"{LOG_PREFIX}/storage/{run_id}/") for blob in stdout] == [
            True
        ], [blob.name for blob in blobs]
        assert STEP_OUTPUT in stdout[0].download_as_text()

        shutil.rmtree(home / "storage" / run_id)
        with dg.DagsterInstance.from_config(str(home)) as webserver:
            manager = webserver.compute_log_manager
            (file_key,) = {Path(blob.name).stem for blob in stdout}
            log_key = manager.build_log_key_for_run(run_id, file_key)
            assert STEP_OUTPUT in (manager.get_log_data(log_key).stdout or b"").decode()
