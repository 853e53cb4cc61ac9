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
    # Each text's decimals are counted once, into columns dropped below: the flags each use
    # the count, and a regex re-evaluated for every use costs more than the rest of the frame.
    counted = ("_lat_decimals", "_long_decimals")
    lat_decimals, long_decimals = pl.col(counted[0]), pl.col(counted[1])
    frame = smallholders.join(sent, on=_KEY, how="left", maintain_order="left").with_columns(
        decimals(pl.col(SENT_LAT)).alias(counted[0]),
        decimals(pl.col(SENT_LONG)).alias(counted[1]),
    )
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
    ).drop(counted)
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


@dataclass(frozen=True, slots=True)
class Rings:
    """Polygons' exterior rings of (longitude, latitude) points, closed and counter-clockwise
    (RFC 7946's right-hand rule, GeoParquet's ``orientation``), grouped by length so that each
    group is one array and is encoded or measured without a Python loop per polygon."""

    groups: tuple[tuple[np.ndarray, np.ndarray], ...]
    """``(positions, points)``: which polygons, and their rings as an (n, length, 2) array."""
    count: int

    def wkb(self) -> list[bytes]:
        """Each polygon as little-endian WKB of its one ring, in position order."""
        polygons = [b""] * self.count
        for positions, points in self.groups:
            length = points.shape[1]
            header = np.frombuffer(
                np.array([1], "u1").tobytes() + np.array([3, 1, length], "<u4").tobytes(), "u1"
            )
            records = np.empty((len(positions), header.size + length * 16), dtype="u1")
            records[:, : header.size] = header
            records[:, header.size :] = points.astype("<f8").reshape(len(positions), -1).view("u1")
            size, data = records.shape[1], records.tobytes()
            for row, position in enumerate(positions.tolist()):
                polygons[position] = data[row * size : (row + 1) * size]
        return polygons

    def extents(self) -> pl.Series:
        """Each polygon's ``bbox`` struct (xmin, ymin, xmax, ymax), in position order."""
        edges = np.empty((self.count, 4))
        for positions, points in self.groups:
            edges[positions, :2] = points.min(axis=1)
            edges[positions, 2:] = points.max(axis=1)
        return pl.DataFrame(edges, schema=list(_EDGES), orient="row").to_struct(BBOX)


_EDGES = ("xmin", "ymin", "xmax", "ymax")


def cell_rings(cells: Sequence[str]) -> Rings:
    """H3 cells' boundaries as ``Rings``. A cell has 6 vertices (a pentagon 5), more where it
    crosses an icosahedron edge, so a few cells of a day fall in groups of their own."""
    import h3

    boundaries = [h3.cell_to_boundary(cell) for cell in cells]
    lengths = np.fromiter(map(len, boundaries), dtype=np.int64, count=len(boundaries))
    groups = []
    for length in np.unique(lengths).tolist():
        positions = np.flatnonzero(lengths == length)
        points = np.array([boundaries[p] for p in positions.tolist()], dtype="f8")[..., ::-1]
        closed = np.concatenate([points, points[:, :1]], axis=1)
        x, y = closed[..., 0], closed[..., 1]
        clockwise = (x[:, :-1] * y[:, 1:] - x[:, 1:] * y[:, :-1]).sum(axis=1) < 0
        closed[clockwise] = closed[clockwise, ::-1]
        groups.append((positions, closed))
    return Rings(tuple(groups), len(boundaries))


def padded_rings(polygons: pl.Series) -> np.ndarray:
    """One-ring WKB polygons (``Rings.wkb``) as one (polygons, most points, 2) array, a shorter
    ring padded with its last point (a zero-length edge draws nothing): the form matplotlib's
    ``PolyCollection`` takes without a Python loop per polygon."""
    rings = [
        np.frombuffer(polygon, dtype="<f8", offset=13).reshape(-1, 2)
        for polygon in polygons.to_list()
    ]
    padded = np.empty((len(rings), max(map(len, rings), default=0), 2))
    for row, ring in enumerate(rings):
        padded[row, : len(ring)] = ring
        padded[row, len(ring) :] = ring[-1]
    return padded


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
    from h3.api import basic_int

    if not 0 <= resolution <= 15:
        raise ValueError(f"H3 resolution {resolution} is not 0..15")
    if min_plots < 1:
        raise ValueError(
            f"the smallest publishable cell must hold at least 1 plot, not {min_plots}"
        )
    located = geo.select(HEX_INPUT).filter(pl.col("gps_usable") & pl.col("deleted").not_())
    # Each plot's cell as an integer (faster than as text), the text of each cell once.
    cells = [
        basic_int.latlng_to_cell(lat, long, resolution)
        for lat, long in zip(
            located.get_column("gps_coordinate_lat").to_list(),
            located.get_column("gps_coordinate_long").to_list(),
            strict=True,
        )
    ]
    status = pl.col("cert_status")
    counts = (
        located.with_columns(pl.Series("h3_cell", cells, dtype=pl.UInt64))
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
    )
    counts = counts.with_columns(
        pl.Series(
            "h3_cell", [h3.int_to_str(c) for c in counts.get_column("h3_cell")], dtype=pl.String
        )
    ).sort("h3_cell")
    kept = counts.filter(pl.col("plots") >= min_plots)
    held_back = counts.filter(pl.col("plots") < min_plots)
    centres = [h3.cell_to_latlng(cell) for cell in kept.get_column("h3_cell").to_list()]
    rings = cell_rings(kept.get_column("h3_cell").to_list())
    published = kept.with_columns(
        pl.lit(resolution, dtype=pl.Int8).alias("h3_resolution"),
        pl.Series("cell_lat", [lat for lat, _ in centres], dtype=pl.Float64),
        pl.Series("cell_long", [long for _, long in centres], dtype=pl.Float64),
        pl.Series(GEOMETRY, rings.wkb(), dtype=pl.Binary),
        rings.extents(),
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
