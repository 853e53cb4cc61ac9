"""The ``mspo`` command: the emulator, the demo and the analysts' SQL shell."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "emulator":
        from mspo_pipeline.emulator.server import serve_forever

        serve_forever(
            host=args.host, port=args.port, scale=args.scale, seed=args.seed, date=args.date
        )
    return 0
