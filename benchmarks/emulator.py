"""How fast the emulator serves the full-scale SPOC list: generated, cached, gzipped.

Run: ``.venv/bin/python -m benchmarks.emulator [--rounds 3] [--scale 1.0]``. Every figure is
measured from a client on a real socket (``http.client``), body read to the last byte.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import statistics
import time
from collections.abc import Callable, Sequence

import psutil

from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib.catalog import ENDPOINTS_BY_NAME

FIRST_DATE = dt.date(2026, 11, 20)


def _get(server: EmulatorServer, path: str, *, gzip: bool) -> int:
    """Bytes received for one GET of ``path``."""
    connection = http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=600)
    try:
        headers = {"Accept-Encoding": "gzip"} if gzip else {}
        connection.request("GET", "/api/" + path, headers=headers)
        response = connection.getresponse()
        size = len(response.read())
        if response.status != 200:
            raise RuntimeError(f"GET /api/{path} answered {response.status}")
        return size
    finally:
        connection.close()


def _timed(action: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    size = action()
    return time.perf_counter() - start, size


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    path = ENDPOINTS_BY_NAME["spoc_smallholders"].path

    with EmulatorServer(scale=args.scale, date=FIRST_DATE) as server:
        cold, size = _timed(lambda: _get(server, path, gzip=False))
        new_day, cached, first_gzip, cached_gzip = [], [], [], []
        gzip_size = 0
        for round_ in range(args.rounds):
            server.set_date(FIRST_DATE + dt.timedelta(days=round_ + 1))
            new_day.append(_timed(lambda: _get(server, path, gzip=False))[0])
            cached.append(_timed(lambda: _get(server, path, gzip=False))[0])
            seconds, gzip_size = _timed(lambda: _get(server, path, gzip=True))
            first_gzip.append(seconds)
            cached_gzip.append(_timed(lambda: _get(server, path, gzip=True))[0])
        rss = psutil.Process().memory_info().rss

    median = statistics.median
    print(
        f"emulator benchmark: spoc/get-spoc-list-public, scale {args.scale}, {args.rounds} rounds"
    )
    print(f"  body size                          {size / 1e6:8.1f} MB")
    print(f"  first request ever (builds data)   {cold:8.2f} s")
    print(f"  first request of a new day         {median(new_day):8.2f} s  (median)")
    print(f"  same day again, from cache         {median(cached):8.2f} s  (median)")
    print(f"  gzip body size                     {gzip_size / 1e6:8.1f} MB")
    print(f"  first gzip request of the day      {median(first_gzip):8.2f} s  (median)")
    print(f"  gzip again, from cache             {median(cached_gzip):8.2f} s  (median)")
    print(f"  process RSS at the end             {rss / 1e6:8.0f} MB")


if __name__ == "__main__":
    main()
