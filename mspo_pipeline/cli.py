"""The ``mspo`` command: the emulator, the demo and its UI, the analysts' SQL shell, the
capture status, and plots as GeoJSON and maps."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path

DEFAULT_SCALE = 1.0
DEFAULT_SEED = 7
DEFAULT_DATA_ROOT = Path("data")
DEFAULT_HOME = Path(".dagster_home")
"""``mspo demo`` and ``mspo ui`` share these defaults, so ``./dev ui`` opens what ``./dev demo``
wrote."""


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mspo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    emulator = commands.add_parser(
        "emulator", help="serve an emulation of the MSPO API on 127.0.0.1"
    )
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    emulator.add_argument(
        "--scale", type=float, default=1.0, help="fraction of the real smallholder counts"
    )
    emulator.add_argument("--seed", type=int, default=7)
    emulator.add_argument(
        "--date", type=_date, default=None, help="serve the API as it was on this date (ISO)"
    )

    demo = commands.add_parser(
        "demo", help="capture today's snapshot of the emulated API through the daily job"
    )
    ui = commands.add_parser(
        "ui",
        help="the Dagster UI (dagster dev) over the demo's data, the emulator as its API",
        description=(
            "Starts the emulator and `dagster dev` with DAGSTER_HOME, MSPO_DATA_ROOT, "
            "MSPO_FIRST_DAY and MSPO_API_BASE_URL set for the demo's data; Ctrl-C stops both. "
            "Materialising from the UI, and the 06:00 schedule, call the emulator."
        ),
    )
    for command in (demo, ui):
        command.add_argument(
            "--scale", type=float, default=DEFAULT_SCALE, help="the emulator's scale"
        )
        command.add_argument("--seed", type=int, default=DEFAULT_SEED, help="the emulator's seed")
        command.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
        command.add_argument(
            "--dagster-home",
            type=Path,
            default=Path(os.environ.get("DAGSTER_HOME") or DEFAULT_HOME),
            help="where the Dagster instance keeps the runs (default $DAGSTER_HOME or "
            f"{DEFAULT_HOME})",
        )
    ui.add_argument("--port", type=int, default=3000, help="the UI's port on 127.0.0.1")
    ui.add_argument(
        "--api-url",
        default=None,
        help="call this API instead of starting the emulator (the real one: "
        "https://api.mspots.org.my/api)",
    )

    data_root_help = "local folder or gs://bucket (default $MSPO_DATA_ROOT, else ./data)"
    warehouse = commands.add_parser(
        "warehouse", help="write a DuckDB file with views over every layer and partition"
    )
    warehouse.add_argument("--data-root", default=None, help=data_root_help)
    warehouse.add_argument("--output", type=Path, default=Path("warehouse.duckdb"))

    sql = commands.add_parser(
        "sql", help="query every layer and partition with DuckDB SQL (a shell, or one query)"
    )
    sql.add_argument("--data-root", default=None, help=data_root_help)
    sql.add_argument("query", nargs="?", default=None, help="run this SQL, print, and exit")
    sql.add_argument(
        "--rescan",
        action="store_true",
        help="list the store instead of reading its manifest (sees files written since)",
    )

    manifest = commands.add_parser(
        "manifest",
        help="rebuild the store's manifest from a full listing (the daily run keeps it current)",
    )
    manifest.add_argument("--data-root", default=None, help=data_root_help)

    status = commands.add_parser(
        "status",
        help="which recent days were captured on time, late or not at all (from raw footers)",
    )
    status.add_argument("--days", type=_positive, default=14, help="days to show (default 14)")
    status.add_argument("--data-root", default=None, help=data_root_help)

    export = commands.add_parser(
        "export", help="export plots of a stored day (GeoJSON for EUDR due diligence)"
    )
    formats = export.add_subparsers(dest="format", required=True)
    geojson = formats.add_parser(
        "geojson",
        help="an RFC 7946 FeatureCollection: one Point per plot, coordinates as sent",
        description=(
            "One Feature per plot of curated/plots_geo (deleted plots left out), its point at "
            "the coordinates as the API sent them, with the certificate, areas and EUDR flags. "
            "Plots without usable GPS keep a Feature with a null geometry. Filters combine."
        ),
    )
    geojson.add_argument("--data-root", default=None, help=data_root_help)
    geojson.add_argument(
        "--date", type=_date, default=None, help="the partition to export (default the newest)"
    )
    geojson.add_argument("--scheme", choices=("SPOC", "OSH", "GM"), type=str.upper)
    geojson.add_argument("--state", help="a state name, such as JOHOR (any case)")
    geojson.add_argument(
        "--licences",
        type=Path,
        default=None,
        help="a file of MPOB licence numbers (mpob_no), one a line; # starts a comment",
    )
    geojson.add_argument(
        "--certified-on",
        type=_date,
        default=None,
        help="only plots whose certificate was ACTIVE on this day (plot_history: "
        "smallholders_as_of)",
    )
    geojson.add_argument(
        "--cells",
        action="store_true",
        help="export the day's published H3 cells (curated/plots_hex) as polygons instead: "
        "counts without names or points, safe to share",
    )
    geojson.add_argument(
        "--output", default="-", help="the file to write (default - : standard output)"
    )

    map_command = commands.add_parser(
        "map", help="PNG maps of a stored day: plots by certificate status, and the H3 cells"
    )
    map_command.add_argument("--data-root", default=None, help=data_root_help)
    map_command.add_argument(
        "--date", type=_date, default=None, help="the partition to draw (default the newest)"
    )
    map_command.add_argument("--output-dir", type=Path, default=Path())

    release = commands.add_parser(
        "release-runs",
        help="mark runs killed without a trace failed and free their concurrency pool slots",
        description=(
            "Without RUN_ID: release the runs whose process on this host is gone, and free the "
            "slots still held by runs that have ended. With RUN_IDs: release those runs, unless "
            "their process is alive on this host. Uses the instance in $DAGSTER_HOME."
        ),
    )
    release.add_argument("run_ids", nargs="*", metavar="RUN_ID")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _data_root(given: str | None) -> str:
    from mspo_pipeline.lib.roots import DEFAULT_DATA_ROOT

    return given or os.environ.get("MSPO_DATA_ROOT") or DEFAULT_DATA_ROOT


def _release_runs(run_ids: Sequence[str]) -> int:
    """``mspo release-runs``: what every run does at its start, on demand (see README)."""
    if not os.environ.get("DAGSTER_HOME"):
        print(
            "mspo release-runs: set DAGSTER_HOME to the instance's folder (where dagster.yaml is)",
            file=sys.stderr,
        )
        return 2
    import dagster as dg

    from mspo_pipeline.lib import crashed_runs

    with dg.DagsterInstance.get() as instance:
        if run_ids:
            released, refused = crashed_runs.release_named_runs(instance, run_ids)
        else:
            released, refused = crashed_runs.release_all(instance), []
    print(crashed_runs.summary(released))
    for refusal in refused:
        print(f"not released: {refusal}", file=sys.stderr)
    return 1 if refused else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "emulator":
        from mspo_pipeline.emulator.server import serve_forever

        serve_forever(
            host=args.host, port=args.port, scale=args.scale, seed=args.seed, date=args.date
        )
    elif args.command == "demo":
        from mspo_pipeline.demo import run_demo

        return run_demo(
            scale=args.scale,
            seed=args.seed,
            data_root=args.data_root,
            dagster_home=args.dagster_home,
        )
    elif args.command == "ui":
        from mspo_pipeline.ui import run_ui

        return run_ui(
            scale=args.scale,
            seed=args.seed,
            data_root=args.data_root,
            dagster_home=args.dagster_home,
            port=args.port,
            api_url=args.api_url,
        )
    elif args.command == "warehouse":
        from mspo_pipeline.sql import describe, write_warehouse

        root = _data_root(args.data_root)
        report = write_warehouse(root, args.output)
        print(f"wrote {args.output}: {describe(report, root)}")
        print(f"open it with duckdb.connect({str(args.output)!r}) or the duckdb CLI")
        return 0 if report.views else 1
    elif args.command == "sql":
        from mspo_pipeline import sql

        return sql.main(_data_root(args.data_root), args.query, rescan=args.rescan)
    elif args.command == "manifest":
        from mspo_pipeline.sql import rebuild_manifest

        print(rebuild_manifest(_data_root(args.data_root)))
    elif args.command == "status":
        from mspo_pipeline.lib.days import FIRST_DAY_ENV, first_day
        from mspo_pipeline.lib.ledger import status_report

        try:
            first = first_day(os.environ.get(FIRST_DAY_ENV))
        except ValueError as error:
            print(f"mspo status: {error}", file=sys.stderr)
            return 2
        print(status_report(_data_root(args.data_root), days=args.days, first_day=first))
    elif args.command == "export":
        from mspo_pipeline import export

        try:
            licences = None if args.licences is None else export.read_licences(args.licences)
        except export.ExportError as error:
            print(f"mspo export geojson: {error}", file=sys.stderr)
            return 2
        selection = export.Selection(
            day=args.date,
            scheme=args.scheme,
            state=args.state,
            licences=licences,
            certified_on=args.certified_on,
        )
        return export.run_geojson(
            _data_root(args.data_root), selection, args.output, cells=args.cells
        )
    elif args.command == "map":
        from mspo_pipeline.export import run_map

        return run_map(_data_root(args.data_root), args.date, args.output_dir)
    elif args.command == "release-runs":
        return _release_runs(args.run_ids)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
