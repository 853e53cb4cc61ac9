"""The BigQuery publication: its statements (plain), and its asset in the image's packages.

The asset needs dagster-gcp (the ``gcp`` extra): its tests run in ``.venv-deploy`` (``./dev
test``), and the statements' tests everywhere. No BigQuery is reached: the asset runs against a
``BigQueryResource`` whose client records the statements it is sent.
"""

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import pytest

from mspo_pipeline.lib.bigquery import PUBLISHED_TABLES, external_table_ddl, source_uri
from mspo_pipeline.lib.parquet_io import ParquetIOManager

ROOT = "gs://calee_data/mspo"
DATASET = "my-project.mspo"
HAS_GCP = importlib.util.find_spec("dagster_gcp") is not None


def test_each_table_is_an_external_table_over_its_daily_files() -> None:
    assert external_table_ddl(DATASET, "smallholders", ROOT) == (
        "CREATE OR REPLACE EXTERNAL TABLE `my-project.mspo.smallholders`\n"
        "OPTIONS (format = 'PARQUET', uris = "
        "['gs://calee_data/mspo/curated/mspo/smallholders/*/smallholders.parquet'])"
    )
    assert PUBLISHED_TABLES == (
        "geography", "smallholders", "certification_summary", "changes", "plots_geo",
        "plots_hex", "captures",
    )  # fmt: skip
    for table in PUBLISHED_TABLES:
        assert source_uri(ROOT, table).count("*") == 1  # BigQuery takes one wildcard per URI


@pytest.mark.parametrize(
    ("dataset", "root", "says"),
    [
        (DATASET, "./data", "MSPO_DATA_ROOT is './data'"),
        ("mspo", ROOT, "is not project.dataset"),
        ("my-project.mspo`; DROP", ROOT, "is not project.dataset"),
    ],
)
def test_what_cannot_work_is_refused_with_the_variable(dataset: str, root: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        external_table_ddl(dataset, "smallholders", root)


LOAD = "from mspo_pipeline.definitions import defs; print(sorted(k.to_user_string() for k in defs().resolve_all_asset_keys() if k.path[0] == 'bigquery'))"  # noqa: E501


IMPORTED = (
    "import sys; from mspo_pipeline.definitions import defs; defs(); "
    "loaded = {m.partition('.')[0] for m in sys.modules}; "
    "print(sorted({'dagster_gcp', 'google', 'pandas'} & loaded))"
)


def load_code_location(code: str = LOAD, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if not k.startswith("MSPO_BIGQUERY")}
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**variables, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_group_is_off_unless_the_dataset_is_set() -> None:
    loaded = load_code_location()
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


@pytest.mark.skipif(HAS_GCP, reason="dagster-gcp is installed here")
def test_a_dataset_without_dagster_gcp_stops_the_load_with_the_fix() -> None:
    loaded = load_code_location(MSPO_BIGQUERY_DATASET=DATASET)
    assert loaded.returncode != 0
    assert "install the gcp extra" in loaded.stderr


needs_gcp = pytest.mark.skipif(
    not HAS_GCP and os.environ.get("MSPO_IMAGE_ENV") != "1",
    reason="dagster-gcp is the gcp extra: ./dev test runs this in .venv-deploy",
)


@needs_gcp
def test_with_a_dataset_the_code_location_has_the_group() -> None:
    loaded = load_code_location(MSPO_BIGQUERY_DATASET=DATASET)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "['bigquery/external_tables']"


@needs_gcp
def test_without_a_dataset_loading_imports_neither_dagster_gcp_nor_pandas() -> None:
    """In the image's packages, where both are installed: Dagster's ``load_from_defs_folder``
    imported dagster-gcp, its BigQuery client and pandas in every process that loads the code
    location (``benchmarks.code_location``)."""
    loaded = load_code_location(IMPORTED)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


@needs_gcp
def test_the_asset_sends_one_statement_per_table_and_nothing_else() -> None:
    from dagster_gcp import BigQueryResource

    from mspo_pipeline.defs.bigquery import EXTERNAL_TABLES_KEY, build_defs

    sent: list[tuple[str, Any]] = []

    class Job:
        def result(self) -> None:
            return None

    class Client:
        def query(self, statement: str, job_config: Any = None) -> Job:
            sent.append((statement, job_config))
            return Job()

    class RecordingBigQuery(BigQueryResource):
        @contextmanager
        def get_client(self) -> Iterator[Any]:
            yield Client()

    defs = build_defs(DATASET)
    bound = defs.resources or {}
    assert bound["bigquery"].project == "my-project"
    (asset,) = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(
        [asset],
        partition_key="2026-11-30",
        resources={
            "bigquery": RecordingBigQuery(project="my-project"),
            "io_manager": ParquetIOManager(root=ROOT),
        },
    )
    assert result.success
    assert sent == [(external_table_ddl(DATASET, t, ROOT), None) for t in PUBLISHED_TABLES]
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == EXTERNAL_TABLES_KEY
    assert event.materialization.metadata["dataset"].value == DATASET
