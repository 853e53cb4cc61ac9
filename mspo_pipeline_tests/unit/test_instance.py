"""The deployment's instance class: it loads from an instance's settings, and an instance is
pooled once however many of the two ways in reach it (the class, then the run's executor)."""

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from mspo_pipeline import instance as pooling
from mspo_pipeline.instance import PooledInstance, keep_connections_open


def test_an_instance_is_pooled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        dg.DagsterInstance, "optimize_for_webserver", lambda _, **settings: calls.append(settings)
    )
    with dg.DagsterInstance.ephemeral() as instance:
        keep_connections_open(instance)
        keep_connections_open(instance)
    assert calls == [
        {
            "statement_timeout": pooling.NO_STATEMENT_TIMEOUT,
            "pool_recycle": pooling.POOL_RECYCLE_SECONDS,
            "max_overflow": pooling.MAX_OVERFLOW,
        }
    ]


def test_the_instance_class_pools_as_it_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        dg.DagsterInstance, "optimize_for_webserver", lambda _, **settings: calls.append(settings)
    )
    settings = {"instance_class": {"module": "mspo_pipeline.instance", "class": "PooledInstance"}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(settings))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert isinstance(instance, PooledInstance)
        assert len(calls) == 1
        keep_connections_open(instance)  # what the run's executor does
        assert len(calls) == 1
