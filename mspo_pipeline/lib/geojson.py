"""RFC 7946 GeoJSON of plots, for EUDR due-diligence statements.

One Feature per plot: a Point at the plot's coordinates *as the API sent them* (``3.100000``
stays ``3.100000``: a float round trip would print ``3.1`` and lose the precision the statement
must show), longitude first, WGS84 (RFC 7946 allows no other CRS, so none is named). A plot
without usable GPS keeps its Feature with a null geometry, which RFC 7946 allows, so a
statement can show which plots still need geolocating. Properties carry the certificate, the
areas, the EUDR flags and which day's register the row is; not the smallholder's name.

Written a Feature at a time, so a full register (350k plots) never sits in memory as JSON.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

PROPERTIES = (
    "scheme",
    "entity_smallholder_id",
    "mpob_no",
    "cert_no",
    "cert_status",
    "state",
    "zone",
    "daerah",
    "planted_area",
    "certified_area",
    "gps_usable",
    "gps_precision_ok",
    "gps_decimals",
    "point_sufficient",
    "polygon_required",
    "eudr_point_ready",
    "flag_gps_missing",
    "flag_gps_zero",
    "flag_gps_outside_malaysia",
    "flag_gps_swapped",
    "latitude_as_sent",
    "longitude_as_sent",
    "partition_date",
    "snapshot_date",
    "late_capture",
)
"""What each Feature says about its plot (columns of ``plots_geo``)."""

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def coordinate(sent: str | None, value: float) -> str:
    """The coordinate's JSON text: as sent when that is a JSON number, else the float's
    shortest round-trip text (``+3.5`` or ``03.5`` are not JSON)."""
    text = (sent or "").strip()
    return text if _JSON_NUMBER.fullmatch(text) else repr(float(value))


@dataclass(frozen=True, slots=True)
class PlotFeature:
    """One plot as the exporter reads it: its id, point (when usable) and properties."""

    feature_id: str
    longitude_as_sent: str | None
    latitude_as_sent: str | None
    longitude: float | None
    latitude: float | None
    usable: bool
    properties_json: str
    """The properties object, already JSON (DuckDB's ``to_json``)."""


@dataclass(frozen=True, slots=True)
class Written:
    features: int
    located: int


def point_features(plots: Iterable[PlotFeature]) -> Iterator[tuple[str, str | None, str]]:
    """(id, geometry, properties) of each plot, JSON text; the geometry None without GPS."""
    for plot in plots:
        if plot.usable and plot.longitude is not None and plot.latitude is not None:
            x = coordinate(plot.longitude_as_sent, plot.longitude)
            y = coordinate(plot.latitude_as_sent, plot.latitude)
            yield (
                plot.feature_id,
                f'{{"type":"Point","coordinates":[{x},{y}]}}',
                plot.properties_json,
            )
        else:
            yield plot.feature_id, None, plot.properties_json


def counter_clockwise(ring: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """``ring`` closed (first point repeated last) and counter-clockwise: RFC 7946's right-hand
    rule for an exterior ring, and GeoParquet's ``counterclockwise`` orientation."""
    points = list(ring)
    if points[0] != points[-1]:
        points.append(points[0])
    if signed_area(points) < 0:
        points.reverse()
    return points


def signed_area(ring: Sequence[tuple[float, float]]) -> float:
    """Shoelace area of a closed ring: positive when counter-clockwise."""
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))


def polygon(ring: Sequence[tuple[float, float]]) -> str:
    """A Polygon of one exterior ring of (longitude, latitude), closed and counter-clockwise
    (RFC 7946's right-hand rule)."""
    positions = ",".join(f"[{x!r},{y!r}]" for x, y in counter_clockwise(ring))
    return f'{{"type":"Polygon","coordinates":[[{positions}]]}}'


def write_feature_collection(
    features: Iterable[tuple[str, str | None, str]], out: TextIO
) -> Written:
    """Write (id, geometry, properties) JSON texts as an RFC 7946 FeatureCollection to ``out``."""
    out.write('{"type":"FeatureCollection","features":[')
    written = located = 0
    for feature_id, geometry, properties in features:
        out.write(
            f'{"," if written else ""}\n{{"type":"Feature","id":{json.dumps(feature_id)},'
            f'"geometry":{geometry or "null"},"properties":{properties}}}'
        )
        written += 1
        located += geometry is not None
    out.write("\n]}\n")
    return Written(features=written, located=located)
