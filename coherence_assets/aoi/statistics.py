"""Coherence statistics of each area of interest (AOI) over every pair of a burst's cube.

A pixel belongs to an AOI when its centre lies inside the polygon, reprojected to the cube's
CRS: GDAL's rasterisation without ``all_touched`` burns exactly those pixels. NaN pixels
(no data) count in ``pixel_count`` but not in the statistics; ``valid_fraction`` says how many
of the AOI's pixels had data for the pair.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
import xarray as xr
from affine import Affine
from rasterio.features import geometry_mask
from rasterio.transform import array_bounds

from coherence_assets.aoi.areas import AOI_ID

SERIES_COLUMNS = (
    "aoi_id",
    "burst",
    "reference_date",
    "secondary_date",
    "temporal_baseline",
    "mean",
    "median",
    "p10",
    "p90",
    "valid_fraction",
    "pixel_count",
)
# Pairs read at once per AOI, fewer for large AOIs: memory stays near MAX_VALUES_PER_READ float32
# values (256 MB) whatever the cube's length and the AOI's size.
PAIRS_PER_READ = 64
MAX_VALUES_PER_READ = 64 * 1024 * 1024


@dataclass(frozen=True)
class AoiSeries:
    """The tidy table of one burst and which AOIs it could not describe, and why."""

    burst: str
    table: pd.DataFrame
    covered: list[str]
    without_pixel_centres: list[str]  # overlap the cube but contain no pixel centre
    outside: list[str]  # do not overlap the cube


def aoi_coherence_series(cube: xr.Dataset, aois: gpd.GeoDataFrame, burst: str) -> AoiSeries:
    """Mean, median, 10th and 90th percentile of coherence per AOI and pair, as a tidy table.

    ``cube`` is a coherence cube as stacked by :mod:`coherence_assets.cube.stacking`, with
    ``coherence`` on ``(time | pair, y, x)``; ``aois`` has ``aoi_id`` and polygons in any CRS.
    """
    coherence = cube["coherence"]
    leading = coherence.dims[0]
    transform = coherence.rio.transform(recalc=False)
    height, width = coherence.sizes["y"], coherence.sizes["x"]
    extent = shapely.box(*array_bounds(height, width, transform))
    pairs = pd.DataFrame(
        {
            "reference_date": pd.to_datetime(cube["time"].values),
            "secondary_date": pd.to_datetime(cube["secondary_time"].values),
            "temporal_baseline": cube["temporal_baseline"].values.astype("int32"),
        }
    )
    tables, covered, without_pixel_centres, outside = [], [], [], []
    for aoi_id, polygon in zip(aois[AOI_ID], aois.to_crs(coherence.rio.crs).geometry, strict=True):
        if not polygon.intersects(extent):
            outside.append(aoi_id)
            continue
        rows, columns, inside = pixel_centres_inside(polygon, transform, height, width)
        if not inside.any():
            without_pixel_centres.append(aoi_id)
            continue
        covered.append(aoi_id)
        statistics = _statistics(coherence.isel(y=rows, x=columns), inside, leading)
        tables.append(pd.concat([pairs, statistics], axis=1).assign(aoi_id=aoi_id, burst=burst))
    table = pd.concat(tables, ignore_index=True) if tables else _empty_table()
    table = table[list(SERIES_COLUMNS)].sort_values(["aoi_id", "reference_date", "secondary_date"])
    return AoiSeries(burst, table.reset_index(drop=True), covered, without_pixel_centres, outside)


def pixel_centres_inside(
    polygon: shapely.Geometry, transform: Affine, height: int, width: int
) -> tuple[slice, slice, np.ndarray]:
    """The window of the grid around ``polygon`` and, within it, the pixels whose centre is inside."""
    left, bottom, right, top = polygon.bounds
    columns_of_bounds, rows_of_bounds = ~transform @ (
        np.array([left, right, left, right]),
        np.array([top, top, bottom, bottom]),
    )
    first_row = max(int(np.floor(rows_of_bounds.min())), 0)
    last_row = min(int(np.ceil(rows_of_bounds.max())), height)
    first_column = max(int(np.floor(columns_of_bounds.min())), 0)
    last_column = min(int(np.ceil(columns_of_bounds.max())), width)
    shape = (max(last_row - first_row, 0), max(last_column - first_column, 0))
    if 0 in shape:
        return slice(0, 0), slice(0, 0), np.zeros(shape, dtype=bool)
    window_transform = transform @ Affine.translation(first_column, first_row)
    inside = geometry_mask(
        [polygon], out_shape=shape, transform=window_transform, invert=True, all_touched=False
    )
    return slice(first_row, last_row), slice(first_column, last_column), inside


def _statistics(window: xr.DataArray, inside: np.ndarray, leading: str) -> pd.DataFrame:
    """One row of statistics per pair over the ``inside`` pixels of ``window``, NaN left out."""
    chunks = []
    pairs_per_read = max(1, min(PAIRS_PER_READ, MAX_VALUES_PER_READ // inside.size))
    for start in range(0, window.sizes[leading], pairs_per_read):
        block = window.isel({leading: slice(start, start + pairs_per_read)}).values
        pixels = block[:, inside].astype(np.float64)  # (pairs, pixels inside)
        valid = np.count_nonzero(~np.isnan(pixels), axis=1)
        with warnings.catch_warnings():
            # a pair without any valid pixel in the AOI has NaN statistics, which is the answer
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(pixels, axis=1)
            p10, median, p90 = np.nanpercentile(pixels, [10, 50, 90], axis=1)
        chunks.append(
            pd.DataFrame(
                {
                    "mean": mean,
                    "median": median,
                    "p10": p10,
                    "p90": p90,
                    "valid_fraction": valid / pixels.shape[1],
                    "pixel_count": np.full(len(valid), pixels.shape[1], dtype=np.int64),
                }
            )
        )
    return pd.concat(chunks, ignore_index=True)


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "aoi_id": pd.Series(dtype=str),
            "burst": pd.Series(dtype=str),
            "reference_date": pd.Series(dtype="datetime64[ns]"),
            "secondary_date": pd.Series(dtype="datetime64[ns]"),
            "temporal_baseline": pd.Series(dtype="int32"),
            **{
                column: pd.Series(dtype=np.float64)
                for column in ("mean", "median", "p10", "p90", "valid_fraction")
            },
            "pixel_count": pd.Series(dtype=np.int64),
        }
    )
