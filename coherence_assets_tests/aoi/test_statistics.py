"""AOI statistics on a real cube (real GeoTIFFs stacked into Zarr), against point-in-polygon written here."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import fsspec
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from shapely.geometry import Polygon

from coherence_assets.aoi import statistics
from coherence_assets.aoi.areas import aois_outside_footprints
from coherence_assets.aoi.statistics import SERIES_COLUMNS, aoi_coherence_series
from coherence_assets.cube.stacking import PairRaster, open_coherence_cube, stack_coherence_cube
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets_tests.rasters.geotiffs import ORIGIN, PIXEL_SIZE, UTM_32N, write_coherence_tif

LOCAL = fsspec.filesystem("file")
BURST = "t015_030343_iw2"
SHAPE = (30, 40)
PAIRS = [
    (date(2023, 7, 3), date(2023, 7, 15)),
    (date(2023, 7, 15), date(2023, 7, 27)),
    (date(2023, 7, 27), date(2023, 8, 8)),
]
# Off-grid vertices (in UTM 32N, like the rasters) so no edge passes exactly through a pixel centre.
GLACIER = Polygon(
    [(600_053.3, 5_199_871.7), (600_402.9, 5_199_911.1), (600_611.7, 5_199_553.9), (600_137.1, 5_199_487.3)]
)
MORAINE = Polygon(
    [(600_455.5, 5_199_811.3), (600_771.1, 5_199_700.7), (600_690.3, 5_199_421.9), (600_512.9, 5_199_402.1)]
)
TINY = shapely.box(600_101.0, 5_199_899.0, 600_109.0, 5_199_891.0)  # between four pixel centres
FAR_AWAY_LONLAT = shapely.box(30.0, 0.0, 30.1, 0.1)  # Lake Victoria: in no burst


def write_rasters(root: Path) -> list[PairRaster]:
    """Three pairs of random coherence with NaN pixels, one pair without data over most of the grid."""
    random = np.random.default_rng(7)
    rasters = []
    for index, (reference, secondary) in enumerate(PAIRS):
        values = random.uniform(0.05, 0.95, SHAPE).astype(np.float32)
        values[random.random(SHAPE) < 0.2] = np.nan
        if index == 2:
            values[:, :32] = np.nan  # no data at all inside the UTM AOI, some in the other
        path = write_coherence_tif(root / raster_file_name(reference, secondary), values)
        rasters.append(PairRaster(path, reference, secondary))
    return rasters


def aois(crs: str) -> gpd.GeoDataFrame:
    """The test AOIs in ``crs`` (the far-away one is drawn in lon/lat), as an AOI file would hold them."""
    near = gpd.GeoDataFrame(
        {"aoi_id": ["glacier", "moraine", "tiny"]}, geometry=[GLACIER, MORAINE, TINY], crs=UTM_32N
    ).to_crs(crs)
    far = gpd.GeoDataFrame({"aoi_id": ["far_away"]}, geometry=[FAR_AWAY_LONLAT], crs=4326).to_crs(crs)
    return pd.concat([near, far], ignore_index=True)


def expected_rows(aoi_id: str, polygon_in_utm: shapely.Geometry, rasters: list[PairRaster]) -> pd.DataFrame:
    """The statistics as a user would compute them: shapely point-in-polygon over pixel centres."""
    rows, columns = np.indices(SHAPE)
    centre_x = ORIGIN[0] + (columns + 0.5) * PIXEL_SIZE
    centre_y = ORIGIN[1] - (rows + 0.5) * PIXEL_SIZE
    inside = shapely.contains_xy(polygon_in_utm, centre_x, centre_y)
    records = []
    for raster in rasters:
        with rasterio.open(raster.path) as source:
            pixels = source.read(1)[inside]
        valid = pixels[~np.isnan(pixels)].astype(np.float64)
        statistics = (
            [valid.mean(), np.median(valid), np.percentile(valid, 10), np.percentile(valid, 90)]
            if valid.size
            else [np.nan] * 4
        )
        records.append(
            [aoi_id, BURST, pd.Timestamp(raster.reference_date), pd.Timestamp(raster.secondary_date),
             (raster.secondary_date - raster.reference_date).days, *statistics,
             valid.size / pixels.size, int(inside.sum())]
        )  # fmt: skip
    return pd.DataFrame(records, columns=list(SERIES_COLUMNS))


@pytest.fixture
def cube(tmp_path: Path):
    rasters = write_rasters(tmp_path)
    stack_coherence_cube(LOCAL, rasters, str(tmp_path / "cube.zarr"), spatial_chunk=16)
    return open_coherence_cube(LOCAL, str(tmp_path / "cube.zarr")), rasters


@pytest.mark.parametrize("crs", [UTM_32N, "EPSG:4326", "EPSG:3035"])
def test_statistics_match_point_in_polygon_over_pixel_centres_in_any_crs(cube, crs):
    dataset, rasters = cube
    areas = aois(crs)
    in_utm = dict(zip(areas["aoi_id"], areas.to_crs(UTM_32N).geometry, strict=True))

    series = aoi_coherence_series(dataset, areas, BURST)

    expected = pd.concat(
        [expected_rows(aoi_id, in_utm[aoi_id], rasters) for aoi_id in ("glacier", "moraine")],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(
        series.table, expected, check_dtype=False, check_exact=False, rtol=1e-6, atol=1e-6
    )
    assert list(series.table.columns) == list(SERIES_COLUMNS)
    assert series.covered == ["glacier", "moraine"]
    # the comparison means something only with many pixels, some NaN, and a pair without data
    assert (series.table["pixel_count"] > 50).all()
    glacier = series.table[series.table["aoi_id"] == "glacier"]
    assert 0 < glacier["valid_fraction"].iloc[0] < 1
    assert glacier["valid_fraction"].iloc[2] == 0 and np.isnan(glacier["mean"].iloc[2])


def test_aois_without_pixels_are_reported_not_dropped_silently(cube):
    dataset, _ = cube
    areas = aois("EPSG:4326")
    footprint = gpd.GeoSeries([shapely.box(*dataset.rio.bounds())], crs=UTM_32N).to_crs(4326)

    series = aoi_coherence_series(dataset, areas, BURST)

    assert series.without_pixel_centres == ["tiny"]
    assert series.outside == ["far_away"]
    assert set(series.table["aoi_id"]) == {"glacier", "moraine"}
    assert aois_outside_footprints(areas, footprint) == ["far_away"]


def test_a_cube_without_any_aoi_gives_an_empty_table_with_the_documented_columns(cube):
    dataset, _ = cube
    far = gpd.GeoDataFrame({"aoi_id": ["far_away"]}, geometry=[FAR_AWAY_LONLAT], crs=4326)

    series = aoi_coherence_series(dataset, far, BURST)

    assert series.table.empty and list(series.table.columns) == list(SERIES_COLUMNS)
    assert series.outside == ["far_away"]


def test_reading_one_pair_at_a_time_for_large_aois_gives_the_same_table(cube, monkeypatch):
    dataset, _ = cube
    areas = aois(UTM_32N)
    whole = aoi_coherence_series(dataset, areas, BURST).table

    monkeypatch.setattr(statistics, "MAX_VALUES_PER_READ", 1)  # as if each AOI window were huge
    pair_by_pair = aoi_coherence_series(dataset, areas, BURST).table

    pd.testing.assert_frame_equal(pair_by_pair, whole)
