"""Plots on the map: ``curated/plots_geo`` (GeoParquet points with EUDR readiness flags) and
``curated/plots_hex`` (plots per H3 cell, small cells suppressed), each with a day's map.

The assets wrap ``lib/geo.py`` and ``lib/maps.py``. A map is written beside its day's Parquet
file (``<table>.png``), and a smaller copy is embedded in the materialisation, so the UI shows
it without a trip to the bucket.

``plots_geo`` reads three columns of the three raw registers of its day as well as
``smallholders``: only the raw text tells how many decimals the API sent. ``plots_hex``
refuses to publish a day when any cell would hold fewer than k plots: its blocking check fails
and nothing is written, so a file that would single out a farm never reaches the store.
"""

import base64
from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl

from mspo_pipeline.defs.curated import CURATED_GROUP, SMALLHOLDERS_KEY
from mspo_pipeline.defs.partitions import daily_partitions
from mspo_pipeline.lib import curated, geo, layout, maps, storage
from mspo_pipeline.lib.parquet_io import COLUMNS, ParquetUPathIOManager
from mspo_pipeline.lib.provenance import StoredFrame, derived_sources, lineage_metadata
from mspo_pipeline.lib.resources import HexGrid
from mspo_pipeline.lib.ui_metadata import (
    counts,
    curated_columns,
    curated_metadata,
    flag_counts,
    preview,
)

PLOTS_GEO_KEY = dg.AssetKey(["curated", "plots_geo"])
PLOTS_HEX_KEY = dg.AssetKey(["curated", "plots_hex"])
MAPPED_KEYS = (PLOTS_GEO_KEY, PLOTS_HEX_KEY)
"""The assets that write a map beside each day's file."""
K_ANONYMITY_CHECK = "no_cell_below_k"
GEO_KINDS = {"polars", "parquet", "geoparquet"}


def publish_map(
    root: str, asset_key: dg.AssetKey, partition: str, png: bytes, title: str
) -> dict[str, Any]:
    """Write the day's map beside its data; metadata that shows it (a thumbnail) and links it."""
    path = storage.join_root(root, layout.picture_path(asset_key.path, partition))
    storage.write_bytes_atomic(png, storage.as_upath(path))
    embedded = base64.b64encode(maps.thumbnail(png)).decode()
    return {
        "map": dg.MetadataValue.md(f"![{title}](data:image/png;base64,{embedded})"),
        "map_uri": dg.MetadataValue.path(path),
    }


def _geo_output_metadata(table: str, frame: pl.DataFrame, geometry_type: str) -> dict[str, Any]:
    """Schema, a preview without the binary geometry (noise in a table), and the file's
    GeoParquet metadata, which the IO manager writes into the footer."""
    return {
        **curated_metadata(table, frame),
        "preview": preview(frame.drop(geo.GEOMETRY, geo.BBOX, strict=False)),
        storage.GEOPARQUET_KEY: dg.MetadataValue.json(
            geo.geoparquet_metadata(frame, [geometry_type])
        ),
    }


@dg.asset(
    key=PLOTS_GEO_KEY,
    group_name=CURATED_GROUP,
    kinds=GEO_KINDS,
    partitions_def=daily_partitions,
    metadata=curated_columns("plots_geo"),
    description=(
        "Every plot of curated/smallholders as GeoParquet 1.1 (WKB points, WGS84, the day's "
        "extent in the metadata), with its GPS as the API sent it and EUDR readiness flags: "
        "`gps_precision_ok` (at least 6 decimals as sent), `point_sufficient` (certified area "
        "at most 4 ha), `polygon_required`, `gps_usable`, `eudr_point_ready`. A map of the "
        "plots by certificate status is written beside each day."
    ),
    ins={
        "smallholders": dg.AssetIn(key=SMALLHOLDERS_KEY),
        **{
            scheme.lower(): dg.AssetIn(key=["raw", table], metadata={COLUMNS: list(geo.SENT)})
            for scheme, table in curated.REGISTER_TABLES.items()
        },
    },
)
def plots_geo(
    context: dg.AssetExecutionContext,
    io_manager: dg.ResourceParam[ParquetUPathIOManager],
    smallholders: StoredFrame,
    spoc: pl.DataFrame,
    osh: pl.DataFrame,
    gm: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    raw = {"SPOC": spoc, "OSH": osh, "GM": gm}
    sent = pl.concat([geo.sent_coordinates(raw[scheme], scheme) for scheme in curated.SCHEMES])
    frame = geo.plots_geo(smallholders.frame, sent)
    partition = context.partition_key
    located = counts(frame, {"plots_located": pl.col(geo.GEOMETRY).is_not_null()})
    context.log.info(
        f"plots_geo {partition}: {located['plots_located']} of {frame.height} plot(s) have a "
        "usable point; "
        f"{frame.get_column('eudr_point_ready').sum()} meet EUDR's point requirement"
    )
    png = maps.plots_map(frame, partition)
    return dg.Output(
        frame,
        metadata={
            **lineage_metadata(derived_sources(smallholders)),
            **_geo_output_metadata("plots_geo", frame, "Point"),
            "plots": frame.height,
            **located,
            **flag_counts("plots_geo", frame),
            **publish_map(io_manager.root, PLOTS_GEO_KEY, partition, png, "plots by status"),
        },
    )


@dg.asset(
    key=PLOTS_HEX_KEY,
    group_name=CURATED_GROUP,
    kinds=GEO_KINDS | {"h3"},
    partitions_def=daily_partitions,
    metadata=curated_columns("plots_hex"),
    description=(
        "Plots, hectares and certificate statuses per H3 cell (resolution MSPO_H3_RESOLUTION, "
        "default 7), as GeoParquet polygons: deleted plots and plots without a usable point are "
        "left out, and a cell with fewer than MSPO_HEX_MIN_PLOTS plots (k, default 5) is not "
        "published. Shareable where names and exact points must not be."
    ),
    ins={"plots_geo": dg.AssetIn(key=PLOTS_GEO_KEY, metadata={COLUMNS: list(geo.HEX_INPUT)})},
    check_specs=[
        dg.AssetCheckSpec(
            K_ANONYMITY_CHECK,
            asset=PLOTS_HEX_KEY,
            blocking=True,
            description="Every published cell holds at least k plots; when one does not, the "
            "day is not written.",
        )
    ],
)
def plots_hex(
    context: dg.AssetExecutionContext,
    io_manager: dg.ResourceParam[ParquetUPathIOManager],
    hex_grid: HexGrid,
    plots_geo: StoredFrame,
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    partition, k = context.partition_key, hex_grid.min_plots
    try:
        cells = geo.plots_hex(plots_geo.frame, resolution=hex_grid.resolution, min_plots=k)
    except ValueError as error:
        raise dg.Failure(
            f"curated/plots_hex {partition}: {error}. Set MSPO_H3_RESOLUTION to 0..15 (default "
            "7) and MSPO_HEX_MIN_PLOTS to 1 or more (default 5) where the runs are launched."
        ) from error
    proof = geo.k_anonymity(cells.published, k)
    yield k_anonymity_result(proof)
    if not proof.passed:
        raise dg.Failure(
            f"curated/plots_hex {partition}: {proof.below.height} cell(s) below k={k} plots; "
            "nothing was written. This is a defect of the suppression: report it."
        )
    published = cells.published
    context.log.info(
        f"plots_hex {partition}: {published.height} cell(s) published at resolution "
        f"{hex_grid.resolution}; {cells.cells_suppressed} cell(s) of fewer than {k} plots "
        f"({cells.plots_suppressed} plots) suppressed"
    )
    png = maps.hex_map(published, partition, k=k)
    yield dg.Output(
        published,
        metadata={
            **lineage_metadata(derived_sources(plots_geo)),
            **_geo_output_metadata("plots_hex", published, "Polygon"),
            "h3_resolution": hex_grid.resolution,
            "min_plots": k,
            "cells_published": published.height,
            "plots_published": int(published.get_column("plots").sum()),
            "cells_suppressed": cells.cells_suppressed,
            "plots_suppressed": cells.plots_suppressed,
            **publish_map(io_manager.root, PLOTS_HEX_KEY, partition, png, "plots per H3 cell"),
        },
    )


def k_anonymity_result(proof: geo.KAnonymity) -> dg.AssetCheckResult:
    """The blocking check's result: passed, or the offending cells."""
    metadata: dict[str, Any] = {"k": proof.k, "smallest_cell": proof.smallest or 0}
    if not proof.passed:
        metadata["cells_below_k"] = proof.below.height
        metadata["examples"] = dg.MetadataValue.md(
            "\n".join(f"- {cell}: {plots} plot(s)" for cell, plots in proof.below.head(5).rows())
        )
    return dg.AssetCheckResult(
        check_name=K_ANONYMITY_CHECK,
        asset_key=PLOTS_HEX_KEY,
        passed=proof.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
    )


defs = dg.Definitions(assets=[plots_geo, plots_hex])
