"""The chain on a real object store: ``COHERENCE_DATA_DIR=s3://...`` on moto's S3 server over HTTP."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import geopandas as gpd
import numpy as np
import pandas as pd
import pystac
import pytest
import shapely
import xarray as xr

from coherence_assets.raster_files.validation import validate_coherence_raster
from coherence_assets.stac.catalogue import FsspecStacIO
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.defs.conftest import (
    BURST,
    Chain,
    chain_definitions,
    chain_resources,
    write_burst_file,
)
from coherence_assets_tests.s3_server import S3Server

pytestmark = pytest.mark.slow


@pytest.fixture
def s3_chain(
    s3_env: S3Server, backend: LiveBackend, dagster_instance: dg.DagsterInstance, tmp_path: Path
) -> Chain:
    """The chain with its data folder in a fresh bucket of the S3 server."""
    data_dir = f"s3://{s3_env.new_bucket()}/data"
    bursts_file = write_burst_file(tmp_path / "bursts.geojson", [BURST])
    return Chain(
        defs=chain_definitions(chain_resources(backend, data_dir, bursts_file=bursts_file)),
        instance=dagster_instance,
        backend=backend,
        data_dir=data_dir,
        bursts_file=bursts_file,
    )


def aoi_at_the_burst_centre(chain: Chain, folder: Path) -> Path:
    """An AOI file with one polygon inside the small scene the test backend computes."""
    catalogue = gpd.read_parquet(chain.store.burst_catalogue_path(), filesystem=chain.store.fs)
    centre = gpd.GeoSeries([shapely.box(*catalogue.total_bounds).centroid], crs=catalogue.crs)
    path = folder / "aois.geojson"
    gpd.GeoDataFrame({"aoi_id": ["centre"]}, geometry=centre.to_crs(32632).buffer(300).to_crs(4326)).to_file(
        path
    )
    return path


def test_the_whole_chain_on_s3_writes_cubes_tables_and_stac_and_a_rerun_submits_nothing(
    s3_chain: Chain, tmp_path: Path
):
    chain = s3_chain
    store = chain.store
    chain.refresh_bursts()
    chain.submit()
    chain.wait_for_ledger_jobs()
    chain.launch(chain.tick())
    stacked = chain.run(
        "stack_coherence_cube",
        BURST,
        run_config={
            "resources": {"aoi_file": {"config": {"path": str(aoi_at_the_burst_centre(chain, tmp_path))}}}
        },
    )
    jobs_before = chain.backend_jobs()
    rerun = chain.submit()

    assert stacked.success and rerun.success
    assert chain.backend_jobs().keys() == jobs_before.keys(), "the rerun submitted jobs again"
    pairs = [pair for job in chain.ledger().jobs for pair in job.pairs]
    # the cube opens as any xarray user opens it, straight from the bucket
    cube = xr.open_zarr(store.fs.unstrip_protocol(store.coherence_cube_path(BURST)))
    assert cube.sizes["time"] == len(pairs) > 0
    assert np.isfinite(cube["coherence"].values).any()
    table = pd.read_parquet(store.coherence_aoi_series_path(BURST), filesystem=store.fs)
    assert set(table["aoi_id"]) == {"centre"} and len(table) == len(pairs)
    for quicklook in (store.coherence_quicklook_path(BURST), store.coherence_aoi_plot_path(BURST)):
        assert store.read_bytes(quicklook).startswith(b"\x89PNG"), quicklook
    # every STAC href resolves on the store: the catalogue, the items and their rasters
    catalog = pystac.Catalog.from_file(
        store.fs.unstrip_protocol(store.stac_catalog_path()), stac_io=FsspecStacIO(store)
    )
    items = list(catalog.get_items(recursive=True))
    assert len(items) == len(pairs)
    for item in items:
        href = item.assets["coherence"].get_absolute_href()
        assert href.startswith("s3://")
        validate_coherence_raster(store.fs, href)
