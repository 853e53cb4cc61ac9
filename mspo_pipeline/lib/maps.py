"""PNG maps of one day: plots coloured by certificate status, and the published H3 cells.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display, safe in a
threaded run), at a fixed pixel size so the UI and README show them alike. No basemap: tiles
would be a download at run time; the plots themselves draw Peninsular Malaysia and Borneo.
"""

from __future__ import annotations

import functools
import gc
import io

import numpy as np
import polars as pl

from mspo_pipeline.lib.geo import GEOMETRY, padded_rings
from mspo_pipeline.lib.schemas import CERT_STATUSES, MALAYSIA_LAT, MALAYSIA_LONG

WIDTH_PX, HEIGHT_PX = 1400, 640
_DPI = 100
_MAP_BOX = (0.05, 0.08, 0.86, 0.84)
_SCALE_BOX = (0.93, 0.08, 0.012, 0.84)
"""Where the map and the colour scale sit (figure fractions): the same on both maps."""
THUMBNAIL_WIDTH_PX = 700
STATUS_COLOURS = dict(zip(CERT_STATUSES, ("#1a9850", "#fdae61", "#d73027", "#7b3294"), strict=True))
"""ACTIVE green, DELAYED orange, EXPIRED red, SUSPENDED purple."""
_UNKNOWN_STATUS = "#999999"
_DRAWN = ("cert_status", "gps_coordinate_long", "gps_coordinate_lat")
"""What the plots map reads of a plot."""


def _figure(title: str):  # type: ignore[no-untyped-def]
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_PX / _DPI, HEIGHT_PX / _DPI), dpi=_DPI)
    axes = figure.add_axes(_MAP_BOX)
    axes.set_xlim(*MALAYSIA_LONG)
    axes.set_ylim(*MALAYSIA_LAT)
    axes.set_aspect("equal")
    axes.set_xlabel("longitude")
    axes.set_ylabel("latitude")
    axes.set_title(title)
    axes.grid(color="#dddddd", linewidth=0.5)
    axes.set_axisbelow(True)  # the grid under the plots, not across them
    return figure, axes


def _png(figure) -> bytes:  # type: ignore[no-untyped-def]
    """The figure as PNG bytes; after a process's first drawing, its garbage collected."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    _collect_after_first_drawing()
    return buffer.getvalue()


@functools.cache
def _collect_after_first_drawing() -> None:
    """A process's first drawing of text parses font patterns with pyparsing, which raises and
    catches exceptions whose tracebacks sit in reference cycles; each traceback holds its frame,
    whose callers are the asset's frames, so the day's data (about 350 MB in ``plots_geo`` at
    full scale) outlived the step until the collector next ran, and stacked on the next step's
    peak. The patterns are parsed once per process, so later drawings leave no such cycles and
    skip the full collection (about 0.2 s in a run's process)."""
    gc.collect()


def thumbnail(png: bytes, width: int = THUMBNAIL_WIDTH_PX) -> bytes:
    """A smaller copy of a map, light enough to embed in a materialisation's metadata."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        height = round(image.height * width / image.width)
        buffer = io.BytesIO()
        image.resize((width, height), Image.Resampling.LANCZOS).save(buffer, format="PNG")
    return buffer.getvalue()


def plots_map(geo: pl.DataFrame, day: str) -> bytes:
    """Every plot with a usable point, coloured by ``cert_status`` (deleted plots left out).

    Each plot is one pixel of an image the size of the map (``_status_pixels``), not a marker:
    matplotlib draws 350,000 markers in about 4 s, the image in a tenth of that, and at this
    size a marker was a pixel anyway.
    """
    from matplotlib.lines import Line2D

    # The columns drawn, before any filter or shuffle: each copies what it is given, and a
    # day of plots_geo is ~45 columns (400 MB more at the peak when it was copied whole).
    located = geo.select(*_DRAWN, "gps_usable", "deleted").filter(
        pl.col("gps_usable") & pl.col("deleted").not_()
    )
    figure, axes = _figure(f"MSPO plots by certificate status, {day} ({located.height:,} plots)")
    width, height = _map_pixels(figure, axes)
    axes.imshow(
        _status_pixels(located, width, height),
        extent=(*MALAYSIA_LONG, *MALAYSIA_LAT),
        origin="upper",
        interpolation="nearest",
        aspect="auto",
        zorder=1,  # over the grid
    )
    counts = dict(located.get_column("cert_status").value_counts().iter_rows())
    legend = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color=colour,
            label=f"{status} ({counts.get(status, 0):,})",
        )
        for status, colour in STATUS_COLOURS.items()
    ]
    axes.legend(handles=legend, loc="upper right", frameon=True)
    return _png(figure)


def _map_pixels(figure, axes) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """The map's size in pixels once its aspect is applied: the image is drawn one to one."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    axes.apply_aspect()
    box = axes.get_window_extent()
    return max(round(box.width), 1), max(round(box.height), 1)


def _status_pixels(located: pl.DataFrame, width: int, height: int) -> np.ndarray:
    """An RGBA image of the map's extent: each plot's pixel in its status colour, the rest clear.

    Plots that share a pixel are written in a shuffled (seeded) order, so the one that shows is
    any of them: in status order, the last status would cover the others and a minority would
    look like the rule.
    """
    from matplotlib.colors import to_rgba_array

    palette = to_rgba_array([*STATUS_COLOURS.values(), _UNKNOWN_STATUS])
    shuffled = located.sample(fraction=1.0, shuffle=True, seed=0)
    codes = (
        shuffled.get_column("cert_status")
        .replace_strict(
            {status: n for n, status in enumerate(STATUS_COLOURS)},
            default=len(STATUS_COLOURS),
            return_dtype=pl.UInt8,
        )
        .to_numpy()
    )
    (west, east), (south, north) = MALAYSIA_LONG, MALAYSIA_LAT
    x = shuffled.get_column("gps_coordinate_long").to_numpy()
    y = shuffled.get_column("gps_coordinate_lat").to_numpy()
    inside = (x >= west) & (x <= east) & (y >= south) & (y <= north)  # the edges included
    x, y, codes = x[inside], y[inside], codes[inside]
    column = np.minimum(((x - west) / (east - west) * width).astype(np.int64), width - 1)
    row = np.minimum(((north - y) / (north - south) * height).astype(np.int64), height - 1)
    image = np.zeros((height, width, 4))
    image[row, column] = palette[codes]
    return image


def hex_map(cells: pl.DataFrame, day: str, *, k: int) -> bytes:
    """The published H3 cells (``plots`` and the WKB ``geometry`` of ``geo.plots_hex``),
    shaded by how many plots each holds."""
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import Normalize

    figure, axes = _figure(
        f"MSPO plots per H3 cell, {day} ({cells.height:,} cells of at least {k} plots)"
    )
    if cells.height:
        counts = cells.get_column("plots").to_numpy()
        scale = Normalize(vmin=k, vmax=max(int(counts.max()), k + 1))
        # One array, not a list of rings: PolyCollection then builds its paths without a
        # Python loop per cell (its stubs say Sequence, its code takes an array first).
        rings = padded_rings(cells.get_column(GEOMETRY))
        polygons = PolyCollection(
            rings,  # type: ignore[arg-type]
            array=counts,
            cmap="viridis",
            norm=scale,
        )
        polygons.set_linewidth(0)
        axes.add_collection(polygons)
        colour_bar = figure.colorbar(polygons, cax=figure.add_axes(_SCALE_BOX))
        colour_bar.set_label("plots in the cell")
    return _png(figure)
