"""The map layer through the real definitions on the emulator: GeoParquet read back by GeoPandas
and DuckDB, the emulator's GPS quirks flagged, the k check blocking a leak, the UI's maps, and
``mspo export geojson`` / ``mspo map`` on the session's shared store."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import dagster as dg
import geopandas
import polars as pl
import pytest
import shapely
from PIL import Image

from mspo_pipeline import cli, sql
from mspo_pipeline.defs import geo as geo_assets
from mspo_pipeline.defs.curated import SMALLHOLDERS_KEY
from mspo_pipeline.defs.geo import K_ANONYMITY_CHECK, MAPPED_KEYS, PLOTS_GEO_KEY, PLOTS_HEX_KEY
from mspo_pipeline.lib import geo, layout, maps, storage
from mspo_pipeline.lib.schemas import curated_table
from mspo_pipeline.lib.settings import ENV_DEFAULTS
from mspo_pipeline_tests import pipeline
from mspo_pipeline_tests.curated_store import DAYS, H3_RESOLUTION, Store, metadata, stored
from mspo_pipeline_tests.unit.test_geo import assert_rfc7946

DAY = DAYS[-1]
K = int(ENV_DEFAULTS["MSPO_HEX_MIN_PLOTS"])
RAW_REGISTERS = {"SPOC": "spoc_smallholders", "OSH": "osh_smallholders", "GM": "gm_smallholders"}


def geo_day(store: Store, day: str = DAY) -> pl.DataFrame:
    return stored(store.root, "curated", "plots_geo", day)


def raw_text(store: Store, day: str = DAY) -> pl.DataFrame:
    """Every raw register row's GPS text, by scheme and plot."""
    return pl.concat(
        stored(store.root, "raw", table, day)
        .select("entity_smallholder_id", "gps_coordinate_lat", "gps_coordinate_long")
        .with_columns(scheme=pl.lit(scheme))
        for scheme, table in RAW_REGISTERS.items()
    )


def test_plots_geo_holds_every_plot_of_smallholders(store: Store) -> None:
    for day in DAYS:
        smallholders = stored(store.root, "curated", "smallholders", day)
        frame = geo_day(store, day)
        assert frame.select(smallholders.columns).equals(smallholders)


def test_geoparquet_reads_back_in_geopandas_and_duckdb(store: Store) -> None:
    path = store.root / storage.relative_path(PLOTS_GEO_KEY.path, DAY)
    frame = geopandas.read_parquet(path)
    usable = geo_day(store).filter(pl.col("gps_usable"))
    assert frame.crs.to_string() == "OGC:CRS84"
    assert frame.geometry.notna().sum() == usable.height > 0
    located = frame[frame.geometry.notna()]
    assert (located.geometry.x == located["gps_coordinate_long"]).all()
    assert (located.geometry.y == located["gps_coordinate_lat"]).all()
    conn, _ = sql.connect(str(store.root))
    with conn:
        result = sql.query(
            conn,
            "SELECT any_value(typeof(geometry)), count(*), count(geometry) FROM plots_geo "
            f"WHERE partition_date = DATE '{DAY}'",
        )
        assert result is not None
        [(kind, rows, points)] = result.fetchall()
    assert (kind, rows, points) == ("GEOMETRY('OGC:CRS84')", len(frame), usable.height)


def test_the_emulators_gps_quirks_carry_their_flags(store: Store) -> None:
    frame = geo_day(store).join(
        raw_text(store), on=["scheme", "entity_smallholder_id"], suffix="_raw"
    )
    sent_lat = pl.col("gps_coordinate_lat_raw")
    quirks = {
        "flag_gps_missing": sent_lat == "N/A",
        "flag_gps_zero": sent_lat.str.contains(r"^0\.0+$"),
        "flag_gps_swapped": sent_lat.cast(pl.Float64, strict=False).is_between(99.5, 119.5),
    }
    for flag, quirk in quirks.items():
        rows = frame.filter(quirk)
        assert rows.height > 0, f"the emulator served no row for {flag}"
        assert rows.get_column(flag).all()
        assert not rows.get_column("gps_usable").any()
        assert rows.get_column(geo.GEOMETRY).is_null().all()
        assert not rows.get_column("eudr_point_ready").any()
    assert frame.filter(pl.col("latitude_as_sent").ne_missing(sent_lat)).is_empty()
    # OSH sends five decimals, so no OSH point meets EUDR; SPOC sends six
    osh = frame.filter(pl.col("scheme") == "OSH")
    assert osh.height > 0 and not osh.get_column("gps_precision_ok").any()
    spoc = frame.filter((pl.col("scheme") == "SPOC") & pl.col("gps_usable"))
    assert spoc.get_column("gps_precision_ok").all()


def test_plot_and_flag_counts_are_published(store: Store) -> None:
    for day in DAYS:
        frame, shown = geo_day(store, day), metadata(store, day, PLOTS_GEO_KEY)
        assert shown["plots"] == frame.height
        located = frame.filter(pl.col(geo.GEOMETRY).is_not_null()).height
        assert 0 < shown["plots_located"] == located < frame.height
        for flag in curated_table("plots_geo").flags:
            assert shown[flag] == frame.get_column(flag).sum(), flag


def test_published_cells_hold_k_plots_and_account_for_every_located_plot(store: Store) -> None:
    for day in DAYS:
        cells = stored(store.root, "curated", "plots_hex", day)
        assert cells.get_column("h3_resolution").unique().to_list() == [H3_RESOLUTION]
        assert cells.get_column("plots").min() >= K
        shown = metadata(store, day, PLOTS_HEX_KEY)
        assert shown["cells_published"] > 0 and shown["cells_suppressed"] > 0
        located = geo_day(store, day).filter(pl.col("gps_usable") & ~pl.col("deleted"))
        assert shown["plots_published"] + shown["plots_suppressed"] == located.height
        assert shown["cells_published"] == cells.height
        evaluations = [
            e
            for e in store.runs[day].get_asset_check_evaluations()
            if e.check_name == K_ANONYMITY_CHECK
        ]
        assert [e.passed for e in evaluations] == [True]


def test_every_map_is_beside_its_data_and_embedded_in_the_ui(store: Store) -> None:
    for key in (PLOTS_GEO_KEY, PLOTS_HEX_KEY):
        shown = metadata(store, DAY, key)
        picture = store.root / layout.picture_path(key.path, DAY)
        assert shown["map_uri"] == str(picture)
        with Image.open(picture) as image:
            assert image.size == (maps.WIDTH_PX, maps.HEIGHT_PX)
        assert "](data:image/png;base64," in shown["map"]
        assert json.loads(json.dumps(shown[storage.GEOPARQUET_KEY]))["version"] == "1.1.0"


def test_every_column_is_described_in_the_ui(store: Store) -> None:
    for key in MAPPED_KEYS:
        schema = metadata(store, DAY, key)["dagster/column_schema"]
        assert [c.name for c in schema.columns if not c.description] == [], key
        assert geo.GEOMETRY in [c.name for c in schema.columns]


def test_a_cell_below_k_fails_the_blocking_check_and_nothing_is_written(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Suppression broken on purpose (k=1 inside, k=5 checked): the day is not published."""
    root = tmp_path / "store"
    shutil.copytree(store.root, root)
    published = root / storage.relative_path(PLOTS_HEX_KEY.path, DAY)
    published.unlink()
    leaky = geo.plots_hex

    def unsuppressed(frame: pl.DataFrame, *, resolution: int, min_plots: int) -> geo.HexCells:
        return leaky(frame, resolution=resolution, min_plots=1)

    monkeypatch.setattr(geo_assets.geo, "plots_hex", unsuppressed)
    monkeypatch.setenv("MSPO_DATA_ROOT", str(root))
    run = pipeline.materialize(DAY, [PLOTS_HEX_KEY.to_user_string()])
    assert not run.success
    [evaluation] = run.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["cells_below_k"].value > 0
    assert f"below k={K}" in pipeline.failure_messages(run)
    assert not published.exists()


def test_an_impossible_grid_setting_is_named(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "store"
    shutil.copytree(store.root, root)
    monkeypatch.setenv("MSPO_DATA_ROOT", str(root))
    monkeypatch.setenv("MSPO_H3_RESOLUTION", "16")
    run = pipeline.materialize(DAY, [PLOTS_HEX_KEY.to_user_string()])
    assert not run.success
    assert "H3 resolution 16 is not 0..15. Set MSPO_H3_RESOLUTION" in (
        pipeline.failure_messages(run)
    )


def test_the_geo_assets_sit_above_smallholders_and_raw() -> None:
    graph = pipeline.definitions().resolve_asset_graph()
    assert graph.get(PLOTS_GEO_KEY).parent_keys == {
        SMALLHOLDERS_KEY,
        *(dg.AssetKey(["raw", table]) for table in RAW_REGISTERS.values()),
    }
    assert graph.get(PLOTS_HEX_KEY).parent_keys == {PLOTS_GEO_KEY}


# --- the commands --------------------------------------------------------------------------------


def export(store: Store, tmp_path: Path, *options: str) -> dict:
    output = tmp_path / "out.geojson"
    code = cli.main(
        ["export", "geojson", "--data-root", str(store.root), *options, "--output", str(output)]
    )
    assert code == 0
    document = json.loads(output.read_text())
    assert_rfc7946(document)
    return document


def test_export_writes_a_scheme_with_coordinates_as_sent(store: Store, tmp_path: Path) -> None:
    document = export(store, tmp_path, "--date", DAY, "--scheme", "spoc")
    expected = geo_day(store).filter((pl.col("scheme") == "SPOC") & ~pl.col("deleted"))
    assert len(document["features"]) == expected.height
    text = (tmp_path / "out.geojson").read_text()
    for row in expected.filter(pl.col("gps_usable")).head(50).iter_rows(named=True):
        position = f"[{row['longitude_as_sent']},{row['latitude_as_sent']}]"
        assert position in text
        assert len(row["latitude_as_sent"].split(".")[1]) >= 6
    johor = export(store, tmp_path, "--date", DAY, "--state", "johor", "--scheme", "SPOC")
    in_johor = expected.filter(pl.col("state").str.to_uppercase() == "JOHOR")
    assert len(johor["features"]) == in_johor.height > 0
    without = [f for f in document["features"] if f["geometry"] is None]
    assert len(without) == expected.filter(~pl.col("gps_usable")).height
    assert "name" not in document["features"][0]["properties"]


def test_export_selects_licences_and_plots_certified_on_a_day(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = geo_day(store).filter(~pl.col("deleted") & pl.col("mpob_no").is_not_null())
    licences = frame.get_column("mpob_no").unique().sort().head(3).to_list()
    listing = tmp_path / "licences.txt"
    listing.write_text("# suppliers\n" + "\n".join(licences) + "\n999999999999\n")
    document = export(store, tmp_path, "--licences", str(listing))
    found = {f["properties"]["mpob_no"] for f in document["features"]}
    assert found == set(licences)
    assert "999999999999" in capsys.readouterr().err
    # 2026-11-20 was not captured: the register as last captured before it (2026-11-19)
    certified = export(store, tmp_path, "--certified-on", "2026-11-20")
    on_the_19th = stored(store.root, "curated", "smallholders", "2026-11-19").filter(
        (pl.col("cert_status") == "ACTIVE") & ~pl.col("deleted")
    )
    latest = geo_day(store).filter(~pl.col("deleted")).select("scheme", "entity_smallholder_id")
    expected = on_the_19th.join(latest, on=["scheme", "entity_smallholder_id"])
    assert len(certified["features"]) == expected.height > 0


def test_export_of_cells_is_the_published_cells_as_polygons(store: Store, tmp_path: Path) -> None:
    document = export(store, tmp_path, "--cells")
    cells = stored(store.root, "curated", "plots_hex", DAY)
    assert [f["id"] for f in document["features"]] == cells.get_column("h3_cell").to_list()
    first = shapely.geometry.shape(document["features"][0]["geometry"])
    assert first.contains(
        shapely.Point(cells.row(0, named=True)["cell_long"], cells.row(0, named=True)["cell_lat"])
    )


def test_export_and_map_name_what_is_missing(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli.main(["export", "geojson", "--data-root", str(store.root), "--date", "2026-11-20"]) == 2
    )
    assert "no partition for 2026-11-20" in capsys.readouterr().err
    assert cli.main(["map", "--data-root", str(tmp_path / "empty")]) == 2
    assert "no curated/plots_geo partition is stored" in capsys.readouterr().err


def test_map_command_draws_both_maps_of_a_day(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        cli.main(
            ["map", "--data-root", str(store.root), "--date", DAY, "--output-dir", str(tmp_path)]
        )
        == 0
    )
    written = capsys.readouterr().out.split()
    assert [Path(p).name for p in written] == [f"mspo-plots-{DAY}.png", f"mspo-hex-{DAY}.png"]
    for path in written:
        with Image.open(io.BytesIO(Path(path).read_bytes())) as image:
            assert image.size == (maps.WIDTH_PX, maps.HEIGHT_PX)
