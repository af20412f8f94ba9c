"""The cube's stack run also writes the per-AOI table (``coherence_aoi_series``) and the STAC (``coherence_stac``)."""

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import pystac
import pytest
import shapely
import xarray as xr

from coherence_assets.aoi.statistics import SERIES_COLUMNS
from coherence_assets.cdse_facts import APEX_NAMESPACE
from coherence_assets.settings import packaged_demo_aoi_file
from coherence_assets_tests.defs.conftest import BURST, Chain, materialization_metadata
from coherence_assets_tests.defs.downloaded_window import PINNED_COMMIT, downloaded_window
from coherence_assets_tests.defs.test_coherence_cube_asset import cube_path
from coherence_assets_tests.stac.schema_validation import validate_stac


def stack_with_aois(chain: Chain, aoi_file: Path | str, raise_on_error: bool = True):
    return chain.run(
        "stack_coherence_cube",
        BURST,
        run_config={"resources": {"aoi_file": {"config": {"path": str(aoi_file)}}}},
        raise_on_error=raise_on_error,
    )


@pytest.mark.slow
def test_the_stack_run_writes_the_aoi_table_and_plot_and_reports_aois_it_cannot_describe(
    chain: Chain, tmp_path: Path
):
    chain.refresh_bursts()
    pairs = downloaded_window(chain, "2023-07-01")
    bursts_crs = gpd.read_file(chain.bursts_file).crs
    cube_centre = gpd.GeoSeries(
        [shapely.box(*gpd.read_parquet(chain.data_dir / "burst_catalogue.parquet").total_bounds).centroid],
        crs=bursts_crs,
    )
    inside = cube_centre.to_crs(32632).buffer(300).to_crs(3035)  # ~700 pixels, drawn in another CRS
    lake = gpd.GeoSeries([shapely.box(33, -1, 33.1, -0.9)], crs=4326).to_crs(3035)
    gpd.GeoDataFrame(
        {"aoi_id": ["centre", "lake_victoria"]}, geometry=[inside.iloc[0], lake.iloc[0]], crs=3035
    ).to_file(tmp_path / "aois.gpkg")
    packaged = gpd.read_file(packaged_demo_aoi_file())
    pd.concat([packaged, packaged.iloc[[0]]]).to_file(tmp_path / "duplicated.geojson")

    reported = stack_with_aois(chain, tmp_path / "aois.gpkg")

    table = pd.read_parquet(chain.data_dir / "coherence_aoi_series" / f"{BURST}.parquet")
    assert cube_path(chain).exists()
    assert list(table.columns) == list(SERIES_COLUMNS)
    assert set(table["aoi_id"]) == {"centre"} and (table["burst"] == BURST).all()
    assert [(row.reference_date.date(), row.secondary_date.date()) for row in table.itertuples()] == pairs
    assert (table["pixel_count"] > 500).all() and table["median"].between(0, 1).all()
    plot = chain.data_dir / "coherence_aoi_series" / f"{BURST}.png"
    assert plot.read_bytes().startswith(b"\x89PNG")
    metadata = materialization_metadata(reported, "coherence_aoi_series")
    assert metadata["plot"].startswith(f"![{BURST} AOI coherence](")  # shown inline in the UI
    assert metadata["plot_png"] == plot.as_uri()
    assert metadata["aois_in_burst"] == "centre"
    assert metadata["aois_outside_every_burst"] == "lake_victoria"

    # the packaged glaciers lie outside the small scene the test backend computes: no rows, no plot
    packaged_run = stack_with_aois(chain, packaged_demo_aoi_file())
    assert pd.read_parquet(chain.data_dir / "coherence_aoi_series" / f"{BURST}.parquet").empty
    assert not plot.exists()
    assert (
        "ortlerferner" in materialization_metadata(packaged_run, "coherence_aoi_series")["aois_outside_burst"]
    )

    failed = stack_with_aois(chain, tmp_path / "duplicated.geojson", raise_on_error=False)
    assert not failed.success
    (failure,) = [event for event in failed.all_events if event.is_step_failure]
    assert (
        "aoi_id hintereisferner appear(s) more than once, in rows 0, 5"
        in failure.step_failure_data.error.to_string()
    )


@pytest.mark.slow
def test_the_stack_run_writes_a_valid_stac_catalogue_with_an_item_per_raster_and_the_cube_all_with_provenance(
    chain: Chain,
):
    chain.refresh_bursts()
    pairs = downloaded_window(chain, "2023-07-01")

    result = chain.run("stack_coherence_cube", BURST)

    catalog = pystac.Catalog.from_file(str(chain.data_dir / "stac" / "catalog.json"))
    (collection,) = catalog.get_children()
    items = sorted(collection.get_items(), key=lambda item: item.datetime)
    assert [(item.datetime.date(), item.properties["coherence:secondary_date"]) for item in items] == [
        (reference, secondary.isoformat()) for reference, secondary in pairs
    ]
    assert all(item.properties["sar:polarizations"] == ["VV"] for item in items)  # from the rasters' tags
    # exact times: the catalogue's records as the pair table keeps them, to the microsecond, not midnight
    table = pd.read_parquet(chain.data_dir / "insar_pairs" / BURST / "2023-07-01.parquet")
    assert [item.datetime for item in items] == list(table.reference_time.dt.to_pydatetime())
    assert [item.common_metadata.end_datetime for item in items] == list(
        table.secondary_time.dt.to_pydatetime()
    )
    pinned = APEX_NAMESPACE.replace("refs/heads/main", PINNED_COMMIT)
    for item in items:
        assert (
            item.common_metadata.platform == "sentinel-1a"
            and item.common_metadata.constellation == "sentinel-1"
        )
        assert item.properties["sat:relative_orbit"] == 15 and item.properties["sat:orbit_state"] in {
            "ascending",
            "descending",
        }
        assert item.properties["processing:software"]["sentinel1_sar_coherence"] == PINNED_COMMIT
        assert pinned in item.properties["processing:lineage"]
    # the cube's CF attributes and the AOI table's Parquet metadata carry the same facts
    attributes = xr.open_zarr(cube_path(chain)).attrs
    assert attributes["process_namespace"] == pinned and attributes["polarisation"] == "VV"
    assert (attributes["coherence_window_rg"], attributes["coherence_window_az"]) == (21, 5)
    assert (
        attributes["source"].endswith("stacked by coherence-assets 0.1.0")
        and attributes["Conventions"] == "CF-1.8"
    )
    assert set(attributes["parent_products"].split()) == set(table.reference_product) | set(
        table.secondary_product
    )
    assert attributes["pairs_without_provenance"] == 0
    metadata = pq.read_schema(chain.data_dir / "coherence_aoi_series" / f"{BURST}.parquet").metadata
    assert (
        metadata[b"process_namespace"].decode() == pinned
        and metadata[b"history"].decode() == attributes["history"]
    )
    assert Path(collection.assets["cube"].get_absolute_href()) == cube_path(chain)
    for document in [catalog.to_dict(), collection.to_dict(), *(item.to_dict() for item in items)]:
        validate_stac(document)
    metadata = materialization_metadata(result, "coherence_stac")
    assert metadata["items"] == len(pairs) and metadata["items_without_polarisation"] == "none"
