"""The Kubernetes deployment's instance, against the packages that run it and a real run.

Dagster's chart turns ``deploy/helm/values.yaml`` into the instance's ``dagster.yaml``
(``helm/dagster/templates/helpers/instance/_run-launcher.tpl``, ``_compute-log-manager.tpl`` and
``_postgresql.tpl``); this renders the blocks those templates write for the keys the values file
sets, imports each class from the module the chart names, and validates each block's config
against that class's own schema: ``K8sRunLauncher`` (dagster-k8s), ``GCSComputeLogManager``
(dagster-gcp), the PostgreSQL storage (dagster-postgres) and the queued run coordinator. Then a
real run under the rendered ``compute_logs`` block writes its step logs into a bucket of the GCS
emulator (fake-gcs-server; google-cloud-storage follows ``STORAGE_EMULATOR_HOST``).

dagster-k8s and dagster-gcp are the ``k8s`` and ``gcp`` extras, which the image installs and the
development environment does not (dagster-gcp brings pandas, which pandera then imports in
every process): ``./dev test`` runs this module in ``.venv-deploy``, the image's packages, with
``MSPO_IMAGE_ENV=1``, which turns a missing package into a failure instead of a skip.
"""

import importlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

if os.environ.get("MSPO_IMAGE_ENV") != "1":
    pytest.importorskip("dagster_k8s")
    pytest.importorskip("dagster_gcp")

from dagster._config import process_config

from mspo_pipeline_tests import REPO_ROOT
from mspo_pipeline_tests.gcs import fake_gcs
from mspo_pipeline_tests.step_logs import STEP_OUTPUT, captured_stdout, instance_home

VALUES_FILE = REPO_ROOT / "deploy" / "helm" / "values.yaml"
NAMESPACE = "mspo"
"""README's namespace: the chart renders ``job_namespace`` as the release's namespace."""


CHART_ENV = {
    "DAGSTER_HOME": "/opt/dagster/dagster_home",
    "DAGSTER_PG_PASSWORD": "from-the-secret",
    "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "mspo-dagster-instance",
    "DAGSTER_K8S_PG_PASSWORD_SECRET": "mspo-dagster-postgresql",
    "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP": "mspo-dagster-pipeline-env",
}
"""What the chart sets in its pods for the ``env:`` sources it renders (stand-in values)."""


@pytest.fixture(autouse=True)
def _chart_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CHART_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    loaded = yaml.safe_load(VALUES_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def run_launcher(values: Mapping[str, Any]) -> dict[str, Any]:
    """``run_launcher`` as ``dagsterYaml.runLauncher.k8s`` renders it."""
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    config: dict[str, Any] = {
        "load_incluster_config": k8s["loadInclusterConfig"],
        "job_namespace": k8s.get("jobNamespace") or NAMESPACE,
        "image_pull_policy": k8s["imagePullPolicy"],
        "service_account_name": values["global"]["serviceAccountName"],
        "dagster_home": {"env": "DAGSTER_HOME"},
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "env_config_maps": [
            {"env": "DAGSTER_K8S_PIPELINE_RUN_ENV_CONFIGMAP"},
            *(item["name"] for item in k8s.get("envConfigMaps") or [] if "name" in item),
        ],
    }
    secrets = [item["name"] for item in k8s.get("envSecrets") or [] if "name" in item]
    if secrets:
        config["env_secrets"] = secrets
    if k8s.get("resources"):
        config["resources"] = k8s["resources"]
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def compute_logs(values: Mapping[str, Any]) -> dict[str, Any]:
    """``compute_logs`` as ``dagsterYaml.computeLogManager.gcs`` renders it."""
    gcs = values["computeLogManager"]["config"]["gcsComputeLogManager"]
    optional = {"localDir": "local_dir", "prefix": "prefix", "uploadInterval": "upload_interval"}
    config = {"bucket": gcs["bucket"]}
    config |= {rendered: gcs[key] for key, rendered in optional.items() if gcs.get(key)}
    return {
        "module": "dagster_gcp.gcs.compute_log_manager",
        "class": "GCSComputeLogManager",
        "config": config,
    }


def storage(values: Mapping[str, Any]) -> dict[str, Any]:
    """``storage`` as ``dagsterYaml.postgresql.config`` renders it (password from the Secret)."""
    postgres = values["postgresql"]
    return {
        "module": "dagster_postgres",
        "class": "DagsterPostgresStorage",
        "config": {
            "postgres_db": {
                "username": postgres["postgresqlUsername"],
                "password": {"env": "DAGSTER_PG_PASSWORD"},
                "hostname": postgres["postgresqlHost"],
                "db_name": postgres["postgresqlDatabase"],
                "port": postgres["service"]["port"],
                "scheme": postgres["postgresqlScheme"],
            }
        },
    }


def run_coordinator(values: Mapping[str, Any]) -> dict[str, Any]:
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"] or {}
    config = {"tag_concurrency_limits": queued["tagConcurrencyLimits"]}
    return {
        "module": "dagster._core.run_coordinator",
        "class": "QueuedRunCoordinator",
        "config": {k: v for k, v in config.items() if v},
    }


BLOCKS = {
    "run_launcher": run_launcher,
    "compute_logs": compute_logs,
    "storage": storage,
    "run_coordinator": run_coordinator,
}


def errors(block: Mapping[str, Any]) -> list[str]:
    """What the class named by ``block`` says of its config (empty: valid)."""
    klass = getattr(importlib.import_module(block["module"]), block["class"])
    result = process_config(klass.config_type(), block.get("config") or {})
    return [] if result.success else [error.message for error in result.errors or []]


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_each_rendered_block_is_valid_for_its_class(values: dict[str, Any], name: str) -> None:
    block = BLOCKS[name](values)
    assert errors(block) == [], f"{name}: {block}"


def test_a_block_the_class_does_not_accept_fails(values: dict[str, Any]) -> None:
    """The validation is the class's own: a key it does not know is refused."""
    block = compute_logs(values)
    block["config"]["upload_intervall"] = 30
    assert any("upload_intervall" in message for message in errors(block))
    launcher = run_launcher(values)
    launcher["config"]["image_pull_policy"] = 3
    assert errors(launcher)


def test_run_pods_get_the_resources_sized_for_them(values: dict[str, Any]) -> None:
    resources = run_launcher(values)["config"]["resources"]
    assert set(resources) == {"requests", "limits"}
    assert resources["limits"]["memory"].endswith(("Mi", "Gi"))


def test_a_runs_step_logs_land_in_the_bucket(values: dict[str, Any], tmp_path: Path) -> None:
    """The rendered ``compute_logs`` block, its bucket the emulator's: a run's stdout is there."""
    from google.cloud import storage as gcs

    block = compute_logs(values)
    block["config"]["bucket"] = "mspo-logs"
    home = instance_home(tmp_path / "dagster_home", block)
    with fake_gcs(tmp_path, "mspo-logs"), dg.DagsterInstance.from_config(str(home)) as instance:
        assert STEP_OUTPUT in captured_stdout(instance)
        bucket = gcs.Client(project="mspo-test").bucket("mspo-logs")
        blobs = list(bucket.list_blobs(prefix=f"{block['config']['prefix']}/"))
        stdout = [blob for blob in blobs if blob.name.endswith(".out")]
        assert stdout, [blob.name for blob in blobs]
        assert STEP_OUTPUT in stdout[0].download_as_text()
