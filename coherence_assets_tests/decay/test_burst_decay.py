"""The decay step reads a real stacked cube and writes a Zarr product that recovers the parameters drawn."""

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr

from coherence_assets.cube.stacking import find_pair_rasters, stack_coherence_cube
from coherence_assets.decay.burst_decay import decay_burst, open_decay
from coherence_assets.decay.model import decay_model
from coherence_assets.storage import DataStore
from coherence_assets_tests.decay.test_model import estimator_noise
from coherence_assets_tests.rasters.geotiffs import write_coherence_tif

BURST = "t015_030343_iw2"
BASELINES = (12, 24, 36, 48)
SHAPE = (40, 60)
# left half slow-decaying meadow-like pixels, right half a glacier losing coherence within days
LEFT, RIGHT = (0.45, 30.0), (0.15, 12.0)


def write_season_rasters(store: DataStore, first: date, days: int, baselines=BASELINES, seed: int = 0) -> int:
    """Pairs every 6 days from ``first`` for ``days`` days at each baseline, left/right halves with known decay."""
    rng = np.random.default_rng(seed)
    written = 0
    for offset in range(0, days, 6):
        reference = first + timedelta(days=offset)
        for baseline in baselines:
            truth = np.empty(SHAPE)
            truth[:, : SHAPE[1] // 2] = decay_model(baseline, *LEFT)
            truth[:, SHAPE[1] // 2 :] = decay_model(baseline, *RIGHT)
            values = np.clip(estimator_noise(rng, truth), 0.0, 1.0).astype(np.float32)
            values[0, :] = np.nan  # a burst edge without data
            secondary = reference + timedelta(days=baseline)
            window = store.coherence_rasters_dir(
                BURST, f"{reference.year}-{(reference.month - 1) // 3 * 3 + 1:02d}-01"
            )
            Path(window).mkdir(parents=True, exist_ok=True)
            write_coherence_tif(f"{window}/{reference:%Y%m%d}_{secondary:%Y%m%d}.tif", values)
            written += 1
    return written


def stack_test_cube(store: DataStore) -> None:
    """Stack every raster written so far into the burst's cube, as the cube step does."""
    rasters = find_pair_rasters(store.fs, store.coherence_rasters_root(BURST))
    stack_coherence_cube(store.fs, rasters, store.coherence_cube_path(BURST), pair_dim=True, spatial_chunk=32)


def test_decay_recovers_each_regions_parameters_and_leaves_a_two_baseline_season_nan(tmp_path: Path):
    store = DataStore(str(tmp_path))
    write_season_rasters(store, date(2023, 6, 1), 90)  # 2023-JJA, four baselines
    write_season_rasters(store, date(2023, 9, 1), 60, baselines=(12, 24), seed=1)  # 2023-SON, two only
    stack_test_cube(store)

    result = decay_burst(store, BURST)

    decay = open_decay(store, BURST)
    assert list(decay.season.values) == ["2023-JJA", "2023-SON"]
    assert list(decay.temporal_baseline.values) == list(BASELINES)
    summer = decay.sel(season="2023-JJA").isel(y=slice(1, None)).load()
    for columns, (rho_inf, tau) in ((slice(0, 30), LEFT), (slice(30, 60), RIGHT)):
        region = summer.isel(x=columns)
        assert abs(float(region.rho_inf.median()) - rho_inf) <= 0.03
        assert abs(float(region.tau.median()) - tau) <= 0.15 * tau
        assert float(region.rho_inf.notnull().mean()) > 0.9
    assert int(summer.pair_count.max()) == 15 * 4  # 15 references x 4 baselines
    autumn = decay.sel(season="2023-SON").load()
    assert autumn.rho_inf.isnull().all() and autumn.tau.isnull().all()  # two baselines: no fit, NaN not 0
    assert autumn.median_coherence.sel(temporal_baseline=12).isel(y=slice(1, None)).notnull().all()
    assert decay.rho_inf.isel(y=0).isnull().all()  # no data stays no data
    assert result.summary.seasons_without_fit == ["2023-SON"]
    assert result.quicklook.startswith(b"\x89PNG")
    assert Path(result.quicklook_path).read_bytes() == result.quicklook
    assert xr.open_zarr(store.coherence_decay_path(BURST)).rho_inf.attrs["grid_mapping"] == "spatial_ref"
    # GDAL (QGIS, R) reads the maps as they are: same values, same CRS
    with rasterio.open(f'ZARR:"{store.coherence_decay_path(BURST)}":/rho_inf') as maps:
        assert maps.crs == "EPSG:32632"
        np.testing.assert_array_equal(maps.read(1), decay.rho_inf.isel(season=0).values)


def test_a_second_run_replaces_the_product_with_one_for_the_grown_cube(tmp_path: Path):
    store = DataStore(str(tmp_path))
    write_season_rasters(store, date(2023, 6, 1), 30)
    stack_test_cube(store)
    decay_burst(store, BURST)
    write_season_rasters(store, date(2023, 12, 1), 30, seed=2)
    stack_test_cube(store)

    decay_burst(store, BURST)

    assert list(open_decay(store, BURST).season.values) == ["2023-JJA", "2024-DJF"]
    assert not Path(store.coherence_decay_path(BURST) + ".partial").exists()
