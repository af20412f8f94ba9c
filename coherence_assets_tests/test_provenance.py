"""Provenance written into rasters at download and read back by the outputs made from them."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import rasterio

from coherence_assets.cube.provenance import cube_attributes, parquet_with_provenance
from coherence_assets.cube.stacking import PairRaster
from coherence_assets.jobs.ledger import FINISHED, JobRecord, Ledger
from coherence_assets.jobs.processes import apex_namespace
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.rasters.download import DownloadOutcome
from coherence_assets.rasters.provenance import (
    PairProvenance,
    platform_of_product,
    read_raster_provenance,
    tagged_geotiff,
    write_raster_provenance,
)
from coherence_assets.storage import DataStore
from coherence_assets_tests.rasters.geotiffs import write_coherence_tif

BURST, WINDOW = "t015_030343_iw2", "2023-07-01"
COMMIT = "3b16249e9817cafc049836ec273d2c04e08d6969"
PAIRS = [(date(2023, 7, 3), date(2023, 7, 15)), (date(2023, 7, 15), date(2023, 7, 27))]
PRODUCTS = {
    date(2023, 7, 3): "S1A_IW_SLC__0703",
    date(2023, 7, 15): "S1C_IW_SLC__0715",
    date(2023, 7, 27): "S1A_X",
}


def sensing(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 17, 15, 8, 123456, tzinfo=UTC)


def provenance(**changes) -> PairProvenance:
    values = {
        "burst": BURST,
        "reference_time": sensing(date(2023, 7, 3)),
        "secondary_time": sensing(date(2023, 7, 15)),
        "reference_product": PRODUCTS[date(2023, 7, 3)],
        "secondary_product": PRODUCTS[date(2023, 7, 15)],
        "orbit_direction": "ascending",
        "process": "sentinel1_sar_coherence",
        "process_namespace": apex_namespace(COMMIT),
        "polarisation": "VV",
        "coherence_window_rg": 21,
        "coherence_window_az": 5,
        "openeo_job_id": "j-1",
        "openeo_backend": "https://openeo.dataspace.copernicus.eu",
        "software": "coherence-assets 0.1.0",
    }
    return PairProvenance(**{**values, **changes})


def test_tags_hold_every_fact_exactly_and_leave_the_pixels_as_they_were(tmp_path: Path):
    path = write_coherence_tif(tmp_path / "pair.tif")
    original = Path(path).read_bytes()

    Path(path).write_bytes(tagged_geotiff(original, provenance().tags()))

    with rasterio.open(path) as tagged, rasterio.MemoryFile(original) as memory, memory.open() as untouched:
        np.testing.assert_array_equal(tagged.read(), untouched.read())
        assert (tagged.crs, tagged.transform) == (untouched.crs, untouched.transform)
        assert np.isnan(tagged.nodata) and np.isnan(untouched.nodata)
        assert tagged.tags()["process_namespace"] == apex_namespace(COMMIT)  # as gdalinfo lists it
        assert tagged.tags()["reference_time"] == "2023-07-03T17:15:08.123456Z"
        assert PairProvenance.from_tags(tagged.tags()) == provenance()
        assert PairProvenance.from_tags(untouched.tags()) is None
    assert provenance().process_commit == COMMIT and provenance().platforms == ["sentinel-1a", "sentinel-1c"]
    assert platform_of_product("S1B_IW_SLC__1SDV") == "sentinel-1b" and platform_of_product("LC08") == ""


@pytest.mark.parametrize("data_dir", ["local", "memory://provenance-test"])
def test_a_download_pass_tags_what_it_fetched_from_the_pair_table_and_the_ledger(
    tmp_path: Path, data_dir: str
):
    store = DataStore(str(tmp_path) if data_dir == "local" else data_dir)
    folder = store.coherence_rasters_dir(BURST, WINDOW)
    store.fs.makedirs(folder, exist_ok=True)
    for pair in PAIRS:
        store.write_bytes_atomically(
            f"{folder}/{raster_file_name(*pair)}",
            Path(write_coherence_tif(tmp_path / "source.tif")).read_bytes(),
        )
    table = pd.DataFrame(
        {
            "reference_date": [reference for reference, _ in PAIRS],
            "secondary_date": [secondary for _, secondary in PAIRS],
            "reference_time": pd.to_datetime([sensing(reference) for reference, _ in PAIRS], utc=True),
            "secondary_time": pd.to_datetime([sensing(secondary) for _, secondary in PAIRS], utc=True),
            "reference_product": [PRODUCTS[reference] for reference, _ in PAIRS],
            "secondary_product": [PRODUCTS[secondary] for _, secondary in PAIRS],
            "orbit_direction": "ASCENDING",
        }
    )
    store.write_bytes_atomically(store.insar_pairs_path(BURST, WINDOW), table.to_parquet(index=False))
    job = JobRecord(
        "s",
        "t",
        "sentinel1_sar_coherence",
        12,
        PAIRS,
        {"polarization": "VV", "coherence_window_rg": 21, "coherence_window_az": 5},
        job_id="j-1",
        status=FINISHED,
        namespace=apex_namespace(COMMIT),
    )
    ledger = Ledger(BURST, WINDOW, "https://openeo.dataspace.copernicus.eu", [job])
    fetched, skipped = (f"{folder}/{raster_file_name(*pair)}" for pair in PAIRS)

    write_raster_provenance(
        store,
        ledger,
        [DownloadOutcome("h", fetched, 1, "downloaded", 1), DownloadOutcome("h", skipped, 1, "skipped", 0)],
    )

    assert read_raster_provenance(store, fetched) == provenance(
        software=read_raster_provenance(store, fetched).software
    )
    assert (
        read_raster_provenance(store, skipped) is None
    )  # a skipped raster was tagged by the pass that fetched it


def test_the_cube_attributes_list_what_differs_count_what_is_unknown_and_tables_carry_them(tmp_path: Path):
    store = DataStore(str(tmp_path))
    rasters = []
    for number, tags in enumerate(
        [provenance().tags(), provenance(reference_product="S1A_B", secondary_product="S1A_C").tags(), None]
    ):
        path = write_coherence_tif(tmp_path / f"{number}.tif")
        if tags:
            Path(path).write_bytes(tagged_geotiff(Path(path).read_bytes(), tags))
        reference = date(2023, 7, 3) + timedelta(days=12 * number)
        rasters.append(PairRaster(path, reference, reference + timedelta(days=12)))

    attributes = cube_attributes(store, rasters)

    assert attributes["platform"] == "sentinel-1a sentinel-1c"
    assert attributes["parent_products"] == "S1A_B S1A_C S1A_IW_SLC__0703 S1C_IW_SLC__0715"
    assert (attributes["coherence_window_rg"], attributes["relative_orbit"]) == (
        21,
        15,
    )  # integers when all agree
    assert attributes["pairs_without_provenance"] == 1
    assert attributes["process_namespace"] == apex_namespace(COMMIT)
    assert attributes["references"].split() == [
        apex_namespace(COMMIT),
        "https://algorithm-catalogue.apex.esa.int/apps/sentinel1_sar_coherence",
    ]
    assert "contains modified Copernicus Sentinel data 2023" in attributes["license"]
    assert attributes["history"].startswith("2023-07-03 to 2023-07-27: coherence of 3 Sentinel-1 pair(s)")
    assert attributes["source"].endswith("stacked by coherence-assets 0.1.0")
    table_path = tmp_path / "table.parquet"
    table_path.write_bytes(
        parquet_with_provenance(pd.DataFrame({"aoi_id": ["a"]}), {**attributes, "title": "x"})
    )
    metadata = pq.read_schema(table_path).metadata
    assert metadata[b"platform"] == b"sentinel-1a sentinel-1c" and b"title" not in metadata
    assert pd.read_parquet(table_path)["aoi_id"].tolist() == ["a"]  # pandas' own metadata is kept
