"""deploy/helm/values.yaml against Dagster's Helm chart, without a cluster or Helm.

Every key path in the values file must be one the chart reads: the paths this project relies
on are recorded below, each with the type or the allowed values that the chart's values schema
gives it, as read in dagster-io/dagster (helm/dagster/values.schema.json at
bdb8547fab497826eeec292bc160b549a0a329ef; the user-deployments subchart's
helm/dagster/charts/dagster-user-deployments/values.schema.json at
b8d7b2530862566f7ae5450a0e5387ab04c784c6; for keys that schema types only as "object", the
templates that read them, helm/dagster/templates/configmap-instance.yaml at
835892b45aaa0917bc97102968fe062155b64e19 and helm/dagster/schema/.../subschema/daemon.py). A typo
or an invented key fails here instead of being ignored by Helm. Then the project's own choices:
one pod per run sized from the measured peak, GCS compute logs, Cloud SQL through psycopg2,
the pools, the same instance settings as docker/dagster.yaml, Workload Identity and no key files.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from mspo_pipeline.defs.execution import RUN_PROCESS_ENV
from mspo_pipeline.defs.partitions import API_POOL
from mspo_pipeline.defs.warehouse import MANIFEST_POOL
from mspo_pipeline_tests.deployment import DOCKER_DIR, REPO_ROOT

VALUES_FILE = REPO_ROOT / "deploy" / "helm" / "values.yaml"

# Measured: a full-scale daily run on a store that holds yesterday, the whole graph in one
# process (README "Benchmarks", whose "MB" are the MiB of the process's ru_maxrss): the highest
# of the day's runs.
MEASURED_PEAK_BYTES = 910 * 1024 * 1024
MEMORY_LIMIT_HEADROOM = 1.5

# ---- The chart's values schema, as far as this file relies on it ------------------------------
# A path's parts are mapping keys; `[]` is any item of a list. The spec is the JSON types the
# schema allows at that path ("string", "integer", "boolean", "object", "array", "null"), or
# {"enum": [...]} for an enumeration. A path marked FREE is an object the schema leaves open
# (Kubernetes objects, instance config): its keys are not walked here, but checked by the
# project's own tests below.

FREE = "free"
Spec = Mapping[str, Any]

_IMAGE: dict[str, Spec] = {
    "repository": {"types": ["string"]},
    "tag": {"types": ["string", "integer", "null"]},
    "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
}
_INT_SOURCE_OR_NULL = {"types": ["integer", "object", "null"]}  # IntSource: int or {env: ...}
_STRING_SOURCE = {"types": ["string", "object"]}  # StringSource: str or {env: ...}
_RESOURCES = {"types": ["object"], FREE: True}  # io.k8s.api.core.v1.ResourceRequirements

CHART_SCHEMA: dict[str, Spec] = {
    # Global / ServiceAccount
    "global": {"types": ["object"]},
    "global.serviceAccountName": {"types": ["string"]},
    "global.postgresqlSecretName": {"types": ["string"]},
    "serviceAccount": {"types": ["object"]},
    "serviceAccount.create": {"types": ["boolean"]},
    "serviceAccount.name": {"types": ["string"]},
    "serviceAccount.annotations": {"types": ["object"], FREE: True, "values": "string"},
    # PostgreSQL
    "generatePostgresqlPasswordSecret": {"types": ["boolean"]},
    "postgresql": {"types": ["object"]},
    "postgresql.enabled": {"types": ["boolean"]},
    "postgresql.postgresqlHost": {"types": ["string"]},
    "postgresql.postgresqlUsername": {"types": ["string"]},
    "postgresql.postgresqlDatabase": {"types": ["string"]},
    "postgresql.postgresqlScheme": {"types": ["string"]},
    "postgresql.service": {"types": ["object"]},
    "postgresql.service.port": {"types": ["integer"]},
    # UserDeployments (main schema) and the subchart's serviceAccount (subchart schema)
    "dagster-user-deployments": {"types": ["object"]},
    "dagster-user-deployments.enabled": {"types": ["boolean"]},
    "dagster-user-deployments.enableSubchart": {"types": ["boolean"]},
    "dagster-user-deployments.serviceAccount": {"types": ["object"]},
    "dagster-user-deployments.serviceAccount.create": {"types": ["boolean"]},
    "dagster-user-deployments.serviceAccount.name": {"types": ["string"]},
    "dagster-user-deployments.serviceAccount.annotations": {
        "types": ["object"],
        FREE: True,
        "values": "string",
    },
    "dagster-user-deployments.deployments": {"types": ["array"]},
    "dagster-user-deployments.deployments[]": {"types": ["object"]},
    "dagster-user-deployments.deployments[].name": {"types": ["string"]},
    "dagster-user-deployments.deployments[].image": {"types": ["object"]},
    **{f"dagster-user-deployments.deployments[].image.{k}": v for k, v in _IMAGE.items()},
    "dagster-user-deployments.deployments[].codeServerArgs": {"types": ["array"]},
    "dagster-user-deployments.deployments[].codeServerArgs[]": {"types": ["string"]},
    "dagster-user-deployments.deployments[].port": {"types": ["integer"]},
    "dagster-user-deployments.deployments[].includeConfigInLaunchedRuns": {"types": ["object"]},
    "dagster-user-deployments.deployments[].includeConfigInLaunchedRuns.enabled": {
        "types": ["boolean"]
    },
    # env: {"type": "object", "additionalProperties": {"type": "string"}} (or a list of EnvVar)
    "dagster-user-deployments.deployments[].env": {
        "types": ["object", "array"],
        FREE: True,
        "values": "string",
    },
    "dagster-user-deployments.deployments[].envSecrets": {"types": ["array"]},
    "dagster-user-deployments.deployments[].envSecrets[]": {"types": ["object"]},
    "dagster-user-deployments.deployments[].envSecrets[].name": {"types": ["string"]},
    "dagster-user-deployments.deployments[].resources": _RESOURCES,
    # RunLauncher / K8sRunLauncherConfig
    "runLauncher": {"types": ["object"]},
    "runLauncher.type": {"enum": ["CeleryK8sRunLauncher", "K8sRunLauncher", "CustomRunLauncher"]},
    "runLauncher.config": {"types": ["object"]},
    "runLauncher.config.k8sRunLauncher": {"types": ["object", "null"]},
    "runLauncher.config.k8sRunLauncher.imagePullPolicy": _IMAGE["pullPolicy"],
    "runLauncher.config.k8sRunLauncher.loadInclusterConfig": {"types": ["boolean"]},
    "runLauncher.config.k8sRunLauncher.resources": {"types": ["object", "null"], FREE: True},
    # ComputeLogManager / GCSComputeLogManager
    "computeLogManager": {"types": ["object"]},
    "computeLogManager.type": {
        "enum": [
            "NoOpComputeLogManager",
            "AzureBlobComputeLogManager",
            "GCSComputeLogManager",
            "S3ComputeLogManager",
            "CustomComputeLogManager",
        ]
    },
    "computeLogManager.config": {"types": ["object"]},
    "computeLogManager.config.gcsComputeLogManager": {"types": ["object", "null"]},
    "computeLogManager.config.gcsComputeLogManager.bucket": _STRING_SOURCE,
    "computeLogManager.config.gcsComputeLogManager.prefix": {"types": ["string", "object", "null"]},
    "computeLogManager.config.gcsComputeLogManager.uploadInterval": {"types": ["integer", "null"]},
    # Daemon / RunCoordinator / QueuedRunCoordinatorConfig
    "dagsterDaemon": {"types": ["object"]},
    "dagsterDaemon.runCoordinator": {"types": ["object"]},
    "dagsterDaemon.runCoordinator.enabled": {"types": ["boolean"]},
    "dagsterDaemon.runCoordinator.type": {"enum": ["QueuedRunCoordinator", "CustomRunCoordinator"]},
    "dagsterDaemon.runCoordinator.config": {"types": ["object"]},
    "dagsterDaemon.runCoordinator.config.queuedRunCoordinator": {"types": ["object", "null"]},
    **{
        f"dagsterDaemon.runCoordinator.config.queuedRunCoordinator.{key}": spec
        for key, spec in {
            "maxConcurrentRuns": _INT_SOURCE_OR_NULL,
            "tagConcurrencyLimits": {"types": ["array", "null"]},
            "dequeueIntervalSeconds": _INT_SOURCE_OR_NULL,
            "dequeueNumWorkers": _INT_SOURCE_OR_NULL,
            "dequeueUseThreads": {"types": ["boolean", "null"]},
            "blockOpConcurrencyLimitedRuns": {"types": ["object", "null"]},
        }.items()
    },
    # The schema types runMonitoring and runRetries as "object"; these keys are the ones
    # templates/configmap-instance.yaml reads (and, for runRetries, subschema/daemon.py's
    # RunRetries model: enabled, maxRetries, retryOnAssetOrOpFailure).
    "dagsterDaemon.runMonitoring": {"types": ["object"]},
    "dagsterDaemon.runMonitoring.enabled": {"types": ["boolean"]},
    "dagsterDaemon.runRetries": {"types": ["object"]},
    "dagsterDaemon.runRetries.enabled": {"types": ["boolean"]},
    "dagsterDaemon.runRetries.maxRetries": {"types": ["integer", "null"]},
    "dagsterDaemon.runRetries.retryOnAssetOrOpFailure": {"types": ["boolean", "null"]},
    # Telemetry
    "telemetry": {"types": ["object"]},
    "telemetry.enabled": {"types": ["boolean"]},
    # Copied into the instance's dagster.yaml as it is: validated with Dagster's schema below.
    "additionalInstanceConfig": {"types": ["object"], FREE: True},
}

# Required by the schema where this file sets the parent (the chart's defaults fill the rest).
REQUIRED: dict[str, list[str]] = {
    "serviceAccount": ["create", "name", "annotations"],
    "dagster-user-deployments.serviceAccount": ["create", "name", "annotations"],
    "dagster-user-deployments.deployments[]": ["name", "image", "port"],
    "dagster-user-deployments.deployments[].image": ["repository", "pullPolicy"],
    "runLauncher": ["type", "config"],
    "computeLogManager": ["type", "config"],
    "computeLogManager.config.gcsComputeLogManager": ["bucket"],
    "dagsterDaemon.runCoordinator": ["enabled", "type", "config"],
    "postgresql.service": ["port"],
}

# The schema's if/then: a type requires its own config block.
CONFIG_FOR_TYPE: dict[str, dict[str, str]] = {
    "runLauncher": {
        "CeleryK8sRunLauncher": "celeryK8sRunLauncher",
        "K8sRunLauncher": "k8sRunLauncher",
        "CustomRunLauncher": "customRunLauncher",
    },
    "computeLogManager": {
        "AzureBlobComputeLogManager": "azureBlobComputeLogManager",
        "GCSComputeLogManager": "gcsComputeLogManager",
        "S3ComputeLogManager": "s3ComputeLogManager",
        "CustomComputeLogManager": "customComputeLogManager",
    },
    "dagsterDaemon.runCoordinator": {
        "QueuedRunCoordinator": "queuedRunCoordinator",
        "CustomRunCoordinator": "customRunCoordinator",
    },
}

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


# ---- Helpers ------------------------------------------------------------------------------------


def _load_values(text: str | None = None) -> dict[str, Any]:
    values = yaml.safe_load(VALUES_FILE.read_text() if text is None else text)
    assert isinstance(values, dict)
    return values


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return _load_values()


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, value) in the file, not descending into the schema's free objects."""
    if path:
        yield path, node
        if CHART_SCHEMA.get(path, {}).get(FREE):
            return
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _walk(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child, f"{path}[]")


def _json_type(value: Any) -> str:
    # bool before int: True is an int in Python, never an "integer" in JSON.
    for name in ("boolean", "null", "string", "integer", "object", "array"):
        if type(value) in _JSON_TYPES[name]:
            return name
    return type(value).__name__


def _get(values: Mapping[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node[part]
    return node


def _deployment(values: Mapping[str, Any]) -> dict[str, Any]:
    deployments = values["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1, "one code location: mspo_pipeline"
    return deployments[0]


def _quantity_bytes(quantity: str) -> float:
    """A Kubernetes memory quantity (512Mi, 1.5Gi, 2G, 1000000) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G)?", str(quantity))
    assert match, f"not a memory quantity: {quantity!r}"
    return float(match[1]) * units.get(match[2] or "", 1)


def _quantity_cores(quantity: str | int | float) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m)?", str(quantity))
    assert match, f"not a CPU quantity: {quantity!r}"
    return float(match[1]) / (1000 if match[2] else 1)


def _rendered_instance(values: Mapping[str, Any]) -> dict[str, Any]:
    """The instance settings the chart renders from these values, as its
    templates/configmap-instance.yaml does for the keys this file sets (storage and the pending
    run launcher and compute log manager left out)."""
    daemon = values["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    instance: dict[str, Any] = {}
    if coordinator["enabled"]:
        assert coordinator["type"] == "QueuedRunCoordinator"
        queued = coordinator["config"]["queuedRunCoordinator"] or {}
        # `config:` is rendered when any setting is non-empty; max_concurrent_runs then always.
        rendered_config = {k: v for k, v in queued.items() if v not in (None, [], {}, False, "")}
        instance["run_coordinator"] = {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
        }
        if rendered_config:
            instance["run_coordinator"]["config"] = {
                "max_concurrent_runs": (
                    -1 if queued.get("maxConcurrentRuns") is None else queued["maxConcurrentRuns"]
                ),
                **(
                    {"tag_concurrency_limits": queued["tagConcurrencyLimits"]}
                    if queued.get("tagConcurrencyLimits")
                    else {}
                ),
            }
    monitoring = daemon["runMonitoring"]
    if monitoring["enabled"]:
        instance["run_monitoring"] = {
            "enabled": True,
            "start_timeout_seconds": monitoring.get("startTimeoutSeconds"),
            "poll_interval_seconds": monitoring.get("pollIntervalSeconds"),
            "free_slots_after_run_end_seconds": monitoring.get("freeSlotsAfterRunEndSeconds"),
        }
    retries = daemon["runRetries"]
    if retries["enabled"]:
        instance["run_retries"] = {"enabled": True}
        if retries.get("maxRetries"):
            instance["run_retries"]["max_retries"] = retries["maxRetries"]
        if retries.get("retryOnAssetOrOpFailure") is not None:
            instance["run_retries"]["retry_on_asset_or_op_failure"] = retries[
                "retryOnAssetOrOpFailure"
            ]
    instance["telemetry"] = {"enabled": values["telemetry"]["enabled"]}
    extra = values.get("additionalInstanceConfig") or {}
    duplicated = set(extra) & set(instance)
    assert not duplicated, f"set by the chart and in additionalInstanceConfig: {duplicated}"
    return {**instance, **extra}


# ---- The values file against the recorded schema ----------------------------------------------


def test_every_key_path_is_one_the_chart_reads(values: dict[str, Any]) -> None:
    unknown = [path for path, _ in _walk(values) if path not in CHART_SCHEMA]
    assert not unknown, f"not in the chart's values schema (typo, or not recorded): {unknown}"


def test_every_value_has_the_schema_type(values: dict[str, Any]) -> None:
    for path, value in _walk(values):
        spec = CHART_SCHEMA[path]
        if "enum" in spec:
            assert value in spec["enum"], f"{path}: {value!r} not one of {spec['enum']}"
        else:
            assert _json_type(value) in spec["types"], (
                f"{path}: {_json_type(value)} ({value!r}), the schema allows {spec['types']}"
            )
        if spec.get("values") == "string" and isinstance(value, dict):
            not_strings = {k: v for k, v in value.items() if not isinstance(v, str)}
            assert not not_strings, f"{path}: values must be strings (quote them): {not_strings}"


def test_required_keys_and_type_specific_config_are_present(values: dict[str, Any]) -> None:
    walked = dict(_walk(values))
    for parent, keys in REQUIRED.items():
        nodes = [node for path, node in _walk(values) if path == parent]
        assert nodes, f"{parent} not set"
        for node in nodes:
            missing = [key for key in keys if key not in node]
            assert not missing, f"{parent}: the schema requires {missing}"
    for parent, config_key_by_type in CONFIG_FOR_TYPE.items():
        node = walked[parent]
        assert config_key_by_type[node["type"]] in node["config"], (
            f"{parent}.type {node['type']} needs config.{config_key_by_type[node['type']]}"
        )
        others = set(node["config"]) - {config_key_by_type[node["type"]]}
        assert not others, f"{parent}: config for another type ({others}) is ignored"


# ---- The project's choices -----------------------------------------------------------------------


def test_the_image_is_flagged_until_it_holds_dagster_k8s_and_dagster_gcp() -> None:
    lock = (REPO_ROOT / "uv.lock").read_text()
    header = VALUES_FILE.read_text().split("\n\n", 1)[0]
    packages_locked = all(
        f'name = "{package}"' in lock for package in ("dagster-k8s", "dagster-gcp")
    )
    if packages_locked:
        assert "PENDING" not in header, "both packages are locked now: drop the PENDING flag"
    else:
        assert header.startswith("# PENDING"), "the values file must open with the PENDING flag"
        assert "dagster-k8s" in header
        assert "dagster-gcp" in header


def test_each_run_is_its_own_pod(values: dict[str, Any]) -> None:
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["runLauncher"]["config"]["k8sRunLauncher"]["loadInclusterConfig"] is True
    assert _deployment(values)["includeConfigInLaunchedRuns"]["enabled"] is True


def test_run_pods_are_sized_from_the_measured_peak(values: dict[str, Any]) -> None:
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]["resources"]
    # The deployment's resources reach the run pods (container context) and win over the
    # launcher's: both must be the run pods' sizing.
    assert _deployment(values)["resources"] == launcher
    assert set(launcher) == {"requests", "limits"}
    for section in ("requests", "limits"):
        assert set(launcher[section]) == {"cpu", "memory"}, f"{section}: cpu and memory"
    request = _quantity_bytes(launcher["requests"]["memory"])
    limit = _quantity_bytes(launcher["limits"]["memory"])
    assert request >= MEASURED_PEAK_BYTES, "the request must cover the measured peak"
    assert limit >= MEMORY_LIMIT_HEADROOM * MEASURED_PEAK_BYTES
    assert limit >= request
    cpu_request = _quantity_cores(launcher["requests"]["cpu"])
    assert 0 < cpu_request <= _quantity_cores(launcher["limits"]["cpu"])


def _data_root(values: Mapping[str, Any]) -> tuple[str, str]:
    root = _deployment(values)["env"]["MSPO_DATA_ROOT"]
    match = re.fullmatch(r"gs://([^/]+)(?:/(.*))?", root)
    assert match, f"MSPO_DATA_ROOT must be gs://bucket[/prefix] on GKE: {root!r}"
    return match[1], (match[2] or "").strip("/")


def test_compute_logs_go_to_the_data_roots_bucket_beside_the_data(values: dict[str, Any]) -> None:
    clm = values["computeLogManager"]
    assert clm["type"] == "GCSComputeLogManager"
    gcs = clm["config"]["gcsComputeLogManager"]
    bucket, data_prefix = _data_root(values)
    assert gcs["bucket"] == bucket
    prefix = str(gcs["prefix"]).strip("/")
    assert prefix, "a prefix of their own"
    assert not data_prefix or not (prefix + "/").startswith(data_prefix + "/"), (
        "step logs must not be written among the data layers"
    )
    for layer in ("raw", "curated"):
        assert not (prefix + "/").startswith(f"{layer}/")


def test_instance_storage_is_external_postgresql_through_psycopg2(values: dict[str, Any]) -> None:
    pg = values["postgresql"]
    assert pg["enabled"] is False, "Cloud SQL, not the chart's own PostgreSQL"
    assert pg["postgresqlHost"] not in ("", "localhost", "127.0.0.1")
    deployment_yaml = yaml.safe_load((DOCKER_DIR / "dagster.yaml").read_text())
    scheme = deployment_yaml["storage"]["postgres"]["postgres_db"]["scheme"]
    assert pg["postgresqlScheme"] == scheme == "postgresql+psycopg2"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    assert "postgresqlPassword" not in pg, "the password lives in a Secret, not in this file"


def test_instance_settings_are_docker_dagster_yamls(values: dict[str, Any]) -> None:
    instance = _rendered_instance(values)
    deployment = yaml.safe_load((DOCKER_DIR / "dagster.yaml").read_text())
    for section in ("concurrency", "run_retries", "run_monitoring", "freshness", "telemetry"):
        assert instance.get(section) == deployment[section], section
    assert instance["run_coordinator"]["class"] == deployment["run_coordinator"]["class"]


def test_the_rendered_instance_passes_dagsters_own_validation(
    values: dict[str, Any], tmp_path: Path
) -> None:
    """Dagster refuses a run limit set both in the run coordinator and in `concurrency`."""
    instance = _rendered_instance(values)
    instance["run_coordinator"]["module"] = "dagster._core.run_coordinator"
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    config, _ = dagster_instance_config(str(tmp_path), "dagster.yaml")
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 4


def test_every_pool_the_code_declares_is_limited_to_one(values: dict[str, Any]) -> None:
    pools = values["additionalInstanceConfig"]["concurrency"]["pools"]
    assert pools["granularity"] == "op"
    for pool in (API_POOL, MANIFEST_POOL):
        limit = pools.get("limits", {}).get(pool, pools["default_limit"])
        assert limit == 1, pool


def test_the_code_location_is_docker_dockerfiles(values: dict[str, Any]) -> None:
    dockerfile = (DOCKER_DIR / "Dockerfile").read_text()
    cmd_match = re.search(r"^CMD \[(.*?)\]\s*$", dockerfile, re.MULTILINE | re.DOTALL)
    assert cmd_match
    cmd = re.findall(r'"([^"]*)"', cmd_match[1])
    assert cmd[:3] == ["dagster", "code-server", "start"]
    module = cmd[cmd.index("--module-name") + 1]
    port = int(cmd[cmd.index("--port") + 1])
    deployment = _deployment(values)
    args = deployment["codeServerArgs"]
    assert args[args.index("--module-name") + 1] == module == "mspo_pipeline.definitions"
    assert deployment["port"] == port
    # workspace.yaml names the location; the chart names it after the deployment (a DNS name).
    workspace = yaml.safe_load((DOCKER_DIR / "workspace.yaml").read_text())
    location = workspace["load_from"][0]["grpc_server"]["location_name"]
    assert deployment["name"] == location.replace("_", "-")
    assert "mspo-pipeline" in deployment["image"]["repository"]
    assert str(deployment["image"]["tag"]) not in ("", "latest"), "a unique tag per build"


def test_every_mspo_variable_is_documented_in_the_readme(values: dict[str, Any]) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(MSPO_[A-Z_]+)`", readme, re.MULTILINE))
    configuration = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert "`MSPO_ALERT_*`, `MSPO_CAPTURE_DEADLINE`" in configuration
    env = _deployment(values)["env"]
    assert {"MSPO_API_BASE_URL", "MSPO_DATA_ROOT"} <= set(env)
    assert all(name.startswith("MSPO_") for name in env), "the pipeline reads MSPO_* only"
    # Every MSPO_* name in the file, comments included (the alert Secret's keys are named there).
    named = set(re.findall(r"\bMSPO_[A-Z_]*[A-Z]\b", VALUES_FILE.read_text()))
    assert not named - documented, f"not in README's tables: {named - documented}"


def test_gcs_access_is_workload_identity_without_key_files(values: dict[str, Any]) -> None:
    account = values["serviceAccount"]
    gsa = account["annotations"]["iam.gke.io/gcp-service-account"]
    assert re.fullmatch(
        r"[a-z][a-z0-9-]{4,28}[a-z0-9]@[A-Za-z0-9_-]+\.iam\.gserviceaccount\.com", gsa
    )
    name = account["name"]
    assert account["create"] is True
    assert values["global"]["serviceAccountName"] == name
    subchart_account = values["dagster-user-deployments"]["serviceAccount"]
    assert subchart_account["name"] == name
    assert subchart_account["create"] is False, "created once, by the parent chart"
    text = VALUES_FILE.read_text()
    for forbidden in ("GOOGLE_APPLICATION_CREDENTIALS", "jsonCredentialsEnvvar", "private_key"):
        assert forbidden not in text, forbidden
    for path, value in _walk(values):
        assert not path.endswith(("volumes", "volumeMounts")), f"{path}: no mounted key files"
        if isinstance(value, str):
            assert not value.endswith(".json"), f"{path}: {value!r} looks like a key file"


@pytest.mark.parametrize(
    ("broken", "fails"),
    [
        ("runLauncher:\n  type: K8sRunLauncher", "runLauncher:\n  type: K8SRunLauncher"),
        (
            "    k8sRunLauncher:\n      imagePullPolicy",
            "    k8sRunlauncher:\n      imagePullPolicy",
        ),
    ],
)
def test_a_typo_fails(broken: str, fails: str) -> None:
    """The walk is not vacuous: a misspelt type or key is caught."""
    text = VALUES_FILE.read_text()
    assert broken in text
    values = _load_values(text.replace(broken, fails))
    with pytest.raises(AssertionError):
        test_every_key_path_is_one_the_chart_reads(values)
        test_every_value_has_the_schema_type(values)


def test_the_image_sets_the_run_process_environment() -> None:
    """Every process of the image, run pods included, starts with ``RUN_PROCESS_ENV``: the
    allocator setting cannot be made once polars is loaded."""
    dockerfile = (DOCKER_DIR / "Dockerfile").read_text()
    runtime = dockerfile[dockerfile.rindex("\nFROM ") :]
    env_match = re.search(r"^ENV (.*?)\n(?!\s)", runtime, re.MULTILINE | re.DOTALL)
    assert env_match
    settings = dict(
        re.findall(r"(\w+)=(\S+)", env_match[1].replace("\\\n", " ")),
    )
    for name, value in RUN_PROCESS_ENV.items():
        assert settings.get(name) == value, name


def test_the_image_builds_the_maps_font_list_where_its_user_can_write_it() -> None:
    """Matplotlib's font list lives under ``MPLCONFIGDIR``: built while the image is, after the
    venv is in place, and handed to the user the image runs as. Under the user's home, which
    that user cannot write, every run would build it in a temporary directory and warn."""
    dockerfile = (DOCKER_DIR / "Dockerfile").read_text()
    runtime = dockerfile[dockerfile.rindex("\nFROM ") :].replace("\\\n", " ")
    instructions = [line for line in runtime.splitlines() if line and not line.startswith("#")]
    config_dir = next(i for i in instructions if i.startswith("ENV MPLCONFIGDIR="))
    build = next(i for i in instructions if "import matplotlib.font_manager" in i)
    venv = next(i for i in instructions if i.startswith("COPY --from=builder /opt/venv "))
    user = re.search(r"useradd .*?--uid (\d+) --gid (\w+) .*? (\w+)\s", runtime)
    assert user and f"USER {user[1]}:{user[1]}" in instructions
    assert build.startswith("RUN ")
    assert f'chown -R {user[3]}:{user[2]} "$MPLCONFIGDIR"' in build
    assert instructions.index(venv) < instructions.index(build)
    assert instructions.index(config_dir) < instructions.index(build)
    directory = config_dir.split("=", 1)[1]
    assert not directory.startswith(("/tmp", "$HOME")), "kept in the image, not per process"
