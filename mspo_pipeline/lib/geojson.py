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

import json
import re
from collections.abc import Iterable
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


def write_feature_collection(plots: Iterable[PlotFeature], out: TextIO) -> Written:
    """Write an RFC 7946 FeatureCollection of ``plots`` to ``out``."""
    out.write('{"type":"FeatureCollection","features":[')
    features = located = 0
    for plot in plots:
        if plot.usable and plot.longitude is not None and plot.latitude is not None:
            x = coordinate(plot.longitude_as_sent, plot.longitude)
            y = coordinate(plot.latitude_as_sent, plot.latitude)
            geometry = f'{{"type":"Point","coordinates":[{x},{y}]}}'
            located += 1
        else:
            geometry = "null"
        out.write(
            f'{"," if features else ""}\n{{"type":"Feature","id":{json.dumps(plot.feature_id)},'
            f'"geometry":{geometry},"properties":{plot.properties_json}}}'
        )
        features += 1
    out.write("\n]}\n")
    return Written(features=features, located=located)
