"""``./dev test``'s parallel run keeps each module in one process, and the modules that share the
session's four-day store in one process too, so each expensive set-up is built once."""

import re
import subprocess
import sys

from mspo_pipeline_tests.conftest import ROOT, parallel_scope

MODULES = (
    "mspo_pipeline_tests/unit/test_days.py",
    "mspo_pipeline_tests/unit/test_layout.py",
    "mspo_pipeline_tests/unit/test_late_capture.py",
)
"""Small modules, one of them with many tests: spread test by test, it would span both."""


def test_every_module_runs_in_one_process() -> None:
    """As ``./dev test`` runs the suite: two processes, the rest from the project's settings."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-v", "-p", "no:cacheprovider", *MODULES],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "scheduling tests via ByParallelScope" in run.stdout
    workers: dict[str, set[str]] = {}
    for worker, module in re.findall(r"^\[(gw\d+)\] .*? PASSED (\S+?)::", run.stdout, re.M):
        workers.setdefault(module, set()).add(worker)
    assert set(workers) == set(MODULES), run.stdout[-2000:]
    assert {module: len(used) for module, used in workers.items()} == dict.fromkeys(MODULES, 1)


def test_the_four_day_store_modules_are_one_unit() -> None:
    folder = "mspo_pipeline_tests/e2e/four_days/"
    shared = {
        parallel_scope(f"{folder}{module}::test_x[a]")
        for module in ("test_curated_assets.py", "test_geo.py", "test_sql.py")
    }
    assert shared == {folder}
    assert parallel_scope("mspo_pipeline_tests/e2e/test_layers.py::test_x") == (
        "mspo_pipeline_tests/e2e/test_layers.py"
    )
