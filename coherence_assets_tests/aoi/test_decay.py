"""Each AOI gets the medians of its pixels' seasonal decay, and a plot of its decay curves."""

from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from coherence_assets.aoi.decay import DECAY_COLUMNS, aoi_decay_table
from coherence_assets.aoi.plot import render_aoi_decay_png
from coherence_assets.decay.burst_decay import decay_burst, open_decay
from coherence_assets.storage import DataStore
from coherence_assets_tests.decay.test_burst_decay import (
    BURST,
    LEFT,
    RIGHT,
    stack_test_cube,
    write_season_rasters,
)
from coherence_assets_tests.rasters.geotiffs import ORIGIN, PIXEL_SIZE, UTM_32N


def halves() -> gpd.GeoDataFrame:
    """Two AOIs: the left and right halves of the test rasters (40 x 60 pixels), the first row left out."""
    left, top = ORIGIN
    bottom = top - 40 * PIXEL_SIZE
    middle, right = left + 30 * PIXEL_SIZE, left + 60 * PIXEL_SIZE
    return gpd.GeoDataFrame(
        {"aoi_id": ["meadow", "glacier", "far_away"]},
        geometry=[
            shapely.box(left, bottom, middle, top - PIXEL_SIZE),
            shapely.box(middle, bottom, right, top - PIXEL_SIZE),
            shapely.box(0, 0, 100, 100),
        ],
        crs=UTM_32N,
    ).to_crs(4326)  # AOIs come in any CRS


@pytest.fixture
def decayed_store(tmp_path: Path) -> DataStore:
    store = DataStore(str(tmp_path))
    write_season_rasters(store, date(2023, 6, 1), 90)
    stack_test_cube(store)
    decay_burst(store, BURST)
    return store


def test_each_aoi_gets_its_own_regions_decay_parameters(decayed_store: DataStore):
    table = aoi_decay_table(open_decay(decayed_store, BURST), halves(), BURST)

    assert list(table.columns) == list(DECAY_COLUMNS)
    assert set(table["aoi_id"]) == {"meadow", "glacier"}  # far_away holds no pixel centre
    assert len(table) == 2 * 4 and set(table["season"]) == {"2023-JJA"}
    for aoi_id, (rho_inf, tau) in (("meadow", LEFT), ("glacier", RIGHT)):
        rows = table[table["aoi_id"] == aoi_id]
        assert rows["rho_inf"].iloc[0] == pytest.approx(rho_inf, abs=0.03)
        assert rows["tau"].iloc[0] == pytest.approx(tau, rel=0.15)
        assert (rows["fitted_fraction"] > 0.9).all()
        assert rows["median_coherence"].is_monotonic_decreasing  # coherence falls with the baseline
    assert render_aoi_decay_png(table, BURST).startswith(b"\x89PNG")


def test_the_aoi_series_step_writes_the_decay_table_and_curves_beside_the_series(
    decayed_store: DataStore, tmp_path
):
    from coherence_assets.aoi.series import write_aoi_series

    aoi_file = tmp_path / "aois.geojson"
    halves().to_file(aoi_file)
    gpd.GeoDataFrame({"burst": [BURST]}, geometry=[halves().union_all().envelope], crs=4326).to_parquet(
        decayed_store.burst_catalogue_path()
    )

    output = write_aoi_series(decayed_store, BURST, str(aoi_file))

    written = pd.read_parquet(output.decay_table_path)
    pd.testing.assert_frame_equal(written, output.decay_table)
    assert Path(output.decay_plot_path).read_bytes() == output.decay_plot_png
