"""The map layer at full scale: ``curated/plots_geo`` and the GeoJSON export, beside GeoPandas.

    .venv/bin/python -m benchmarks.geo [--rounds 3] [--scale 1.0]

Untimed set-up: ``mspo demo`` stores one real day of every layer (the emulator at ``--scale``).

Timed, each contender in a fresh process (wall time and the process's own peak RSS, medians over
``--rounds``, the order alternating every round):

- ``plots_geo``: the asset's data work: read ``smallholders`` and the three raw registers, build
  the GeoParquet frame (the GPS text as sent, the EUDR flags, WKB points) and write it with its
  ``geo`` metadata. Baseline ``geopandas_parquet``: the conventional way, GeoPandas'
  ``points_from_xy`` over the typed floats and ``to_parquet``, without the text as sent (so
  without ``gps_precision_ok``) and without the flags.
- ``plots_hex``: the H3 aggregate of that day, read from the stored ``plots_geo``.
- ``maps``: the two PNG maps of the day.
- ``export``: ``mspo export geojson`` of every plot of the day, coordinates as sent. Baseline
  ``geopandas_geojson``: ``GeoDataFrame.to_file(driver="GeoJSON")`` of the same plots and
  properties through pyogrio (GDAL), which writes the floats, not the text sent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.history import _demo_day
from mspo_pipeline.lib.geojson import PROPERTIES

CONTENDERS = (
    "plots_geo",
    "geopandas_parquet",
    "plots_hex",
    "maps",
    "export",
    "geopandas_geojson",
)
BASELINES = {"plots_geo": "geopandas_parquet", "export": "geopandas_geojson"}
REGISTERS = {"SPOC": "spoc_smallholders", "OSH": "osh_smallholders", "GM": "gm_smallholders"}


def _day(folder: str) -> str:
    return f"{folder[:4]}-{folder[4:6]}-{folder[6:]}"


def _plots_geo(root: Path, day: str, out: Path) -> int:
    import polars as pl

    from mspo_pipeline.lib import geo, storage

    def stored(layer: str, table: str) -> pl.DataFrame:
        return storage.read_parquet(
            storage.as_upath(storage.storage_path(str(root), [layer, table], day))
        )

    sent = pl.concat(
        geo.sent_coordinates(stored("raw", table), scheme) for scheme, table in REGISTERS.items()
    )
    frame = geo.plots_geo(stored("curated", "smallholders"), sent)
    metadata = json.dumps(geo.geoparquet_metadata(frame, ["Point"]))
    storage.write_parquet_atomic(
        frame, storage.as_upath(out / "plots_geo.parquet"), {storage.GEOPARQUET_KEY: metadata}
    )
    return frame.height


def _geopandas_parquet(root: Path, day: str, out: Path) -> int:
    import geopandas
    import polars as pl

    from mspo_pipeline.lib import storage

    frame = pl.read_parquet(storage.storage_path(str(root), ["curated", "smallholders"], day))
    table = frame.to_pandas()
    points = geopandas.points_from_xy(table["gps_coordinate_long"], table["gps_coordinate_lat"])
    located = geopandas.GeoDataFrame(table, geometry=points, crs="OGC:CRS84")
    located.to_parquet(out / "smallholders_geo.parquet")
    return len(located)


def _plots_hex(root: Path, day: str, out: Path) -> int:
    import polars as pl

    from mspo_pipeline.lib import geo, storage

    frame = pl.read_parquet(storage.storage_path(str(root), ["curated", "plots_geo"], day))
    return geo.plots_hex(frame, resolution=7, min_plots=5).published.height


def _maps(root: Path, day: str, out: Path) -> int:
    import polars as pl

    from mspo_pipeline.lib import geo, maps, storage

    frame = pl.read_parquet(storage.storage_path(str(root), ["curated", "plots_geo"], day))
    cells = geo.plots_hex(frame, resolution=7, min_plots=5).published
    (out / "plots.png").write_bytes(maps.plots_map(frame, day))
    (out / "hex.png").write_bytes(maps.hex_map(cells, day, k=5))
    return frame.height


def _export(root: Path, day: str, out: Path) -> int:
    from mspo_pipeline import cli

    target = out / "plots.geojson"
    code = cli.main(["export", "geojson", "--data-root", str(root), "--output", str(target)])
    assert code == 0
    return target.stat().st_size


def _geopandas_geojson(root: Path, day: str, out: Path) -> int:
    import geopandas

    from mspo_pipeline.lib import storage

    frame = geopandas.read_parquet(storage.storage_path(str(root), ["curated", "plots_geo"], day))
    plots = frame.loc[~frame["deleted"], [*PROPERTIES, "geometry"]]
    target = out / "plots.geojson"
    plots.to_file(target, driver="GeoJSON")
    return target.stat().st_size


RUNNERS: dict[str, Callable[[Path, str, Path], int]] = {
    "plots_geo": _plots_geo,
    "geopandas_parquet": _geopandas_parquet,
    "plots_hex": _plots_hex,
    "maps": _maps,
    "export": _export,
    "geopandas_geojson": _geopandas_geojson,
}


def _measure(contender: str, root: Path, day: str) -> tuple[float, float, int]:
    """(wall s, peak MB, what it counted) of one contender in a fresh process."""
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.geo", "--child", contender, str(root), day, out],
            stdout=subprocess.PIPE,
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        assert process.stdout is not None
        counted = process.stdout.read().decode().strip()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{contender} failed")
        return wall, usage.ru_maxrss / 1024, int(counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--child", nargs=4, metavar=("CONTENDER", "ROOT", "DAY", "OUT"))
    args = parser.parse_args()
    if args.child:
        contender, root, day, out = args.child
        print(RUNNERS[contender](Path(root), day, Path(out)))
        return

    with tempfile.TemporaryDirectory() as workdir:
        root, folder = _demo_day(Path(workdir), args.scale)
        day = _day(folder)
        samples: dict[str, list[tuple[float, float, int]]] = {c: [] for c in CONTENDERS}
        for round_number in range(args.rounds):
            order = CONTENDERS if round_number % 2 == 0 else CONTENDERS[::-1]
            for contender in order:
                samples[contender].append(_measure(contender, root, day))
            print(f"round {round_number + 1}/{args.rounds} done", flush=True)

    print(f"\nscale {args.scale}, {args.rounds} rounds, medians; each a fresh process")
    print(f"{'contender':<20} {'wall s':>7} {'peak MB':>8} {'wall x':>7} {'mem x':>6}  counted")
    for contender in CONTENDERS:
        wall = statistics.median(s[0] for s in samples[contender])
        peak = statistics.median(s[1] for s in samples[contender])
        baseline = BASELINES.get(contender)
        ratios = ("", "")
        if baseline:
            base_wall = statistics.median(s[0] for s in samples[baseline])
            base_peak = statistics.median(s[1] for s in samples[baseline])
            ratios = (f"{wall / base_wall:.2f}", f"{peak / base_peak:.2f}")
        counted = samples[contender][0][2]
        print(
            f"{contender:<20} {wall:>7.2f} {peak:>8.0f} {ratios[0]:>7} {ratios[1]:>6}  {counted:,}"
        )
    print("counted: rows (plots_geo, geopandas_parquet, maps), cells (plots_hex), bytes (GeoJSON)")


if __name__ == "__main__":
    main()
