"""``mspo export geojson`` and ``mspo map``: the plots of one stored day, for a due-diligence
statement or a look, straight from the store (local folder or ``gs://``).

Both read ``curated/plots_geo`` through the SQL warehouse (``mspo sql``'s views), so a selection
is SQL over the same columns analysts query; ``--certified-on`` asks ``plot_history`` through
``smallholders_as_of``, which answers for any past day, captured or not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import duckdb

from mspo_pipeline.lib.geojson import (
    PROPERTIES,
    PlotFeature,
    point_features,
    polygon,
    write_feature_collection,
)
from mspo_pipeline.lib.tables import PLOT_HISTORY
from mspo_pipeline.lib.warehouse import create_view
from mspo_pipeline.sql import connect

PLOTS_GEO = "plots_geo"
PLOTS_HEX = "plots_hex"
CERTIFIED = "ACTIVE"
"""The certificate status that counts as certified on a day."""
_BATCH = 10_000


class ExportError(Exception):
    """What the user must change (a day not stored, a file not found), said in one line."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Which plots to export; every field left None selects all (deleted plots never)."""

    day: dt.date | None = None
    scheme: str | None = None
    state: str | None = None
    licences: tuple[str, ...] | None = None
    certified_on: dt.date | None = None


def read_licences(path: Path) -> tuple[str, ...]:
    """MPOB licence numbers from a text file: one a line; blank lines and ``#`` comments
    skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ExportError(f"cannot read the licence list {path}: {error.strerror}") from None
    entries = (line.split("#", 1)[0].strip() for line in lines)
    licences = tuple(dict.fromkeys(entry for entry in entries if entry))
    if not licences:
        raise ExportError(f"the licence list {path} names no MPOB licence number (one a line)")
    return licences


def stored_day(conn: duckdb.DuckDBPyConnection, view: str, day: dt.date | None) -> dt.date:
    """``day`` if ``view`` has it stored, the newest stored day when None; else ExportError."""
    days = [
        d
        for (d,) in conn.execute(
            "SELECT DISTINCT partition_date FROM stored_files WHERE view = $view "
            "ORDER BY partition_date",
            {"view": view},
        ).fetchall()
    ]
    if not days:
        raise ExportError(
            f"no curated/{view} partition is stored: materialise curated/{view} (the daily job "
            "does) or point --data-root at the store that has it"
        )
    if day is None:
        return days[-1]
    if day not in days:
        raise ExportError(
            f"curated/{view} has no partition for {day} (stored: {days[0]} to {days[-1]}, "
            f"{len(days)} day(s)); materialise it, or choose a stored day with --date"
        )
    return day


def _selected(conn: duckdb.DuckDBPyConnection, day: dt.date, selection: Selection) -> str:
    """The SQL selecting the plots of ``selection`` from plots_geo for ``day``."""
    where = ["p.partition_date = $day", "NOT p.deleted"]
    if selection.scheme:
        where.append("p.scheme = upper($scheme)")
    if selection.state:
        where.append("upper(p.state) = upper($state)")
    if selection.licences is not None:
        conn.execute("CREATE OR REPLACE TEMP TABLE licences (mpob_no VARCHAR PRIMARY KEY)")
        conn.executemany("INSERT INTO licences VALUES (?)", [[x] for x in selection.licences])
        where.append("p.mpob_no IN (SELECT mpob_no FROM licences)")
    if selection.certified_on is not None:
        where.append(
            "(p.scheme, p.entity_smallholder_id) IN (SELECT scheme, entity_smallholder_id "
            f"FROM smallholders_as_of($certified_on) WHERE cert_status = '{CERTIFIED}' "
            "AND NOT deleted)"
        )
    properties = ", ".join(f"{name} := p.{name}" for name in PROPERTIES)
    return (
        "SELECT p.scheme || '-' || p.entity_smallholder_id, p.longitude_as_sent, "
        "p.latitude_as_sent, p.gps_coordinate_long, p.gps_coordinate_lat, p.gps_usable, "
        f"to_json(struct_pack({properties}))::VARCHAR FROM {PLOTS_GEO} AS p "
        f"WHERE {' AND '.join(where)} ORDER BY p.scheme, p.entity_smallholder_id"
    )


def _parameters(day: dt.date, selection: Selection) -> dict[str, object]:
    values: dict[str, object] = {"day": day}
    if selection.scheme:
        values["scheme"] = selection.scheme
    if selection.state:
        values["state"] = selection.state
    if selection.certified_on is not None:
        values["certified_on"] = selection.certified_on
    return values


def _features(cursor: duckdb.DuckDBPyConnection) -> Iterator[PlotFeature]:
    while rows := cursor.fetchmany(_BATCH):
        for feature_id, long_sent, lat_sent, long, lat, usable, properties in rows:
            yield PlotFeature(feature_id, long_sent, lat_sent, long, lat, bool(usable), properties)


@dataclass(frozen=True, slots=True)
class ExportReport:
    day: dt.date
    features: int
    located: int
    licences_missing: tuple[str, ...] = ()


def export_geojson(data_root: str, selection: Selection, out: TextIO) -> ExportReport:
    """Write the selected plots of the selected day as a FeatureCollection to ``out``."""
    conn, report = connect(data_root)
    with contextlib.closing(conn):
        day = stored_day(conn, PLOTS_GEO, selection.day)  # raises, naming what to do
        if selection.certified_on is not None and PLOT_HISTORY not in report.views:
            raise ExportError(
                "--certified-on needs curated/plot_history, and none is stored: materialise it "
                "(the daily job does), or leave --certified-on out"
            )
        create_view(conn, PLOTS_GEO)
        cursor = conn.execute(_selected(conn, day, selection), _parameters(day, selection))
        written = write_feature_collection(point_features(_features(cursor)), out)
        missing: tuple[str, ...] = ()
        if selection.licences is not None:
            found = {
                licence
                for (licence,) in conn.execute(
                    f"SELECT DISTINCT mpob_no FROM {PLOTS_GEO} WHERE partition_date = $day "
                    "AND mpob_no IN (SELECT mpob_no FROM licences)",
                    {"day": day},
                ).fetchall()
            }
            missing = tuple(x for x in selection.licences if x not in found)
    return ExportReport(day, written.features, written.located, missing)


def export_cells(data_root: str, day: dt.date | None, out: TextIO) -> ExportReport:
    """Write the published H3 cells of the day (``plots_hex``) as Polygon Features to ``out``:
    the aggregate that can be shared where points and names cannot."""
    from mspo_pipeline.lib.geo import cell_ring

    conn, _ = connect(data_root)
    with contextlib.closing(conn):
        chosen = stored_day(conn, PLOTS_HEX, day)
        create_view(conn, PLOTS_HEX)
        # every column is a property but the geometry (and its extent), which the Feature has
        cells = conn.execute(
            "SELECT cell.h3_cell, to_json(cell)::VARCHAR FROM (SELECT * EXCLUDE (geometry, bbox) "
            f"FROM {PLOTS_HEX} WHERE partition_date = $day) AS cell ORDER BY cell.h3_cell",
            {"day": chosen},
        ).fetchall()
    features = ((cell, polygon(cell_ring(cell)), json) for cell, json in cells)
    written = write_feature_collection(features, out)
    return ExportReport(chosen, written.features, written.located)


def describe_export(report: ExportReport, target: str, *, cells: bool = False) -> str:
    """What was written, for stderr: counts, the plots left without a point, unknown licences."""
    if cells:
        return f"wrote {report.features:,} H3 cell(s) of {report.day} to {target}"
    text = (
        f"wrote {report.features:,} plot(s) of {report.day} to {target}: {report.located:,} "
        f"with a point, {report.features - report.located:,} without usable GPS (geometry null)"
    )
    if report.licences_missing:
        shown = ", ".join(report.licences_missing[:10])
        more = len(report.licences_missing) - 10
        text += (
            f"\n{len(report.licences_missing)} licence(s) of the list are not in the register "
            f"on {report.day}: {shown}" + (f" and {more} more" if more > 0 else "")
        )
    return text


def run_geojson(data_root: str, selection: Selection, output: str, *, cells: bool = False) -> int:
    """``mspo export geojson``: exit code 0, or 2 with the error on stderr. A file is written
    under a temporary name and renamed when complete, so a failed export leaves none."""

    def export(out: TextIO) -> ExportReport:
        if cells:
            return export_cells(data_root, selection.day, out)
        return export_geojson(data_root, selection, out)

    try:
        if cells and selection != Selection(day=selection.day):
            raise ExportError("--cells exports every published cell: it takes --date only")
        if output == "-":
            report = export(sys.stdout)
        else:
            path = Path(output)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")
            try:
                with partial.open("w", encoding="utf-8") as out:
                    report = export(out)
                partial.replace(path)
            finally:
                partial.unlink(missing_ok=True)
    except ExportError as error:
        print(f"mspo export geojson: {error}", file=sys.stderr)
        return 2
    target = output if output != "-" else "stdout"
    print(describe_export(report, target, cells=cells), file=sys.stderr)
    return 0


def run_map(data_root: str, day: dt.date | None, output_dir: Path) -> int:
    """``mspo map``: the day's two maps as PNG files in ``output_dir``."""
    from mspo_pipeline.lib import maps, storage

    conn, report = connect(data_root)
    with contextlib.closing(conn):
        try:
            chosen = stored_day(conn, PLOTS_GEO, day)
        except ExportError as error:
            print(f"mspo map: {error}", file=sys.stderr)
            return 2
        for view in (PLOTS_GEO, PLOTS_HEX):
            if view in report.views:
                create_view(conn, view)
        columns = "gps_coordinate_long, gps_coordinate_lat, gps_usable, deleted, cert_status"
        plots = conn.sql(
            f"SELECT {columns} FROM {PLOTS_GEO} WHERE partition_date = $day",
            params={"day": chosen},
        ).pl()
        hex_files = conn.execute(
            "SELECT path FROM stored_files WHERE view = $view AND partition_date = $day",
            {"view": PLOTS_HEX, "day": chosen},
        ).fetchall()
        cells = None
        if hex_files:
            cells = conn.sql(
                f"SELECT h3_cell, plots, geometry::BLOB AS geometry FROM {PLOTS_HEX} "
                "WHERE partition_date = $day",
                params={"day": chosen},
            ).pl()
    output_dir.mkdir(parents=True, exist_ok=True)
    written = [output_dir / f"mspo-plots-{chosen}.png"]
    written[0].write_bytes(maps.plots_map(plots, str(chosen)))
    if cells is not None:
        # k as the day was published with (its footer), not as this shell's environment says
        k = int(storage.read_provenance(hex_files[0][0]).get("min_plots", 1))
        written.append(output_dir / f"mspo-hex-{chosen}.png")
        written[1].write_bytes(maps.hex_map(cells, str(chosen), k=k))
    else:
        print(f"mspo map: no curated/plots_hex for {chosen}: only the plots map", file=sys.stderr)
    for path in written:
        print(path)
    return 0
