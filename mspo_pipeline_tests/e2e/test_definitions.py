"""The code location as Dagster sees it: a refactor that changes the graph is caught here."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import dagster as dg
from syrupy.assertion import SnapshotAssertion

from mspo_pipeline.definitions import defs
from mspo_pipeline.defs.alerts import (
    CAPTURE_MISSING_SENSOR,
    CHECK_ERROR_SENSOR,
    RUN_FAILED_SENSOR,
)
from mspo_pipeline.defs.partitions import API_POOL, daily_partitions
from mspo_pipeline.defs.warehouse import MANIFEST_KEY, STORED_KEYS
from mspo_pipeline.lib.catalog import ENDPOINTS
from mspo_pipeline.lib.settings import ENV_DEFAULTS
from mspo_pipeline.lib.tables import CURATED_TABLES
from mspo_pipeline_tests import REPO_ROOT

REPO = REPO_ROOT
PER_TABLE_LAYERS = ("raw", "typed", "validated", "quarantine")
CURATED = (*CURATED_TABLES, "plot_history")
LEDGER = ("captures",)


def test_every_endpoint_has_every_layer_and_nothing_else_exists() -> None:
    keys = {key.to_user_string() for key in defs().resolve_all_asset_keys()}
    expected = {f"{layer}/{e.name}" for layer in PER_TABLE_LAYERS for e in ENDPOINTS}
    expected |= {f"curated/{name}" for name in CURATED}
    expected |= {f"curated/{name}" for name in LEDGER}
    expected |= {MANIFEST_KEY.to_user_string()}
    assert keys == expected


def _partitions(partitions: dg.PartitionsDefinition | None) -> str | None:
    """The partitioning without its first day, which ``MSPO_FIRST_DAY`` moves."""
    if not isinstance(partitions, dg.TimeWindowPartitionsDefinition):
        return None if partitions is None else type(partitions).__name__
    return (
        f"{partitions.cron_schedule} in {partitions.timezone}, end offset {partitions.end_offset}"
    )


def graph_snapshot() -> dict[str, dict[str, Any]]:
    """Every asset as the UI and the daemon see it: what it reads, how it is partitioned and
    run, its group, kinds, checks and declared metadata."""
    graph = defs().resolve_asset_graph()
    checks: dict[dg.AssetKey, list[str]] = {}
    for check_key in graph.asset_check_keys:
        blocking = " (blocking)" if graph.get(check_key).blocking else ""
        checks.setdefault(check_key.asset_key, []).append(check_key.name + blocking)
    snapshot = {}
    for key in sorted(graph.get_all_asset_keys()):
        node = graph.get(key)
        mappings = node.partition_mappings
        snapshot[key.to_user_string()] = {
            "deps": sorted(
                parent.to_user_string()
                + (f" ({type(mappings[parent]).__name__})" if parent in mappings else "")
                for parent in node.parent_keys
            ),
            "partitions": _partitions(node.partitions_def),
            "backfill_policy": str(node.backfill_policy),
            "automation_condition": (
                node.automation_condition.get_label() or type(node.automation_condition).__name__
                if node.automation_condition
                else None
            ),
            "pools": sorted(node.pools or ()),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "checks": sorted(checks.get(key, [])),
            "metadata_keys": sorted(node.metadata),
            "description": bool(node.description),
        }
    return snapshot


def test_the_graph_matches_its_snapshot(snapshot: SnapshotAssertion) -> None:
    """A change to any asset's wiring shows here as a diff to review; accept an intended one
    with `./dev test mspo_pipeline_tests/e2e/test_definitions.py --snapshot-update`."""
    assert graph_snapshot() == snapshot


def _contents(definitions: dg.Definitions) -> dict[str, object]:
    repository = definitions.get_repository_def()
    graph = repository.asset_graph
    return {
        "assets": sorted(key.to_user_string() for key in graph.get_all_asset_keys()),
        "checks": sorted(key.to_user_string() for key in graph.asset_check_keys),
        "jobs": sorted(repository.job_names),
        "schedules": sorted(schedule.name for schedule in repository.schedule_defs),
        "sensors": sorted(sensor.name for sensor in repository.sensor_defs),
        "resources": sorted(repository.get_top_level_resources()),
        "executor": definitions.executor,
    }


def test_dagsters_folder_loader_finds_nothing_more() -> None:
    """The code location merges each module's ``defs``; Dagster's own loader, which takes the
    loose assets, jobs and schedules of a module that has no ``defs``, must find exactly the
    same, so a module that defines some and forgets its ``defs`` fails here."""
    folder = dg.load_from_defs_folder(path_within_project=REPO / "mspo_pipeline")
    assert _contents(defs()) == _contents(folder)


def test_every_asset_is_daily_in_malaysia_and_grouped_by_layer() -> None:
    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def == daily_partitions, key
        assert node.group_name == key.path[0], key


def test_the_manifest_lists_every_other_asset_and_runs_after_them_all() -> None:
    keys = set(defs().resolve_all_asset_keys()) - {MANIFEST_KEY}
    graph = defs().resolve_asset_graph()
    upstream = dg.AssetSelection.assets(MANIFEST_KEY).upstream().resolve(graph)
    assert set(STORED_KEYS) == keys
    assert upstream == keys | {MANIFEST_KEY}
    # Only the newest layers directly: each direct dependency is a lookup in every run.
    assert not {key.path[0] for key in graph.get(MANIFEST_KEY).parent_keys} & {"raw", "typed"}


def test_only_the_raw_captures_call_the_api_pool() -> None:
    graph = defs().resolve_asset_graph()
    for assets_def in graph.assets_defs:
        pools = {op.pool for op in assets_def.node_def.iterate_op_defs()}
        in_pool = pools == {API_POOL}
        assert in_pool == all(key.path[0] == "raw" for key in assets_def.keys), assets_def.keys


def test_the_daily_job_covers_the_whole_graph() -> None:
    job = defs().resolve_job_def("mspo_daily")
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert selected == {key.to_user_string() for key in defs().resolve_all_asset_keys()}


def test_the_rederive_job_is_every_layer_above_raw() -> None:
    job = defs().resolve_job_def("mspo_rederive")
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    everything = {key.to_user_string() for key in defs().resolve_all_asset_keys()}
    assert selected == {key for key in everything if not key.startswith("raw/")}
    assert isinstance(job.executor_def, dg.ExecutorDefinition)
    assert job.executor_def.name == "in_process"


def test_loading_binds_defaults_for_unset_variables_without_setting_them() -> None:
    """A fresh process with no MSPO_ variable: the resources hold README's defaults, and the
    process environment is left as it was (nothing else sees invented settings)."""
    probe = (
        "import os, json; from mspo_pipeline.definitions import defs; "
        "resources = defs().resources; "
        "print(json.dumps([sorted(k for k in os.environ if k.startswith('MSPO_')), "
        "resources['io_manager'].root, resources['mspo_api'].base_url]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSPO_")}
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(completed.stdout.splitlines()[-1]) == [
        [],
        ENV_DEFAULTS["MSPO_DATA_ROOT"],
        ENV_DEFAULTS["MSPO_API_BASE_URL"],
    ]


def test_dagster_cli_validates_the_code_location() -> None:
    dagster = Path(sys.executable).parent / "dagster"
    completed = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Validation successful for code location mspo_pipeline" in (
        completed.stdout + completed.stderr
    )


def runtime_packages(lock: dict[str, Any], extras: tuple[str, ...] = ()) -> set[str]:
    """Every package the project installs, from ``uv.lock``: its dependencies (with ``extras``)
    and theirs, extras followed, the development group left out."""
    packages = {package["name"]: package for package in lock["package"]}
    project = packages["mspo-pipeline"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    found: set[str] = set()
    while wanted:
        dependency = wanted.pop()
        package = packages[dependency["name"]]
        for extra in dependency.get("extra", []):
            wanted += package.get("optional-dependencies", {}).get(extra, [])
        if dependency["name"] not in found:
            found.add(dependency["name"])
            wanted += package.get("dependencies", [])
    return found


def test_no_runtime_dependency_brings_pandas() -> None:
    """pandera imports pandas whenever it can (~1.5 s and ~60 MB in every run process): no
    dependency may bring it back (dagster-gcp did, through dagster-pandas, hence an extra).
    The test group's GeoPandas installs it beside the tests only."""
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    assert "pandas" not in runtime_packages(lock)
    assert "pandas" in runtime_packages(lock, ("gcp",))  # the walk can find it


WITHOUT_PANDAS = """
import sys

class NoPandas:  # as if pandas were not installed, which is what pandera looks for
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] == "pandas":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoPandas)
import mspo_pipeline.definitions, mspo_pipeline.lib.validation, mspo_pipeline.lib.maps
mspo_pipeline.definitions.defs()
"""


def test_a_run_process_needs_no_pandas() -> None:
    """The definitions, validation and maps load with pandas missing, as in the image."""
    completed = subprocess.run(
        [sys.executable, "-c", WITHOUT_PANDAS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]


def test_the_code_location_is_built_once_per_process() -> None:
    """Dagster asks for it several times per run; each build used to assemble every asset."""
    assert defs() is defs()


def test_the_alert_sensors_are_on_by_default_and_skip_until_configured() -> None:
    for name in (RUN_FAILED_SENSOR, CHECK_ERROR_SENSOR, CAPTURE_MISSING_SENSOR):
        sensor = defs().resolve_sensor_def(name)
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, name
