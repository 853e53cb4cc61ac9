"""Adding a reference endpoint is what README says it is: one row in ``lib/catalog.py``, its tidy
schema in ``lib/schemas.py`` and its rows in ``emulator/references.py``. A copy of the package
with exactly those three edits gets every layer of the new endpoint, and captures it from the
emulator through typed and validated, in a process of its own."""

import shutil
import subprocess
import sys
from pathlib import Path

from mspo_pipeline_tests import REPO_ROOT

EDITS = {
    "mspo_pipeline/lib/catalog.py": (
        "ENDPOINTS: tuple[Endpoint, ...] = (\n",
        '    _reference("plantations", "references/plantations", ("plantationId",),\n'
        '               ("plantationId", "plantation"), 3, "Plantations (a test endpoint)."),\n',
    ),
    "mspo_pipeline/lib/schemas.py": (
        "        for s in (\n",
        '            _reference("plantations", _id("plantationId", "Plantation ID."),\n'
        '                       _text("plantation", "Plantation name.")),\n',
    ),
    "mspo_pipeline/emulator/references.py": (
        "REFERENCE_ROWS: Mapping[str, Sequence[tuple[Any, ...]]] = MappingProxyType(\n    {\n",
        '        "plantations": ((1, "LADANG SATU"), (2, "LADANG DUA"), (3, "LADANG TIGA")),\n',
    ),
}

CAPTURE = """
import os, sys, tempfile
from pathlib import Path

import dagster as dg
import polars as pl

import mspo_pipeline
from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib.days import today_in_malaysia

assert Path(mspo_pipeline.__file__).parent == Path(sys.argv[1]), mspo_pipeline.__file__
today = today_in_malaysia()
emulator = EmulatorServer(scale=0.01, seed=7, date=today)
with emulator as server, tempfile.TemporaryDirectory() as root:
    os.environ.update(MSPO_API_BASE_URL=server.base_url, MSPO_DATA_ROOT=root)
    from mspo_pipeline.definitions import defs

    graph = defs()
    keys = [dg.AssetKey([layer, "plantations"]) for layer in ("raw", "typed", "validated")]
    assets = [a for a in graph.assets or [] if isinstance(a, dg.AssetsDefinition)]
    result = dg.materialize(
        [*assets, *(graph.asset_checks or [])],
        selection=[*keys, dg.AssetKey(["quarantine", "plantations"])],
        partition_key=today.isoformat(),
        resources=dict(graph.resources or {}),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    folder = today.strftime("%Y%m%d")
    validated = pl.read_parquet(f"{root}/validated/mspo/plantations/{folder}/plantations.parquet")
    print(sorted(validated.get_column("plantation").to_list()))
"""


def test_a_reference_endpoint_added_in_the_three_files_is_captured(tmp_path: Path) -> None:
    shutil.copytree(
        REPO_ROOT / "mspo_pipeline",
        tmp_path / "mspo_pipeline",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)  # where Dagster finds the defs folder
    for file, (anchor, added) in EDITS.items():
        source = (tmp_path / file).read_text()
        assert source.count(anchor) == 1, f"{file}: the edit's anchor moved"
        (tmp_path / file).write_text(source.replace(anchor, anchor + added))
    completed = subprocess.run(
        [sys.executable, "-c", CAPTURE, str(tmp_path / "mspo_pipeline")],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.split("\n")[-2] == "['LADANG DUA', 'LADANG SATU', 'LADANG TIGA']"
