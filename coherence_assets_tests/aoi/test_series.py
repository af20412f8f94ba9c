"""``write_aoi_series`` without Dagster: the table and plot it writes, and the AOIs it reports."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from coherence_assets.aoi.series import write_aoi_series
from coherence_assets.cube.stacking import find_pair_rasters, stack_coherence_cube
from coherence_assets.storage import DataStore
from coherence_assets_tests.aoi.test_statistics import BURST, aois, write_rasters
from coherence_assets_tests.rasters.geotiffs import ORIGIN, PIXEL_SIZE, SHAPE, UTM_32N


def prepare(root: Path) -> DataStore:
    """A store holding a stacked cube of ``BURST`` and a burst catalogue whose footprint is the cube's grid."""
    store = DataStore(str(root))
    folder = Path(store.coherence_rasters_dir(BURST, "2023-07-01"))
    folder.mkdir(parents=True)
    write_rasters(folder)
    rasters = find_pair_rasters(store.fs, store.coherence_rasters_root(BURST))
    stack_coherence_cube(store.fs, rasters, store.coherence_cube_path(BURST), spatial_chunk=16)
    left, top = ORIGIN
    grid = shapely.box(left, top - SHAPE[0] * PIXEL_SIZE, left + SHAPE[1] * PIXEL_SIZE, top)
    gpd.GeoDataFrame({"burst": [BURST]}, geometry=[grid], crs=UTM_32N).to_crs(4326).to_parquet(
        store.burst_catalogue_path()
    )
    return store


def test_the_table_and_plot_are_written_and_every_aoi_without_statistics_is_named(tmp_path):
    store = prepare(tmp_path)
    aoi_file = tmp_path / "aois.gpkg"
    aois("EPSG:4326").to_file(aoi_file)

    output = write_aoi_series(store, BURST, str(aoi_file))

    table = pd.read_parquet(store.coherence_aoi_series_path(BURST))
    pd.testing.assert_frame_equal(table, output.series.table)
    assert Path(store.coherence_aoi_plot_path(BURST)).read_bytes() == output.plot_png
    assert output.problems() == [
        f"{BURST}: AOIs far_away touch no burst of the burst catalogue and get no statistics",
        f"{BURST}: AOIs tiny overlap this burst's grid but contain no pixel centre",
    ]
    assert output.summary() == {
        "rows": 6,
        "aois_in_burst": "glacier, moraine",
        "aois_outside_burst": "far_away",
        "aois_without_pixel_centres": "tiny",
        "aois_outside_every_burst": "far_away",
    }


def test_no_aoi_in_the_burst_leaves_an_empty_table_and_no_stale_plot(tmp_path):
    store = prepare(tmp_path)
    all_aois, far_only = tmp_path / "all.geojson", tmp_path / "far.geojson"
    aois(UTM_32N).to_file(all_aois)
    aois(UTM_32N).query("aoi_id == 'far_away'").to_file(far_only)
    write_aoi_series(store, BURST, str(all_aois))

    output = write_aoi_series(store, BURST, str(far_only))

    assert pd.read_parquet(store.coherence_aoi_series_path(BURST)).empty
    assert output.plot_path is None and not Path(store.coherence_aoi_plot_path(BURST)).exists()
