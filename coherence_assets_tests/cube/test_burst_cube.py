"""The coherence_cube step without Dagster: real GeoTIFFs of two windows in, one Zarr cube and a PNG out."""

from __future__ import annotations

import pytest
import xarray as xr

from coherence_assets.cube.burst_cube import stack_burst
from coherence_assets.cube.stacking import open_coherence_cube
from coherence_assets.storage import DataStore
from coherence_assets_tests.cube.test_stacking import JULY, OCTOBER, make_rasters

BURST = "t015_030343_iw2"


def test_every_window_of_the_burst_is_stacked_and_the_quicklook_is_a_png(tmp_path):
    make_rasters(tmp_path, "2023-07-01", JULY)
    make_rasters(tmp_path, "2023-10-01", OCTOBER)
    store = DataStore(str(tmp_path))

    stacked = stack_burst(store, BURST, pair_dim=False)

    cube = xr.open_zarr(stacked.path)
    assert cube.sizes["time"] == stacked.summary.pair_count == len(JULY) + len(OCTOBER)
    assert [str(day)[:10] for day in cube["time"].values] == ["2023-07-01", "2023-07-13", "2023-10-05"]
    with open(stacked.quicklook_path, "rb") as stream:
        assert stream.read() == stacked.quicklook and stacked.quicklook.startswith(b"\x89PNG")


def test_a_burst_without_rasters_names_the_asset_to_materialise(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"materialise coherence_rasters for {BURST} first"):
        stack_burst(DataStore(str(tmp_path)), BURST, pair_dim=False)


def test_global_attributes_reach_both_layouts_and_follow_each_stacking(tmp_path):
    make_rasters(tmp_path, "2023-07-01", JULY)
    store = DataStore(str(tmp_path))

    stacked = stack_burst(store, BURST, pair_dim=False, global_attributes={"history": "first", "version": 1})
    for layout in ("image", "timeseries"):
        cube = open_coherence_cube(store.fs, stacked.path, layout=layout)
        assert (cube.attrs["history"], cube.attrs["version"]) == ("first", 1)
        assert cube.attrs["Conventions"] == "CF-1.8"

    # nothing new to stack: the attributes still describe this stacking
    stack_burst(store, BURST, pair_dim=False, global_attributes={"history": "second"})
    for layout in ("image", "timeseries"):
        assert open_coherence_cube(store.fs, stacked.path, layout=layout).attrs["history"] == "second"
    assert xr.open_zarr(stacked.path).attrs["history"] == "second"  # the consolidated metadata too
