"""Plots on the map: GeoParquet points with EUDR readiness flags, and privacy-safe H3 cells.

The EU Deforestation Regulation (EUDR) asks for each plot's geolocation as WGS84 coordinates
with at least six decimal places; a point is enough for a plot of at most 4 ha, a larger one
needs its polygon. The API sends a plot's GPS as two strings, so what it *sent* decides the
precision: ``3.1`` parsed to a float cannot be told from ``3.100000``. ``plots_geo`` therefore
keeps the raw text beside the typed value and counts its decimals there.

Files follow GeoParquet 1.1: the geometry is a WKB column named in the ``geo`` key-value
metadata, with the file's extent; no ``crs`` member means OGC:CRS84 (WGS84, longitude first),
which is what the API's coordinates are; the cells' ``bbox`` struct column is declared as their
covering, so readers can skip row groups by extent. GeoPandas, DuckDB (``GEOMETRY('OGC:CRS84')``)
and BigQuery read them as they are.

``plots_hex`` counts plots per H3 cell and publishes a cell only when it holds at least ``k``
plots: a cell of one or two plots would point at a farm, and through the register at its owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from mspo_pipeline.lib.geojson import counter_clockwise
from mspo_pipeline.lib.schemas import CERT_STATUSES, EUDR_MIN_DECIMALS, EUDR_POINT_MAX_HA

GEOMETRY = "geometry"
BBOX = "bbox"
GEOPARQUET_VERSION = "1.1.0"

SENT = ("entity_smallholder_id", "gps_coordinate_lat", "gps_coordinate_long")
"""The raw register's columns ``sent_coordinates`` reads."""
SENT_LAT = "latitude_as_sent"
SENT_LONG = "longitude_as_sent"
_KEY = ("scheme", "entity_smallholder_id")
HEX_INPUT = (
    "partition_date", "gps_coordinate_lat", "gps_coordinate_long", "cert_status",
    "planted_area", "certified_area", "gps_usable", "deleted",
)  # fmt: skip
"""What ``plots_hex`` reads of a plot."""
_DECIMALS = r"^[+-]?\d*\.(\d+)$"
_INTEGER = r"^[+-]?\d+$"


def decimals(text: pl.Expr) -> pl.Expr:
    """Digits after the decimal point of a plain decimal text (``"3"`` has 0); null otherwise."""
    trimmed = text.str.strip_chars()
    return (
        pl.when(trimmed.str.contains(_INTEGER))
        .then(pl.lit(0, dtype=pl.Int32))
        .otherwise(trimmed.str.extract(_DECIMALS, 1).str.len_chars().cast(pl.Int32))
    )


def sent_coordinates(raw: pl.DataFrame, scheme: str) -> pl.DataFrame:
    """One scheme's raw register reduced to each plot's GPS text as sent.

    A plot id the register sends twice is left out: validation quarantines every row of a
    duplicated key, so no curated plot can come from it.
    """
    frame = raw.select(
        pl.lit(scheme).alias("scheme"),
        pl.col("entity_smallholder_id").cast(pl.Int64, strict=False),
        *(
            (
                pl.col(field).cast(pl.String) if field in raw.columns else pl.lit(None, pl.String)
            ).alias(alias)
            for field, alias in (
                ("gps_coordinate_lat", SENT_LAT),
                ("gps_coordinate_long", SENT_LONG),
            )
        ),
    )
    return frame.filter(pl.col("entity_smallholder_id").is_unique())


def plots_geo(smallholders: pl.DataFrame, sent: pl.DataFrame) -> pl.DataFrame:
    """Every curated plot with its GPS as sent, the EUDR flags, and a WKB point geometry."""
    frame = smallholders.join(sent, on=_KEY, how="left", maintain_order="left")
    lat_decimals, long_decimals = decimals(pl.col(SENT_LAT)), decimals(pl.col(SENT_LONG))
    fewest = (
        pl.when(lat_decimals.is_not_null() & long_decimals.is_not_null())
        .then(pl.min_horizontal(lat_decimals, long_decimals))
        .cast(pl.Int32)
    )
    point_sufficient = (pl.col("certified_area") <= EUDR_POINT_MAX_HA).fill_null(False)
    precision_ok = (fewest >= EUDR_MIN_DECIMALS).fill_null(False)
    frame = frame.with_columns(
        fewest.alias("gps_decimals"),
        precision_ok.alias("gps_precision_ok"),
        point_sufficient.alias("point_sufficient"),
        point_sufficient.not_().alias("polygon_required"),
        (pl.col("gps_usable") & precision_ok & point_sufficient).alias("eudr_point_ready"),
    )
    usable = frame.get_column("gps_usable").to_numpy()
    long = frame.get_column("gps_coordinate_long").fill_null(0.0).to_numpy()
    lat = frame.get_column("gps_coordinate_lat").fill_null(0.0).to_numpy()
    return frame.with_columns(pl.Series(GEOMETRY, wkb_points(long, lat, usable)))


_WKB_POINT = np.dtype([("order", "u1"), ("kind", "<u4"), ("x", "<f8"), ("y", "<f8")])
"""A little-endian WKB point: byte order 1, geometry type 1, then x and y (21 bytes)."""


def wkb_points(x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> pa.Array:
    """WKB points (x, y) as one Arrow binary array, null where ``valid`` is false."""
    records = np.empty(len(x), dtype=_WKB_POINT)
    records["order"], records["kind"], records["x"], records["y"] = 1, 1, x, y
    offsets = np.arange(len(x) + 1, dtype=np.int32) * _WKB_POINT.itemsize
    points = pa.Array.from_buffers(
        pa.binary(), len(x), [None, pa.py_buffer(offsets), pa.py_buffer(records.tobytes())]
    )
    mask = pa.array(~np.asarray(valid, dtype=bool))
    return pa.compute.if_else(mask, pa.scalar(None, pa.binary()), points)


def wkb_polygon(ring: Sequence[tuple[float, float]]) -> bytes:
    """A little-endian WKB polygon of one exterior ring of (x, y), closed and counter-clockwise
    (RFC 7946's right-hand rule, GeoParquet's ``orientation``)."""
    points = counter_clockwise(ring)
    coordinates = np.asarray(points, dtype="<f8")
    header = np.array([1], "u1").tobytes() + np.array([3, 1, len(points)], "<u4").tobytes()
    return header + coordinates.tobytes()


def _extent(frame: pl.DataFrame) -> list[float] | None:
    """(xmin, ymin, xmax, ymax) of the frame's geometries: from its ``bbox`` covering column,
    or, for points, from the WKB itself; None when it has none."""
    if BBOX in frame.columns:
        edges = frame.get_column(BBOX).struct.unnest().drop_nulls()
        if edges.is_empty():
            return None
        lows, highs = edges.min().row(0), edges.max().row(0)
        return [lows[0], lows[1], highs[2], highs[3]]
    points = frame.get_column(GEOMETRY).drop_nulls()
    if points.is_empty():
        return None
    decoded = np.frombuffer(b"".join(points.to_list()), dtype=_WKB_POINT)
    return [
        float(decoded["x"].min()),
        float(decoded["y"].min()),
        float(decoded["x"].max()),
        float(decoded["y"].max()),
    ]


def geoparquet_metadata(frame: pl.DataFrame, geometry_types: Sequence[str]) -> dict[str, Any]:
    """The ``geo`` metadata of ``frame`` (GeoParquet 1.1), with the extent of its geometries.

    A ``bbox`` struct column is declared as the covering; points have none, as it would repeat
    each point four times (a fifth of the file), and their typed latitude and longitude
    columns already carry the row groups' extents for readers that filter."""
    column: dict[str, Any] = {"encoding": "WKB", "geometry_types": list(geometry_types)}
    if BBOX in frame.columns:
        column["covering"] = {
            "bbox": {edge: [BBOX, edge] for edge in ("xmin", "ymin", "xmax", "ymax")}
        }
    extent = _extent(frame)
    if extent is not None:
        column["bbox"] = extent
    if "Polygon" in geometry_types:
        column["orientation"] = "counterclockwise"
    return {
        "version": GEOPARQUET_VERSION,
        "primary_column": GEOMETRY,
        "columns": {GEOMETRY: column},
    }


# --- H3 aggregates ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HexCells:
    """Plots per H3 cell, the cells published and what suppression held back."""

    published: pl.DataFrame
    cells_suppressed: int
    plots_suppressed: int
    plots_located: int


def plots_hex(geo: pl.DataFrame, *, resolution: int, min_plots: int) -> HexCells:
    """Plots, hectares and statuses per H3 cell at ``resolution``; cells with fewer than
    ``min_plots`` plots are left out (and counted)."""
    import h3

    if not 0 <= resolution <= 15:
        raise ValueError(f"H3 resolution {resolution} is not 0..15")
    if min_plots < 1:
        raise ValueError(
            f"the smallest publishable cell must hold at least 1 plot, not {min_plots}"
        )
    located = geo.select(HEX_INPUT).filter(pl.col("gps_usable") & pl.col("deleted").not_())
    cells = [
        h3.latlng_to_cell(lat, long, resolution)
        for lat, long in zip(
            located.get_column("gps_coordinate_lat").to_list(),
            located.get_column("gps_coordinate_long").to_list(),
            strict=True,
        )
    ]
    status = pl.col("cert_status")
    counts = (
        located.with_columns(pl.Series("h3_cell", cells, dtype=pl.String))
        .group_by("partition_date", "h3_cell")
        .agg(
            pl.len().cast(pl.Int64).alias("plots"),
            *(
                (status == s).sum().cast(pl.Int64).alias(f"plots_{s.lower()}")
                for s in CERT_STATUSES
            ),
            pl.col("planted_area").sum().alias("planted_ha"),
            pl.col("certified_area").sum().alias("certified_ha"),
        )
        .sort("h3_cell")
    )
    kept = counts.filter(pl.col("plots") >= min_plots)
    held_back = counts.filter(pl.col("plots") < min_plots)
    centres = [h3.cell_to_latlng(cell) for cell in kept.get_column("h3_cell").to_list()]
    rings = [cell_ring(cell) for cell in kept.get_column("h3_cell").to_list()]
    published = kept.with_columns(
        pl.lit(resolution, dtype=pl.Int8).alias("h3_resolution"),
        pl.Series("cell_lat", [lat for lat, _ in centres], dtype=pl.Float64),
        pl.Series("cell_long", [long for _, long in centres], dtype=pl.Float64),
        pl.Series(GEOMETRY, [wkb_polygon(ring) for ring in rings], dtype=pl.Binary),
        pl.Series(
            BBOX,
            [_ring_extent(ring) for ring in rings],
            dtype=pl.Struct({e: pl.Float64 for e in ("xmin", "ymin", "xmax", "ymax")}),
        ),
    ).select(
        "partition_date", "h3_cell", "h3_resolution", *counts.columns[2:], "cell_lat", "cell_long",
        GEOMETRY, BBOX,
    )  # fmt: skip
    return HexCells(
        published=published,
        cells_suppressed=held_back.height,
        plots_suppressed=int(held_back.get_column("plots").sum()),
        plots_located=located.height,
    )


def cell_ring(cell: str) -> list[tuple[float, float]]:
    """An H3 cell's boundary as (longitude, latitude) pairs, open (first point not repeated)."""
    import h3

    return [(long, lat) for lat, long in h3.cell_to_boundary(cell)]


def _ring_extent(ring: Sequence[tuple[float, float]]) -> dict[str, float]:
    xs, ys = [x for x, _ in ring], [y for _, y in ring]
    return {"xmin": min(xs), "ymin": min(ys), "xmax": max(xs), "ymax": max(ys)}


@dataclass(frozen=True, slots=True)
class KAnonymity:
    """Whether every published cell holds at least ``k`` plots, and the cells that do not."""

    k: int
    smallest: int | None
    below: pl.DataFrame

    @property
    def passed(self) -> bool:
        return self.below.is_empty()


def k_anonymity(published: pl.DataFrame, k: int) -> KAnonymity:
    """Check a frame of published cells against ``k`` (the check reads what is written)."""
    plots = published.get_column("plots")
    below = published.filter(pl.col("plots").is_null() | (pl.col("plots") < k))
    smallest = None if plots.is_empty() else int(plots.min())  # type: ignore[arg-type]
    return KAnonymity(k=k, smallest=smallest, below=below.select("h3_cell", "plots"))
