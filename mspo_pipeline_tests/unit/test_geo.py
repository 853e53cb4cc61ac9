"""lib/geo.py, lib/geojson.py and lib/maps.py on small hand-made frames."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import geopandas
import polars as pl
import pyarrow.parquet as pq
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from mspo_pipeline.lib import geo, geojson, maps, storage
from mspo_pipeline.lib.schemas import CERT_STATUSES

DAY = dt.date(2026, 11, 21)


def plots(*rows: dict[str, Any]) -> pl.DataFrame:
    """Curated ``smallholders`` rows with what plots_geo and plots_hex read (defaults filled)."""
    defaults = {
        "partition_date": DAY,
        "scheme": "SPOC",
        "cert_status": "ACTIVE",
        "deleted": False,
        "planted_area": 2.0,
        "certified_area": 2.0,
        "gps_coordinate_lat": 3.1,
        "gps_coordinate_long": 101.5,
        "gps_usable": True,
    }
    return pl.DataFrame(
        [{**defaults, **row} for row in rows],
        schema_overrides={"certified_area": pl.Float64, "gps_coordinate_lat": pl.Float64},
    )


def raw(*rows: tuple[int, str | None, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "entity_smallholder_id": pl.Int64,
            "gps_coordinate_lat": pl.String,
            "gps_coordinate_long": pl.String,
        },
        orient="row",
    )


# --- decimals as sent ------------------------------------------------------------------------


@given(
    sign=st.sampled_from(["", "-", "+"]),
    whole=st.integers(min_value=0, max_value=999),
    fraction=st.text(alphabet="0123456789", min_size=1, max_size=12),
)
def test_decimals_counts_the_digits_sent_after_the_point(
    sign: str, whole: int, fraction: str
) -> None:
    """Trailing zeros count: ``3.100000`` has six decimals, which a float would lose."""
    text = f"{sign}{whole}.{fraction}"
    counted = pl.select(geo.decimals(pl.lit(text))).item()
    assert counted == len(fraction)


@pytest.mark.parametrize(("text", "expected"), [("3", 0), (" 3.25 ", 2), ("N/A", None)])
def test_decimals_of_integers_padding_and_text(text: str, expected: int | None) -> None:
    assert pl.select(geo.decimals(pl.lit(text))).item() == expected


@pytest.mark.parametrize("text", ["", "1.2.3", "3,5", "5551060e-6", "1.5E+2", "nan"])
def test_decimals_of_anything_but_a_plain_decimal_is_null(text: str) -> None:
    assert pl.select(geo.decimals(pl.lit(text))).item() is None


# --- plots_geo ---------------------------------------------------------------------------------


@pytest.fixture
def geo_frame() -> pl.DataFrame:
    smallholders = plots(
        {"entity_smallholder_id": 1, "certified_area": 4.0},  # at the EUDR limit: a point will do
        {"entity_smallholder_id": 2},  # five decimals sent
        {"entity_smallholder_id": 3, "gps_usable": False, "gps_coordinate_lat": None},  # N/A
        {"entity_smallholder_id": 4, "gps_usable": False, "gps_coordinate_lat": 0.0},  # zeros
        {"entity_smallholder_id": 5, "certified_area": 4.01},
        {"entity_smallholder_id": 6, "certified_area": None},
        {"entity_smallholder_id": 7},  # its id is sent twice: quarantined, no text
        {"entity_smallholder_id": 1, "scheme": "OSH", "gps_coordinate_lat": 5.25},
    )
    spoc = raw(
        (1, "3.100000", "101.500000"),
        (2, "3.10000", "101.500000"),
        (3, "N/A", "N/A"),
        (4, "0.000000", "0.000000"),
        (5, "3.100000", "101.500000"),
        (6, "3.100000", "101.500000"),
        (7, "3.100000", "101.500000"),
        (7, "3.200000", "101.500000"),
    )
    osh = raw((1, "5.25", "101.5"))
    sent = pl.concat([geo.sent_coordinates(spoc, "SPOC"), geo.sent_coordinates(osh, "OSH")])
    return geo.plots_geo(smallholders, sent)


def flags(frame: pl.DataFrame, scheme: str, plot: int) -> dict[str, Any]:
    [row] = frame.filter(
        (pl.col("scheme") == scheme) & (pl.col("entity_smallholder_id") == plot)
    ).to_dicts()
    return row


def test_eudr_flags_follow_the_text_sent_and_the_certified_area(geo_frame: pl.DataFrame) -> None:
    first = flags(geo_frame, "SPOC", 1)
    assert (first["latitude_as_sent"], first["gps_decimals"]) == ("3.100000", 6)
    assert first["gps_precision_ok"] and first["point_sufficient"] and first["eudr_point_ready"]
    assert not first["polygon_required"]
    five = flags(geo_frame, "SPOC", 2)
    assert (five["gps_decimals"], five["gps_precision_ok"], five["eudr_point_ready"]) == (
        5,
        False,
        False,
    )
    assert flags(geo_frame, "SPOC", 5)["polygon_required"]
    unknown_area = flags(geo_frame, "SPOC", 6)
    assert unknown_area["polygon_required"] and not unknown_area["point_sufficient"]


def test_unusable_gps_has_no_point_whatever_its_precision(geo_frame: pl.DataFrame) -> None:
    text = flags(geo_frame, "SPOC", 3)
    assert text["gps_decimals"] is None and not text["gps_precision_ok"]
    zeros = flags(geo_frame, "SPOC", 4)
    assert zeros["gps_precision_ok"] and not zeros["eudr_point_ready"]
    for row in (text, zeros):
        assert row[geo.GEOMETRY] is None


def test_a_plot_id_sent_twice_has_no_text_and_schemes_do_not_mix(
    geo_frame: pl.DataFrame,
) -> None:
    assert flags(geo_frame, "SPOC", 7)["latitude_as_sent"] is None
    assert flags(geo_frame, "OSH", 1)["latitude_as_sent"] == "5.25"
    assert geo_frame.height == 8


def test_points_are_wkb_longitude_first(geo_frame: pl.DataFrame) -> None:
    row = flags(geo_frame, "OSH", 1)
    point = shapely.from_wkb(row[geo.GEOMETRY])
    assert (point.x, point.y) == (101.5, 5.25)


def test_geoparquet_reads_back_in_geopandas_and_duckdb(
    geo_frame: pl.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "plots_geo.parquet"
    metadata = geo.geoparquet_metadata(geo_frame, ["Point"])
    storage.write_parquet_atomic(
        geo_frame, storage.as_upath(path), {storage.GEOPARQUET_KEY: json.dumps(metadata)}
    )
    frame = geopandas.read_parquet(path)
    assert frame.crs.to_string() == "OGC:CRS84"
    assert len(frame) == geo_frame.height
    assert frame.geometry.notna().sum() == geo_frame.get_column("gps_usable").sum()
    footer = json.loads(pq.read_metadata(path).metadata[b"geo"])
    assert footer["version"] == "1.1.0" and footer["primary_column"] == "geometry"
    assert footer["columns"]["geometry"]["bbox"] == [101.5, 3.1, 101.5, 5.25]
    [(kind, located)] = duckdb.sql(
        f"SELECT any_value(typeof(geometry)), count(geometry) FROM '{path}'"
    ).fetchall()
    assert (kind, located) == ("GEOMETRY('OGC:CRS84')", frame.geometry.notna().sum())


# --- plots_hex ---------------------------------------------------------------------------------


@pytest.fixture
def clustered() -> pl.DataFrame:
    """Six plots in one village near Kuala Lumpur, two in Sabah, and plots that never count."""
    village = [
        {"entity_smallholder_id": n, "gps_coordinate_lat": 3.1 + n * 1e-4, "cert_status": status}
        for n, status in enumerate(["ACTIVE", "ACTIVE", "ACTIVE", "EXPIRED", "DELAYED", "ACTIVE"])
    ]
    sabah = [
        {"entity_smallholder_id": 10 + n, "gps_coordinate_lat": 5.9, "gps_coordinate_long": 116.1}
        for n in range(2)
    ]
    never = [
        {"entity_smallholder_id": 20, "deleted": True},
        {"entity_smallholder_id": 21, "gps_usable": False},
    ]
    return plots(*village, *sabah, *never)


def test_cells_below_k_are_suppressed_and_counted(clustered: pl.DataFrame) -> None:
    cells = geo.plots_hex(clustered, resolution=7, min_plots=5)
    assert cells.published.get_column("plots").to_list() == [6]
    assert (cells.cells_suppressed, cells.plots_suppressed, cells.plots_located) == (1, 2, 8)
    [row] = cells.published.to_dicts()
    assert sum(row[f"plots_{s.lower()}"] for s in CERT_STATUSES) == row["plots"]
    assert (row["plots_active"], row["certified_ha"], row["h3_resolution"]) == (4, 12.0, 7)
    assert geo.k_anonymity(cells.published, 5).passed


def test_cell_polygons_are_closed_counter_clockwise_and_hold_their_plots(
    clustered: pl.DataFrame,
) -> None:
    [row] = (
        geo.plots_hex(clustered, resolution=7, min_plots=1)
        .published.filter(pl.col("plots") == 6)
        .to_dicts()
    )
    cell = shapely.from_wkb(row[geo.GEOMETRY])
    assert cell.exterior.is_ccw and cell.exterior.is_closed
    assert cell.contains(shapely.Point(101.5, 3.1))
    assert cell.bounds == pytest.approx(tuple(row[geo.BBOX].values()))


def test_rings_of_cells_of_every_shape_are_their_cells() -> None:
    """Hexagons, a pentagon and cells crossing an icosahedron edge (more vertices) are encoded
    group by group; each polygon must still be its own cell, in its place."""
    import h3

    hexagon = h3.latlng_to_cell(3.1, 101.5, 7)
    pentagon = sorted(h3.get_pentagons(7))[0]
    edge_crossing = next(
        cell
        for cell in h3.grid_disk(h3.cell_to_center_child(pentagon, 7), 30)
        if len(h3.cell_to_boundary(cell)) > 6
    )
    cells = [hexagon, pentagon, edge_crossing, hexagon]
    rings = geo.cell_rings(cells)
    assert len(rings.groups) == 3  # three ring lengths
    polygons = rings.wkb()
    drawn = geo.padded_rings(pl.Series(polygons))
    for cell, wkb, extent, padded in zip(
        cells, polygons, rings.extents().to_list(), drawn, strict=True
    ):
        polygon = shapely.from_wkb(wkb)
        expected = shapely.Polygon([(long, lat) for lat, long in h3.cell_to_boundary(cell)])
        assert polygon.exterior.is_ccw and polygon.exterior.is_closed
        assert polygon.equals(expected)
        assert polygon.bounds == pytest.approx(tuple(extent.values()))
        assert shapely.Polygon(padded).equals(expected)


def test_k_anonymity_fails_on_a_cell_below_k() -> None:
    published = pl.DataFrame({"h3_cell": ["a", "b", "c"], "plots": [7, 3, 5]})
    proof = geo.k_anonymity(published, 5)
    assert not proof.passed
    assert proof.below.to_dicts() == [{"h3_cell": "b", "plots": 3}]
    assert proof.smallest == 3


@pytest.mark.parametrize(("resolution", "min_plots"), [(16, 5), (-1, 5), (7, 0)])
def test_impossible_grid_settings_are_refused(
    clustered: pl.DataFrame, resolution: int, min_plots: int
) -> None:
    with pytest.raises(ValueError, match=r"resolution|at least 1 plot"):
        geo.plots_hex(clustered, resolution=resolution, min_plots=min_plots)


# --- GeoJSON -----------------------------------------------------------------------------------

JSON_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


def assert_rfc7946(document: dict[str, Any]) -> None:
    """The RFC 7946 rules an EUDR upload checks: a FeatureCollection of Features, positions
    longitude first within WGS84's range, no ``crs`` member, exterior rings closed and
    counter-clockwise (the right-hand rule)."""
    assert document["type"] == "FeatureCollection" and "crs" not in document
    for feature in document["features"]:
        assert feature["type"] == "Feature" and isinstance(feature["properties"], dict)
        geometry = feature["geometry"]
        if geometry is None:
            continue
        if geometry["type"] == "Point":
            positions = [geometry["coordinates"]]
        else:
            assert geometry["type"] == "Polygon"
            [ring] = geometry["coordinates"]
            assert len(ring) >= 4 and ring[0] == ring[-1]
            assert geojson.signed_area([tuple(p) for p in ring]) > 0, "not counter-clockwise"
            positions = ring
        for longitude, latitude in positions:
            assert -180 <= longitude <= 180 and -90 <= latitude <= 90


def plot_feature(lat_sent: str | None, long_sent: str | None, usable: bool = True) -> Any:
    lat = float(lat_sent) if usable and lat_sent else None
    long = float(long_sent) if usable and long_sent else None
    return geojson.PlotFeature("SPOC-1", long_sent, lat_sent, long, lat, usable, '{"a":1}')


def test_points_keep_the_coordinates_as_sent() -> None:
    out = io.StringIO()
    features = [plot_feature("3.100000", "101.500000"), plot_feature("N/A", "N/A", usable=False)]
    written = geojson.write_feature_collection(geojson.point_features(features), out)
    assert (written.features, written.located) == (2, 1)
    assert '"coordinates":[101.500000,3.100000]' in out.getvalue()
    document = json.loads(out.getvalue())
    assert_rfc7946(document)
    assert document["features"][1]["geometry"] is None


@given(
    whole=st.integers(min_value=-180, max_value=180),
    fraction=st.text(alphabet="0123456789", min_size=0, max_size=10),
)
def test_a_json_number_sent_is_written_verbatim(whole: int, fraction: str) -> None:
    sent = f"{whole}.{fraction}" if fraction else str(whole)
    assert geojson.coordinate(sent, float(sent)) == sent


@pytest.mark.parametrize("sent", ["+3.5", "03.5", ".5", "3.", "3.5\u00a0"])
def test_a_number_that_is_not_json_is_written_as_its_value(sent: str) -> None:
    value = float(sent.strip("\u00a0"))
    text = geojson.coordinate(sent, value)
    assert JSON_NUMBER.fullmatch(text) and float(text) == value


def test_polygons_follow_the_right_hand_rule_whichever_way_they_came() -> None:
    clockwise = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)]
    out = io.StringIO()
    geojson.write_feature_collection(
        [("a", geojson.polygon(clockwise), "{}"), ("b", geojson.polygon(clockwise[::-1]), "{}")],
        out,
    )
    assert_rfc7946(json.loads(out.getvalue()))


def test_the_validator_catches_a_clockwise_ring() -> None:
    """The helper above can fail: a hand-written clockwise ring is refused."""
    ring = [[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon"}}
    feature["geometry"]["coordinates"] = [ring]
    with pytest.raises(AssertionError, match="counter-clockwise"):
        assert_rfc7946({"type": "FeatureCollection", "features": [feature]})


# --- maps --------------------------------------------------------------------------------------


def png_size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.size


def test_maps_are_pngs_of_the_fixed_size(clustered: pl.DataFrame) -> None:
    cells = geo.plots_hex(clustered, resolution=7, min_plots=1).published
    for png in (maps.plots_map(clustered, str(DAY)), maps.hex_map(cells, str(DAY), k=1)):
        assert png_size(png) == (maps.WIDTH_PX, maps.HEIGHT_PX)
        thumbnail = maps.thumbnail(png)
        assert png_size(thumbnail)[0] == maps.THUMBNAIL_WIDTH_PX
        assert len(thumbnail) < len(png)


MAPS_OF_A_PROCESS = """
import gc, weakref
from mspo_pipeline.lib import geo, maps
from mspo_pipeline_tests.unit.test_geo import plots

class DayOfData:
    pass

def step(draw):
    data = DayOfData()
    draw()
    return weakref.ref(data)

collections = []
gc.callbacks.append(lambda phase, info: collections.append(info) if phase == "start" else None)
gc.disable()
located = plots({"entity_smallholder_id": 1})
cells = geo.plots_hex(located, resolution=7, min_plots=1).published
for draw in (
    lambda: maps.plots_map(located, "2026-11-21"),
    lambda: maps.hex_map(cells, "2026-11-21", k=1),
    lambda: maps.plots_map(located, "2026-11-22"),
):
    collections.clear()
    held = step(draw)() is not None
    print("held" if held else "freed", len(collections))
"""


def test_drawing_maps_leaves_nothing_of_the_callers_data_alive() -> None:
    """The maps of a process (a run's ``plots_geo``, then ``plots_hex``) must not keep their
    callers' frames, and the day's data in them, alive past the step: with the collector idle, as
    it is between steps whose garbage is a few large frames, the data is freed when the caller
    returns. Only the first drawing leaves garbage to collect (font patterns are parsed once per
    process), so only it pays for a full collection."""
    done = subprocess.run(
        [sys.executable, "-c", MAPS_OF_A_PROCESS],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert done.stdout.split("\n")[:3] == ["freed 1", "freed 0", "freed 0"], done.stderr


def test_a_day_without_a_located_plot_still_draws(clustered: pl.DataFrame) -> None:
    nothing = clustered.with_columns(gps_usable=pl.lit(False))
    empty = geo.plots_hex(nothing, resolution=7, min_plots=5).published
    assert empty.is_empty()
    assert png_size(maps.plots_map(nothing, str(DAY))) == (maps.WIDTH_PX, maps.HEIGHT_PX)
    assert png_size(maps.hex_map(empty, str(DAY), k=5)) == (maps.WIDTH_PX, maps.HEIGHT_PX)


def test_each_plot_is_one_pixel_of_its_status_colour_where_it_lies() -> None:
    """The plots map draws each plot as the pixel its point falls in: the corners of the map's
    extent land in the corner pixels, a point outside it is not drawn, an unknown status is
    grey."""
    located = pl.DataFrame(
        {
            "cert_status": ["ACTIVE", "EXPIRED", "DELAYED", "REVOKED", "ACTIVE"],
            "gps_coordinate_long": [99.5, 119.49, 109.5, 99.5, 130.0],
            "gps_coordinate_lat": [7.49, 0.8, 4.15, 0.8, 4.0],
        }
    )
    width, height = 200, 67
    image = maps._status_pixels(located, width, height)
    drawn = {(int(r), int(c)) for r, c in zip(*image[..., 3].nonzero(), strict=True)}
    assert drawn == {(0, 0), (height - 1, width - 1), (height // 2, width // 2), (height - 1, 0)}

    def colour(row: int, column: int) -> str:
        return "#" + "".join(f"{round(v * 255):02x}" for v in image[row, column, :3])

    assert colour(0, 0) == maps.STATUS_COLOURS["ACTIVE"]
    assert colour(height - 1, width - 1) == maps.STATUS_COLOURS["EXPIRED"]
    assert colour(height // 2, width // 2) == maps.STATUS_COLOURS["DELAYED"]
    assert colour(height - 1, 0) == "#999999"
