"""The cube read by other tools: the IOOS compliance-checker (CF-1.8), GDAL, and its size on disk."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import fsspec
import numpy as np
import pytest
import rasterio
import requests
import xarray as xr
from affine import Affine
from compliance_checker.runner import CheckSuite

from coherence_assets.cube.stacking import PairRaster, open_coherence_cube, stack_coherence_cube
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets_tests.cube.test_stacking import JULY, OCTOBER, cube_path, make_rasters
from embedded_openeo.coherence_estimator import boxcar_coherence
from embedded_openeo.results import write_coherence_geotiff
from embedded_openeo.synthetic_scene import SceneGrid

LOCAL = fsspec.filesystem("file")
SEVERAL_BASELINES = [
    (date(2023, 7, 1), date(2023, 7, 13)),
    (date(2023, 7, 1), date(2023, 7, 25)),
    (date(2023, 7, 13), date(2023, 7, 25)),
]


def cf_failures(netcdf: Path) -> list[str]:
    """Every CF-1.8 check the file fails, whatever its priority, as 'section: message'."""
    suite = CheckSuite()
    suite.load_all_available_checkers()
    results, errors = suite.run_all(suite.load_dataset(str(netcdf)), ["cf:1.8"], skip_checks=[])["cf:1.8"]
    assert not errors, errors  # a check that crashed is no pass
    return [
        f"{result.name}: {message}"
        for result in results
        if result.value is False or (isinstance(result.value, tuple) and result.value[0] < result.value[1])
        for message in result.msgs
    ]


@pytest.mark.parametrize(("pairs", "pair_dim"), [(JULY + OCTOBER, False), (SEVERAL_BASELINES, True)])
def test_both_layouts_export_to_netcdf_without_a_cf_failure(tmp_path, monkeypatch, pairs, pair_dim):
    # The checker downloads a standard name table only when asked for another version than the
    # one it ships: the cube must not ask, so the check runs offline.
    def no_network(*args, **kwargs):
        raise AssertionError(f"the compliance check went online: {args[1:2]}")

    monkeypatch.setattr(requests.Session, "request", no_network)
    stack_coherence_cube(
        LOCAL, make_rasters(tmp_path, "2023-07-01", pairs), cube_path(tmp_path), pair_dim=pair_dim
    )

    for layout in ("image", "timeseries"):
        netcdf = tmp_path / f"{layout}.nc"
        open_coherence_cube(LOCAL, cube_path(tmp_path), layout=layout).to_netcdf(netcdf)
        assert cf_failures(netcdf) == [], layout


@pytest.mark.parametrize("layout", ["image", "timeseries"])
def test_time_bounds_span_each_pair_from_reference_to_secondary_acquisition(tmp_path, layout):
    rasters = make_rasters(tmp_path, "2023-07-01", SEVERAL_BASELINES)
    stack_coherence_cube(LOCAL, rasters, cube_path(tmp_path), pair_dim=True)

    cube = open_coherence_cube(LOCAL, cube_path(tmp_path), layout=layout)

    assert cube["time"].attrs["bounds"] == "time_bnds"
    assert cube["time_bnds"].dims == ("pair", "bnds")
    bounds = [tuple(pd_day(value) for value in row) for row in cube["time_bnds"].values]
    assert bounds == SEVERAL_BASELINES
    np.testing.assert_array_equal(cube["time_bnds"].values[:, 0], cube["time"].values)
    np.testing.assert_array_equal(cube["time_bnds"].values[:, 1], cube["secondary_time"].values)


def pd_day(value: np.datetime64) -> date:
    return value.astype("datetime64[D]").astype(date)


def test_gdal_reads_every_dates_coherence_as_xarray_does_with_its_crs(tmp_path):
    stack_coherence_cube(LOCAL, make_rasters(tmp_path, "2023-07-01", JULY + OCTOBER), cube_path(tmp_path))
    cube = xr.open_zarr(cube_path(tmp_path))

    # GDAL as shipped in rasterio's wheel (QGIS and R read the same way): one band per date
    with rasterio.open(f'ZARR:"{cube_path(tmp_path)}":/coherence') as dataset:
        assert dataset.count == cube.sizes["time"]
        assert dataset.crs == "EPSG:32632"
        assert dataset.transform == cube.rio.transform()
        for band in range(1, dataset.count + 1):
            np.testing.assert_array_equal(dataset.read(band), cube["coherence"].isel(time=band - 1).values)


def write_estimated_rasters(
    folder: Path, count: int, shape: tuple[int, int] = (200, 400)
) -> list[PairRaster]:
    """GeoTIFFs as the embedded backend writes them, of coherence estimated as it estimates it:
    a boxcar of 21 x 5 looks over SLC pairs whose true coherence follows patches of land cover
    and the season, NaN on a burst edge."""
    rng = np.random.default_rng(18)
    rows, columns = np.indices(shape)
    cover = np.sin(rows / 23.0) * np.cos(columns / 31.0) + 0.5 * np.sin(columns / 11.0 + rows / 17.0)
    grid = SceneGrid(
        crs_epsg=32632,
        transform=Affine(20.0, 0.0, 600_000.0, 0.0, -20.0, 5_200_000.0),
        width=shape[1],
        height=shape[0],
    )
    rasters = []
    for index in range(count):
        reference = date(2021, 1, 3) + timedelta(days=12 * index)
        secondary = reference + timedelta(days=12)
        season = 0.5 + 0.4 * np.cos(2 * np.pi * reference.timetuple().tm_yday / 365.25)
        truth = np.where(cover > 0.3, 0.85, np.where(cover > -0.4, 0.2 + 0.5 * season, 0.05)).astype(
            np.float32
        )
        first, noise = (
            rng.standard_normal((*shape, 2), dtype=np.float32).view(np.complex64)[..., 0] for _ in range(2)
        )
        second = truth * first + np.sqrt(1 - truth**2) * noise
        coherence = boxcar_coherence(first, second, 21, 5)
        coherence[:, : shape[1] // 10] = np.nan  # the burst's edge
        path = folder / raster_file_name(reference, secondary)
        write_coherence_geotiff(path, coherence, grid, "coherence")
        rasters.append(PairRaster(str(path), reference, secondary))
    return rasters


@pytest.mark.slow
def test_the_store_is_at_most_twice_its_geotiffs_at_8_16_and_70_pairs(tmp_path):
    rasters = write_estimated_rasters(tmp_path, 70)
    cube = str(tmp_path / "cube.zarr")

    ratios = {}
    for count in (8, 16, 70):  # the first window, an append, and years of appends
        stack_coherence_cube(LOCAL, rasters[:count], cube)
        geotiffs = sum(Path(raster.path).stat().st_size for raster in rasters[:count])
        ratios[count] = LOCAL.du(cube) / geotiffs

    print(f"store / GeoTIFFs: {ratios}")
    assert max(ratios.values()) <= 2.0, ratios
