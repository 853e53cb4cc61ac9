"""Capture of ``spoc/get-spoc-list-public`` at full scale: the docs' example code against ours.

Each contender runs in its own process, several rounds, alternating order, against one emulator
process (started here, warmed up, so generation is not timed). Figures are medians of wall
seconds and of peak RSS (the child's own ``ru_maxrss``), with ours / example ratios.

    .venv/bin/python -m benchmarks.capture [--rounds 5] [--scale 1.0]

Contenders:
- ``example``: the docs' code (``001_4588b9e25b4b0202.txt``): ``requests.get(...).json()``,
  ``pl.DataFrame(list_of_dicts)``, the casts and renames, a zstd Parquet write, as written,
  except that its casts are made non-strict: the docs' strict casts crash on the API's own dirty
  values ("N/A"). Its types come from the first 100 records (polars' default).
- ``raw``: this project's raw capture (client with ISA-L gzip → temp file → msgspec/NDJSON →
  pyarrow against a sampled schema, or the exact path when a record does not fit → atomic zstd
  Parquet with provenance), exactly the functions the raw asset calls.
- ``floor``: not this project's code, and not a contender: a bare capture (body in memory, types
  from 100 records, no checks), to show what wall time is within reach at all.
- ``raw_odd_day``: ``raw`` on the same body with one record two thirds in sending
  ``planted_area`` as a number instead of a string: the day that takes the exact path, to show
  what that day pays (a normal day pays nothing for it).
- ``typed_validated``: ``raw``, then the typed cast and the pandera validation with quarantine
  (what the docs' code does, and much more: every row kept, every rule checked).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server
import importlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

SPOC = "spoc_smallholders"
CONTENDERS = ("example", "floor", "raw", "raw_odd_day", "typed_validated")

_OURS = ("mspo_pipeline.lib.api", "mspo_pipeline.lib.records", "mspo_pipeline.lib.storage")
IMPORTS = {
    "example": ("polars", "requests"),
    "floor": ("msgspec", "polars", "requests"),
    "raw": _OURS,
    "raw_odd_day": _OURS,
    "typed_validated": (*_OURS, "mspo_pipeline.lib.casting", "mspo_pipeline.lib.validation"),
}
"""Modules each contender needs, imported (and timed) before its work starts. A Dagster run pays
them once per process, so the work is timed apart from the imports as well."""


def run_example(base_url: str, out_dir: Path) -> int:
    import polars as pl
    import requests

    url = f"{base_url}/spoc/get-spoc-list-public"
    response = requests.get(url, params={"page": 1, "pageSize": 10}, timeout=600)
    response.raise_for_status()
    data = response.json()["data"]["results"]
    df = pl.DataFrame(data)
    df = df.with_columns(
        [
            pl.col("planted_area").cast(pl.Float64, strict=False),
            pl.col("certified_area").cast(pl.Float64, strict=False),
            pl.col("gps_coordinate_lat").cast(pl.Float64, strict=False),
            pl.col("gps_coordinate_long").cast(pl.Float64, strict=False),
        ]
    )
    df = df.rename(
        {"stateId": "state_id", "daerahId": "daerah_id", "mukimId": "mukim_id", "zoneId": "zone_id"}
    )
    df.write_parquet(out_dir / "spoc-list-public.parquet", compression="zstd")
    return df.height


def run_floor(base_url: str, out_dir: Path) -> int:
    """Not a contender: a bare capture with every guarantee dropped, for scale.

    The body in memory (no temp file), msgspec down to the records, polars' default inference
    from 100 records (lossy), a plain zstd write: no checks, no provenance, no atomic rename.
    """
    import msgspec
    import polars as pl
    import requests

    envelope = msgspec.defstruct(
        "Envelope",
        [("data", msgspec.defstruct("Data", [("results", list[msgspec.Raw])]))],
    )
    url = f"{base_url}/spoc/get-spoc-list-public"
    response = requests.get(url, params={"page": 1, "pageSize": 10}, timeout=600)
    response.raise_for_status()
    decoded: Any = msgspec.json.decode(response.content, type=envelope)
    records = decoded.data.results
    frame = pl.read_ndjson(b"\n".join(records))
    frame.write_parquet(out_dir / "floor.parquet", compression="zstd")
    return frame.height


def _capture_raw(base_url: str, out_dir: Path) -> pl.DataFrame:
    from mspo_pipeline.lib import storage
    from mspo_pipeline.lib.api import MspoClient
    from mspo_pipeline.lib.catalog import endpoint
    from mspo_pipeline.lib.records import read_records

    spoc = endpoint(SPOC)
    with MspoClient(base_url) as client, client.fetch(spoc) as response:
        frame = read_records(
            response.body_path, spoc, url=response.url, status=response.status, partition=None
        ).frame
    target = storage.as_upath(out_dir / "list-public.parquet")
    provenance = storage.provenance_metadata({"source_url": response.url})
    storage.write_parquet_atomic(frame, target, provenance)
    return frame


def run_raw(base_url: str, out_dir: Path) -> int:
    return _capture_raw(base_url, out_dir).height


def _typed_step(out_dir: Path) -> None:
    from mspo_pipeline.lib import storage
    from mspo_pipeline.lib.casting import to_typed

    raw = storage.read_parquet(storage.as_upath(out_dir / "list-public.parquet"))
    typed = to_typed(raw, SPOC).frame
    storage.write_parquet_atomic(typed, storage.as_upath(out_dir / "typed.parquet"), {})


def _validated_step(out_dir: Path) -> int:
    from mspo_pipeline.lib import storage
    from mspo_pipeline.lib.validation import split_valid

    typed = storage.read_parquet(storage.as_upath(out_dir / "typed.parquet"))
    result = split_valid(typed, SPOC)
    for name, frame in (("validated", result.validated), ("quarantine", result.quarantine)):
        storage.write_parquet_atomic(frame, storage.as_upath(out_dir / f"{name}.parquet"), {})
    return result.validated.height + result.quarantine.height


def run_typed_validated(base_url: str, out_dir: Path) -> int:
    """The three steps of a run, each starting from the file the previous one stored."""
    _capture_raw(base_url, out_dir)
    _typed_step(out_dir)
    return _validated_step(out_dir)


RUNNERS: dict[str, Callable[[str, Path], int]] = {
    "example": run_example,
    "floor": run_floor,
    "raw": run_raw,
    "raw_odd_day": run_raw,
    "typed_validated": run_typed_validated,
}


def _odd_body(base_url: str) -> bytes:
    """The emulator's SPOC body with one record, two thirds in, sending ``planted_area`` as a
    JSON number instead of a string."""
    with urllib.request.urlopen(f"{base_url}/spoc/get-spoc-list-public", timeout=600) as reply:
        body: bytes = reply.read()
    field = b'"planted_area":"'
    start = body.index(field, len(body) * 2 // 3)
    end = body.index(b'"', start + len(field))
    return body[:start] + b'"planted_area":' + body[start + len(field) : end] + body[end + 1 :]


def _serve_odd_day(base_url: str) -> tuple[http.server.ThreadingHTTPServer, str]:
    """A loopback server answering every GET with the odd-day body (see ``_odd_body``)."""
    body = _odd_body(base_url)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/api"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_emulator(scale: float, day: dt.date | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """The emulator in its own process, serving ``day`` (today by default), its SPOC body
    generated before it returns."""
    port = _free_port()
    command = [sys.executable, "-c", "from mspo_pipeline.cli import main; main()"]
    args = ["emulator", "--port", str(port), "--scale", str(scale), "--seed", "7"]
    if day is not None:
        args += ["--date", day.isoformat()]
    process = subprocess.Popen(
        [*command, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base_url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/references/states", timeout=5):
                break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the emulator did not start within 60 s") from None
            time.sleep(0.2)
    started = time.monotonic()
    with urllib.request.urlopen(f"{base_url}/spoc/get-spoc-list-public", timeout=600) as reply:
        size = len(reply.read())
    print(
        f"emulator ready at {base_url}: SPOC body {size / 1e6:.0f} MB, generated in "
        f"{time.monotonic() - started:.1f} s (not timed below)",
        flush=True,
    )
    return process, base_url


@dataclass(frozen=True)
class Sample:
    wall_s: float
    """The whole process: interpreter start, imports, work."""
    peak_mb: float
    rows: int
    imports_s: float
    work_s: float


def _child(contender: str, base_url: str, out_dir: Path) -> str:
    started = time.perf_counter()
    for module in IMPORTS[contender]:
        importlib.import_module(module)
    imported = time.perf_counter()
    rows = RUNNERS[contender](base_url, out_dir)
    return f"{rows} {imported - started:.4f} {time.perf_counter() - imported:.4f}"


def _measure(contender: str, base_url: str) -> Sample:
    """One contender in a fresh process."""
    with tempfile.TemporaryDirectory() as out_dir:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.capture", "--child", contender, base_url, out_dir],
            stdout=subprocess.PIPE,
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        assert process.stdout is not None
        output = process.stdout.read().decode().strip()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise RuntimeError(f"{contender} failed with exit code {process.returncode}")
        rows, imports_s, work_s = output.split()
        return Sample(wall, usage.ru_maxrss / 1024, int(rows), float(imports_s), float(work_s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--child", nargs=3, metavar=("CONTENDER", "BASE_URL", "OUT_DIR"))
    args = parser.parse_args()
    if args.child:
        contender, base_url, out_dir = args.child
        print(_child(contender, base_url, Path(out_dir)))
        return

    contenders = args.contenders.split(",")
    emulator, base_url = start_emulator(args.scale)
    odd_day, odd_url = _serve_odd_day(base_url)
    urls = {name: odd_url if name == "raw_odd_day" else base_url for name in contenders}
    try:
        samples: dict[str, list[Sample]] = {name: [] for name in contenders}
        for round_number in range(args.rounds):
            order = contenders if round_number % 2 == 0 else contenders[::-1]
            for contender in order:
                samples[contender].append(_measure(contender, urls[contender]))
            print(f"round {round_number + 1}/{args.rounds} done", flush=True)
    finally:
        odd_day.shutdown()
        emulator.terminate()
        emulator.wait()

    _report(samples, args.scale, args.rounds)


def _median(samples: list[Sample], field: str) -> float:
    return statistics.median(getattr(sample, field) for sample in samples)


def _report(samples: dict[str, list[Sample]], scale: float, rounds: int) -> None:
    baseline = samples.get("example")
    print(f"\nspoc/get-spoc-list-public, scale {scale}, {rounds} rounds, medians")
    print(
        f"{'contender':<16} {'rows':>8} {'wall s':>7} {'imports s':>9} {'work s':>7} "
        f"{'peak MB':>8} {'wall x':>7} {'work x':>7} {'mem x':>6}"
    )
    for contender, runs in samples.items():
        wall, imports, work = (_median(runs, f) for f in ("wall_s", "imports_s", "work_s"))
        peak = _median(runs, "peak_mb")
        ratios = (
            [
                f"{wall / _median(baseline, 'wall_s'):.2f}",
                f"{work / _median(baseline, 'work_s'):.2f}",
                f"{peak / _median(baseline, 'peak_mb'):.2f}",
            ]
            if baseline
            else ["-", "-", "-"]
        )
        print(
            f"{contender:<16} {runs[0].rows:>8} {wall:>7.2f} {imports:>9.2f} {work:>7.2f} "
            f"{peak:>8.0f} {ratios[0]:>7} {ratios[1]:>7} {ratios[2]:>6}"
        )


if __name__ == "__main__":
    main()
