"""The STAC catalogue of our outputs: valid against the STAC schemas, relative, complete, movable."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, time
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import xarray as xr

from coherence_assets.cube.stacking import find_pair_rasters, stack_coherence_cube
from coherence_assets.jobs.ledger import FINISHED, JobRecord, Ledger
from coherence_assets.jobs.processes import apex_namespace
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.rasters.download import DownloadOutcome
from coherence_assets.rasters.provenance import write_raster_provenance
from coherence_assets.stac.catalogue import write_burst_stac
from coherence_assets.storage import DataStore
from coherence_assets_tests.rasters.geotiffs import ORIGIN, PIXEL_SIZE, SHAPE, write_coherence_tif
from coherence_assets_tests.stac.schema_validation import schema_uris, validate_stac

BURST = "t015_030343_iw2"
OTHER_BURST = "t015_030344_iw2"
JULY = [(date(2023, 7, 3), date(2023, 7, 15)), (date(2023, 7, 15), date(2023, 7, 27))]
OCTOBER = [(date(2023, 10, 1), date(2023, 10, 13))]
COMMIT = "3b16249e9817cafc049836ec273d2c04e08d6969"
# the acquisitions' times as the catalogue states them, to the microsecond
SENSING = {day: datetime.combine(day, time(17, 15, 8, 123456), tzinfo=UTC) for pair in JULY for day in pair}
PLATFORMS = {date(2023, 7, 3): "S1A", date(2023, 7, 15): "S1C", date(2023, 7, 27): "S1A"}


def product(day: date) -> str:
    return f"{PLATFORMS[day]}_IW_SLC__1SDV_{day:%Y%m%d}T171508_{day:%Y%m%d}T171535_049000_05E000_ABCD"


def download_july_with_provenance(store: DataStore, burst: str) -> None:
    """July's rasters as a download pass leaves them: tagged from the pair table and the job ledger."""
    window = "2023-07-01"
    table = pd.DataFrame(
        {
            "burst": burst,
            "reference_date": [reference for reference, _ in JULY],
            "secondary_date": [secondary for _, secondary in JULY],
            "reference_time": pd.to_datetime([SENSING[reference] for reference, _ in JULY], utc=True),
            "secondary_time": pd.to_datetime([SENSING[secondary] for _, secondary in JULY], utc=True),
            "temporal_baseline_days": 12,
            "reference_product": [product(reference) for reference, _ in JULY],
            "secondary_product": [product(secondary) for _, secondary in JULY],
            "orbit_direction": "ASCENDING",
        }
    )
    Path(store.insar_pairs_path(burst, window)).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(store.insar_pairs_path(burst, window), index=False)
    job = JobRecord(
        submission_id="s1",
        title="coherence t015_030343_iw2 2023-07-01 s1",
        process="sentinel1_sar_coherence",
        baseline_days=12,
        pairs=JULY,
        arguments={"polarization": "VH", "coherence_window_rg": 21, "coherence_window_az": 5},
        job_id="j-1",
        status=FINISHED,
        namespace=apex_namespace(COMMIT),
    )
    ledger = Ledger(burst, window, "https://openeo.dataspace.copernicus.eu", [job])
    folder = store.coherence_rasters_dir(burst, window)
    outcomes = [
        DownloadOutcome("href", f"{folder}/{raster_file_name(*pair)}", 1, "downloaded", 1) for pair in JULY
    ]
    write_raster_provenance(store, ledger, outcomes)


def produce(store: DataStore, burst: str, with_provenance: bool = True) -> None:
    """Rasters of two windows (July's with provenance, October's from before it was written), the cube
    and an AOI table, as the chain writes them."""
    for window, pairs in (("2023-07-01", JULY), ("2023-10-01", OCTOBER)):
        folder = Path(store.coherence_rasters_dir(burst, window))
        folder.mkdir(parents=True, exist_ok=True)
        for reference, secondary in pairs:
            write_coherence_tif(folder / raster_file_name(reference, secondary))
    if with_provenance:
        download_july_with_provenance(store, burst)
    rasters = find_pair_rasters(store.fs, store.coherence_rasters_root(burst))
    stack_coherence_cube(store.fs, rasters, store.coherence_cube_path(burst), spatial_chunk=16)
    Path(store.coherence_aoi_series_path(burst)).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"aoi_id": ["a"], "mean": [0.5]}).to_parquet(store.coherence_aoi_series_path(burst))


def stac_documents(data_dir: Path) -> dict[str, dict]:
    return {
        str(path.relative_to(data_dir / "stac")): json.loads(path.read_text())
        for path in sorted((data_dir / "stac").rglob("*.json"))
    }


def all_hrefs(document: dict) -> list[str]:
    """The hrefs within the tree (licences live on the web, by nature)."""
    return [link["href"] for link in document.get("links", []) if link["rel"] != "license"] + [
        asset["href"] for asset in document.get("assets", {}).values()
    ]


def test_every_document_validates_against_the_stac_schemas_of_its_version_and_extensions(tmp_path):
    store = DataStore(str(tmp_path))
    produce(store, BURST)

    summary = write_burst_stac(store, BURST)

    documents = stac_documents(tmp_path)
    assert set(documents) == {
        "catalog.json",
        f"{BURST}/collection.json",
        *(
            f"{BURST}/{BURST}_{r:%Y%m%d}_{s:%Y%m%d}/{BURST}_{r:%Y%m%d}_{s:%Y%m%d}.json"
            for r, s in JULY + OCTOBER
        ),
    }
    for document in documents.values():
        validate_stac(document)
    item = documents[f"{BURST}/{BURST}_20230703_20230715/{BURST}_20230703_20230715.json"]
    assert {uri.rsplit("/", 3)[-3] for uri in schema_uris(item)[1:]} == {
        "projection",
        "sar",
        "sat",
        "processing",
    }
    assert summary.item_count == 3
    assert summary.items_without_polarisation == [f"{BURST}_20231001_20231013"]  # no tags, no band name
    assert summary.items_without_provenance == [f"{BURST}_20231001_20231013"]


def test_items_describe_the_pair_the_burst_the_polarisation_and_the_grid(tmp_path):
    store = DataStore(str(tmp_path))
    produce(store, BURST)

    write_burst_stac(store, BURST)

    item = stac_documents(tmp_path)[f"{BURST}/{BURST}_20230715_20230727/{BURST}_20230715_20230727.json"]
    properties = item["properties"]
    assert properties["datetime"] == properties["start_datetime"] == "2023-07-15T17:15:08.123456Z"
    assert properties["end_datetime"] == "2023-07-27T17:15:08.123456Z"
    assert properties["coherence:secondary_date"] == "2023-07-27"
    assert properties["coherence:temporal_baseline_days"] == 12
    assert properties["coherence:burst"] == BURST
    assert properties["sar:polarizations"] == ["VH"] and properties["sar:instrument_mode"] == "IW"
    assert properties["proj:code"] == "EPSG:32632"
    assert properties["proj:shape"] == list(SHAPE)
    assert properties["proj:transform"] == [PIXEL_SIZE, 0.0, ORIGIN[0], 0.0, -PIXEL_SIZE, ORIGIN[1]]
    west, south, east, north = item["bbox"]
    assert 10.0 < west < east < 10.5 and 46.9 < south < north < 47.0  # 100 km east of 9 E, 5200 km N
    asset = item["assets"]["coherence"]
    assert asset["type"] == pystac.MediaType.GEOTIFF and asset["roles"] == ["data"]


def test_items_say_where_they_came_from_platform_orbit_process_commit_products_and_band(tmp_path):
    store = DataStore(str(tmp_path))
    produce(store, BURST)

    write_burst_stac(store, BURST)

    documents = stac_documents(tmp_path)
    item = documents[f"{BURST}/{BURST}_20230715_20230727/{BURST}_20230715_20230727.json"]
    properties = item["properties"]
    assert properties["platform"] == "sentinel-1c"  # the reference acquisition's satellite
    assert properties["constellation"] == "sentinel-1"
    assert (properties["sat:orbit_state"], properties["sat:relative_orbit"]) == ("ascending", 15)
    assert properties["coherence:reference_product"] == product(date(2023, 7, 15))
    assert properties["coherence:secondary_product"] == product(date(2023, 7, 27))
    assert properties["processing:software"] == {
        "sentinel1_sar_coherence": COMMIT,
        "coherence-assets": "0.1.0",
    }
    lineage = properties["processing:lineage"]
    for fact in (apex_namespace(COMMIT), "VH", "21 x 5", "j-1", "https://openeo.dataspace.copernicus.eu"):
        assert fact in lineage
    assert item["assets"]["coherence"]["bands"] == [
        {"name": "coherence", "nodata": "nan", "data_type": "float32", "unit": "1"}
    ]
    collection = documents[f"{BURST}/collection.json"]
    assert collection["license"] == "Apache-2.0"
    licences = [link["href"] for link in collection["links"] if link["rel"] == "license"]
    assert licences == [
        "https://www.apache.org/licenses/LICENSE-2.0",
        "https://sentinels.copernicus.eu/documents/247904/690755/Sentinel_Data_Legal_Notice",
    ]
    # the collection's interval runs from the first acquisition's time, not midnight
    assert collection["extent"]["temporal"]["interval"] == [
        ["2023-07-03T17:15:08.123456Z", "2023-10-13T00:00:00Z"]
    ]
    assert datetime.fromisoformat(properties["datetime"]) == SENSING[date(2023, 7, 15)]


def test_the_tree_moves_and_pystac_finds_every_raster_and_the_cube_through_relative_hrefs(tmp_path):
    store = DataStore(str(tmp_path / "data"))
    produce(store, BURST)
    write_burst_stac(store, BURST)
    shutil.move(tmp_path / "data", tmp_path / "moved")

    for document in stac_documents(tmp_path / "moved").values():
        assert not [href for href in all_hrefs(document) if href.startswith("/") or "://" in href]
    catalog = pystac.Catalog.from_file(str(tmp_path / "moved" / "stac" / "catalog.json"))
    (collection,) = catalog.get_children()
    items = list(collection.get_items())
    assert sorted(item.properties["start_datetime"][:10] for item in items) == [
        "2023-07-03",
        "2023-07-15",
        "2023-10-01",
    ]
    for item in items:
        with rasterio.open(item.assets["coherence"].get_absolute_href()) as source:
            assert source.shape == SHAPE
    cube_asset = collection.assets["cube"]
    assert cube_asset.media_type == "application/vnd+zarr"
    cube = xr.open_zarr(cube_asset.get_absolute_href(), decode_timedelta=False)
    assert cube.sizes["time"] == len(items)
    aoi_asset = collection.assets["aoi_series"]
    assert pd.read_parquet(aoi_asset.get_absolute_href())["aoi_id"].tolist() == ["a"]


def test_each_burst_adds_its_collection_and_a_rewrite_drops_items_of_rasters_that_are_gone(tmp_path):
    store = DataStore(str(tmp_path))
    produce(store, BURST)
    produce(store, OTHER_BURST, with_provenance=False)
    write_burst_stac(store, BURST)
    write_burst_stac(store, OTHER_BURST)
    october = Path(store.coherence_rasters_dir(BURST, "2023-10-01"))
    shutil.rmtree(october)

    write_burst_stac(store, BURST)

    catalog = pystac.Catalog.from_file(str(tmp_path / "stac" / "catalog.json"))
    children = {child.id: child for child in catalog.get_children()}
    assert set(children) == {BURST, OTHER_BURST}
    assert len(list(children[BURST].get_items())) == 2
    assert len(list(children[OTHER_BURST].get_items())) == 3
    assert not (tmp_path / "stac" / BURST / f"{BURST}_20231001_20231013").exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("proj:code", 32632),
        ("sar:polarizations", ["XX"]),
        ("end_datetime", "yesterday"),
        ("sat:orbit_state", "ASCENDING"),
        ("processing:software", "coherence-assets"),
    ],
)
def test_the_validation_rejects_what_the_schemas_forbid(tmp_path, field, value):
    store = DataStore(str(tmp_path))
    produce(store, BURST)
    write_burst_stac(store, BURST)
    path = tmp_path / "stac" / BURST / f"{BURST}_20230703_20230715" / f"{BURST}_20230703_20230715.json"
    item = json.loads(path.read_text())
    item["properties"][field] = value

    with pytest.raises(jsonschema.ValidationError):
        validate_stac(item)


def test_a_document_naming_a_schema_that_is_not_vendored_fails_instead_of_fetching_it():
    item = {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": ["https://example.org/x/v1.0.0/schema.json"],
    }

    with pytest.raises(Exception, match=r"example\.org"):
        validate_stac(item)


def test_a_data_folder_given_as_a_url_gets_the_same_relative_catalogue(tmp_path):
    # an fsspec URL takes the path object stores (s3://bucket/prefix) take: hrefs are URLs, then relative
    produce(DataStore(str(tmp_path / "plain")), BURST)
    shutil.copytree(tmp_path / "plain", tmp_path / "url")
    write_burst_stac(DataStore(str(tmp_path / "plain")), BURST)

    write_burst_stac(DataStore((tmp_path / "url").as_uri()), BURST)

    assert stac_documents(tmp_path / "url") == stac_documents(tmp_path / "plain")


def test_odc_stac_loads_the_items_on_the_rasters_own_grid(tmp_path):
    odc_stac = pytest.importorskip("odc.stac")  # a test extra: `pip install -e ".[test]"`
    store = DataStore(str(tmp_path))
    produce(store, BURST)
    write_burst_stac(store, BURST)
    items = list(pystac.Catalog.from_file(str(tmp_path / "stac" / "catalog.json")).get_items(recursive=True))

    loaded = odc_stac.load(items, bands=["coherence"], groupby="id")

    assert loaded.odc.geobox.crs.epsg == 32632
    assert tuple(loaded.odc.geobox.affine)[:6] == (PIXEL_SIZE, 0.0, ORIGIN[0], 0.0, -PIXEL_SIZE, ORIGIN[1])
    for item in items:
        with rasterio.open(item.assets["coherence"].get_absolute_href()) as source:
            expected = source.read(1)
        layer = loaded.coherence.sel(time=np.datetime64(item.datetime.replace(tzinfo=None))).values
        np.testing.assert_array_equal(layer, expected)
