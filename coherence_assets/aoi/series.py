"""The AOI series of one burst: read the AOIs and the cube, write the table and its plot."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import pandas as pd

from coherence_assets.aoi.areas import aois_outside_footprints, load_areas_of_interest
from coherence_assets.aoi.decay import aoi_decay_table
from coherence_assets.aoi.plot import render_aoi_decay_png, render_aoi_series_png
from coherence_assets.aoi.statistics import AoiSeries, aoi_coherence_series
from coherence_assets.asset_names import BURST_CATALOGUE, COHERENCE_CUBE
from coherence_assets.cube.provenance import parquet_with_provenance
from coherence_assets.cube.stacking import open_coherence_cube
from coherence_assets.decay.burst_decay import open_decay
from coherence_assets.storage import DataStore

module_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AoiSeriesOutput:
    """What was written, and the AOIs nobody gets statistics for."""

    series: AoiSeries
    table_path: str
    plot_path: str | None  # None when no AOI lies in the burst
    plot_png: bytes | None
    outside_every_burst: list[str]  # AOIs that touch no burst of the burst catalogue
    decay_table: pd.DataFrame | None = None  # per AOI, season and baseline; None without a decay product
    decay_table_path: str | None = None
    decay_plot_path: str | None = None  # None when no AOI has a decay fit to draw
    decay_plot_png: bytes | None = None

    def problems(self) -> list[str]:
        """One line per kind of AOI that gets no statistics here although a user may expect some."""
        series = self.series
        problems = [
            ("touch no burst of the burst catalogue and get no statistics", self.outside_every_burst),
            ("overlap this burst's grid but contain no pixel centre", series.without_pixel_centres),
        ]
        return [f"{series.burst}: AOIs {', '.join(ids)} {problem}" for problem, ids in problems if ids]

    def summary(self) -> dict[str, int | str]:
        """What a user checks first: rows, and which AOIs are in, out, too small or in no burst."""
        series = self.series
        return {
            "rows": len(series.table),
            "aois_in_burst": ", ".join(series.covered) or "none",
            "aois_outside_burst": ", ".join(series.outside) or "none",
            "aois_without_pixel_centres": ", ".join(series.without_pixel_centres) or "none",
            "aois_outside_every_burst": ", ".join(self.outside_every_burst) or "none",
        }


def write_aoi_series(
    store: DataStore, burst: str, aoi_file: str, *, log: logging.Logger | logging.LoggerAdapter = module_log
) -> AoiSeriesOutput:
    """Compute the AOI statistics of ``burst``'s cube and write ``coherence_aoi_series/<burst>.parquet``.

    The PNG beside it is written when at least one AOI lies in the burst, and removed otherwise,
    so a stale plot never outlives its AOI.
    """
    aois = load_areas_of_interest(aoi_file)
    cube_path = store.coherence_cube_path(burst)
    store.require_output(cube_path, COHERENCE_CUBE, burst)
    with store.open_output(store.burst_catalogue_path(), BURST_CATALOGUE) as stream:
        footprints = gpd.read_parquet(stream).geometry
    # the time-series layout reads an AOI's window over all pairs in a few chunks
    cube = open_coherence_cube(store.fs, cube_path, layout="timeseries")
    series = aoi_coherence_series(cube, aois, burst)
    table_path = store.coherence_aoi_series_path(burst)
    # the cube's provenance (process, pinned namespace, window, polarisation, platforms, ...) travels along
    store.write_bytes_atomically(table_path, parquet_with_provenance(series.table, cube.attrs))
    plot_path = store.coherence_aoi_plot_path(burst)
    png = render_aoi_series_png(series.table, burst) if series.covered else None
    if png is not None:
        store.write_bytes_atomically(plot_path, png)
    elif store.fs.exists(plot_path):
        store.fs.rm(plot_path)
    output = AoiSeriesOutput(
        series=series,
        table_path=table_path,
        plot_path=plot_path if png is not None else None,
        plot_png=png,
        outside_every_burst=aois_outside_footprints(aois, footprints),
        **_write_aoi_decay(store, burst, aois, cube.attrs),
    )
    log.info(f"{burst}: {len(series.table)} rows for AOIs {series.covered or 'none'}")
    for problem in output.problems():
        log.warning(problem)
    return output


def _write_aoi_decay(
    store: DataStore, burst: str, aois: gpd.GeoDataFrame, cube_attributes: Mapping[str, Any]
) -> dict:
    """The AOIs' seasonal decay table and curves beside the series, when the burst has a decay product."""
    if not store.fs.exists(store.coherence_decay_path(burst)):
        return {}
    table = aoi_decay_table(open_decay(store, burst), aois, burst)
    table_path = store.coherence_aoi_decay_path(burst)
    store.write_bytes_atomically(table_path, parquet_with_provenance(table, cube_attributes))
    plot_path = store.coherence_aoi_decay_plot_path(burst)
    png = render_aoi_decay_png(table, burst) if len(table) else None
    if png is not None:
        store.write_bytes_atomically(plot_path, png)
    elif store.fs.exists(plot_path):
        store.fs.rm(plot_path)
    return {
        "decay_table": table,
        "decay_table_path": table_path,
        "decay_plot_path": plot_path if png is not None else None,
        "decay_plot_png": png,
    }
