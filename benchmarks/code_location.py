"""Loading the code location, as every process that serves or runs it does.

    .venv/bin/python -m benchmarks.code_location [--rounds 7] [--against DIR]

Each contender is a fresh process that loads the definitions and asks for the asset graph,
timed from start to exit, with its peak memory: the code location's own ``defs()``, which
merges the ``defs`` of the modules of ``defs/``, against Dagster's ``load_from_defs_folder``
on the same folder, which also imports every installed package that offers components. Both in
this environment, and in ``.venv-deploy`` (the image's packages: the ``gcp`` and ``k8s``
extras; ``./dev test`` builds it) when it exists. ``--against`` adds another checkout's
``defs()`` (a git worktree), loaded with the same packages. Alternating, medians over
``--rounds``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mspo_pipeline_tests import REPO_ROOT

BASELINE = "Dagster's load_from_defs_folder"
OURS = "the code location's defs()"
LOADERS = {
    BASELINE: (
        "import dagster as dg; from pathlib import Path; "
        "d = dg.load_from_defs_folder(path_within_project=Path('mspo_pipeline'))"
    ),
    OURS: "from mspo_pipeline.definitions import defs; d = defs()",
}
PROBE = "; d.resolve_asset_graph(); import sys; print('pandas' in sys.modules)"


def timed_load(
    python: Path, loader: str, data_root: Path, checkout: Path = REPO_ROOT
) -> tuple[float, float, bool]:
    """Wall seconds, peak MB and whether pandas was imported, for one fresh process loading
    ``checkout``'s code (its folder comes first on the path of ``python -c``)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(python), "-c", loader + PROBE],
        cwd=checkout,
        env={**os.environ, "MSPO_DATA_ROOT": str(data_root)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    assert process.stdout is not None
    output = process.stdout.read().strip()
    process.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{python} failed to load the code location with: {loader}")
    return wall, usage.ru_maxrss / 1024, output == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--against", type=Path, help="another checkout of this repository")
    args = parser.parse_args()
    contenders = {name: (loader, REPO_ROOT) for name, loader in LOADERS.items()}
    if args.against:
        contenders[f"defs() of {args.against}"] = (LOADERS[OURS], args.against.resolve())
    environments = {"this environment": Path(sys.executable)}
    deploy = REPO_ROOT / ".venv-deploy" / "bin" / "python"
    if deploy.exists():
        environments["the image's packages (.venv-deploy)"] = deploy
    scratch = tempfile.TemporaryDirectory()
    data_root = Path(scratch.name) / "data"
    for environment, python in environments.items():
        samples: dict[str, list[tuple[float, float, bool]]] = {name: [] for name in contenders}
        for number in range(args.rounds):
            names = list(contenders)[:: 1 if number % 2 == 0 else -1]
            for name in names:
                loader, checkout = contenders[name]
                samples[name].append(timed_load(python, loader, data_root, checkout))
        print(f"\n{environment}, {args.rounds} rounds alternating, medians:")
        print(f"  {'':<44}{'seconds':>9}{'x':>7}{'peak MB':>9}{'x':>7}  pandas")
        baseline = samples[BASELINE]
        base_wall = statistics.median(s[0] for s in baseline)
        base_peak = statistics.median(s[1] for s in baseline)
        for name, runs in samples.items():
            wall = statistics.median(s[0] for s in runs)
            peak = statistics.median(s[1] for s in runs)
            pandas = "imported" if any(s[2] for s in runs) else "not imported"
            print(
                f"  {name:<44}{wall:9.2f}{wall / base_wall:7.2f}{peak:9.0f}"
                f"{peak / base_peak:7.2f}  {pandas}"
            )
    scratch.cleanup()


if __name__ == "__main__":
    main()
