"""bursts-for-aoi: the bursts that image an AOI, as CDSE's geographic query finds them, as a burst file we read."""

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import shape

from coherence_assets.aoi.aoi_bursts import (
    NoBurstError,
    bursts_for_aois,
    covered_fraction,
    last_full_quarter,
    split_at_antimeridian,
    write_burst_file,
)
from coherence_assets.aoi.areas import load_areas_of_interest
from coherence_assets.bursts.burst_map import read_burst_map
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.settings import packaged_demo_aoi_file
from coherence_assets_tests.conftest import LiveBackend, start_backend

WINDOW = "2023-07-01"
FIRST = dt.datetime(2023, 7, 1, tzinfo=dt.UTC)
LAST = dt.datetime(2023, 9, 30, 23, 59, 59, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BurstCatalogueClient]:
    backend: LiveBackend
    for backend in start_backend(tmp_path_factory.mktemp("backend")):
        yield BurstCatalogueClient(backend.catalogue_url)


def brute_force(catalogue: BurstCatalogueClient, area: shapely.Geometry, orbit: str = "both") -> set[tuple]:
    """Oracle: every record of the AOI's bounding box, intersected with the AOI here, not by the catalogue."""
    keys = set()
    for part in getattr(area, "geoms", [area]):
        for record in catalogue.search_area(shapely.to_wkt(part.envelope), FIRST, LAST):
            footprint = split_at_antimeridian(shape(record.footprint))
            if (
                record.subswath.startswith("IW")
                and (orbit == "both" or record.orbit_direction.lower() == orbit)
                and covered_fraction(area, footprint) > 0
            ):
                keys.add((record.relative_orbit, record.burst_id, record.subswath))
    return keys


def selected(bursts: gpd.GeoDataFrame) -> set[tuple]:
    return set(zip(bursts.relative_orbit_number, bursts.burst_id, bursts.subswath_name, strict=True))


AOIS = {
    # another continent: the Andes near Aconcagua
    "andes": gpd.GeoSeries([shapely.box(-70.1, -33.1, -69.9, -32.9)], crs=4326),
    # Taveuni (Fiji), which the antimeridian crosses, drawn in a projected CRS centred on 180
    "taveuni": gpd.GeoSeries(
        [shapely.Polygon([(179.85, -16.95), (-179.85, -16.95), (-179.85, -16.75), (179.85, -16.75)])],
        crs=4326,
    ).to_crs("+proj=laea +lat_0=-16.8 +lon_0=180 +datum=WGS84"),
    # a polygon in a projected CRS (UTM 33N) over the Dachstein
    "dachstein": gpd.GeoSeries([shapely.box(13.58, 47.46, 13.66, 47.50)], crs=4326).to_crs(32633),
}


@pytest.mark.parametrize("name", sorted(AOIS))
def test_the_bursts_of_an_aoi_anywhere_equal_a_brute_force_intersection_of_the_catalogues_footprints(
    catalogue: BurstCatalogueClient, name: str
):
    aois = gpd.GeoDataFrame({"aoi_id": [name]}, geometry=AOIS[name].geometry)

    found = bursts_for_aois(aois, catalogue, WINDOW)

    area = split_at_antimeridian(aois.to_crs(4326).geometry.iloc[0])
    assert selected(found.bursts) == brute_force(catalogue, area)
    assert len(found.bursts) >= 2 and (found.bursts["aoi_ids"] == name).all()
    assert set(found.bursts["orbit_direction"]) == {"ASCENDING", "DESCENDING"}
    coverage = found.bursts["aoi_coverage"].astype(float)
    assert coverage.between(0, 1).all() and coverage.max() > 0.1


def test_the_packaged_glaciers_get_their_bursts_with_the_aois_and_coverage_each_serves(
    catalogue: BurstCatalogueClient, tmp_path: Path
):
    aois = load_areas_of_interest(packaged_demo_aoi_file())

    found = bursts_for_aois(aois, catalogue, WINDOW, orbit="ascending")

    oracle = set().union(*(brute_force(catalogue, area, "ascending") for area in aois.to_crs(4326).geometry))
    assert selected(found.bursts) == oracle
    assert set(found.bursts["orbit_direction"]) == {"ASCENDING"}
    served = {aoi for ids in found.bursts["aoi_ids"] for aoi in ids.split(",")}
    assert served == set(aois["aoi_id"]) and found.aois_without_bursts == []
    for row in found.bursts.itertuples():
        for aoi_id, fraction in zip(row.aoi_ids.split(","), row.aoi_coverage.split(","), strict=True):
            area = aois.to_crs(4326).set_index("aoi_id").geometry[aoi_id]
            assert float(fraction) == pytest.approx(covered_fraction(area, row.geometry), abs=1e-4)
    # the file is a burst map the project reads, in each of its formats
    for suffix in (".geojson", ".gpkg", ".parquet"):
        write_burst_file(found.bursts, tmp_path / f"bursts{suffix}")
        assert len(read_burst_map(tmp_path / f"bursts{suffix}")) == len(found.bursts)


def test_the_share_an_aoi_is_covered_is_measured_on_the_ground_across_the_antimeridian():
    aoi = split_at_antimeridian(
        shapely.Polygon([(179.9, -17.0), (-179.9, -17.0), (-179.9, -16.8), (179.9, -16.8)])
    )
    east_half = shapely.box(-180.0, -17.0, -179.9, -16.8)

    assert aoi.geom_type == "MultiPolygon" and aoi.bounds[0] == -180.0 and aoi.bounds[2] == 180.0
    assert covered_fraction(aoi, east_half) == pytest.approx(0.5, abs=0.01)
    assert covered_fraction(aoi, shapely.box(10, 10, 11, 11)) == 0.0


def test_the_default_window_is_the_last_full_quarter():
    assert last_full_quarter(dt.date(2026, 12, 3)) == "2026-07-01"
    assert last_full_quarter(dt.date(2026, 1, 1)) == "2025-10-01"


def test_an_aoi_over_the_open_ocean_is_one_line_naming_it(catalogue: BurstCatalogueClient):
    pacific = gpd.GeoDataFrame(
        {"aoi_id": ["south_pacific"]}, geometry=[shapely.box(-140.1, -30.1, -139.9, -29.9)], crs=4326
    )

    with pytest.raises(NoBurstError) as raised:
        bursts_for_aois(pacific, catalogue, WINDOW)

    message = str(raised.value)
    assert "\n" not in message
    assert "no Sentinel-1 IW burst images AOI(s) south_pacific in the quarter 2023-07-01" in message
    assert "open ocean" in message


@pytest.mark.slow
def test_the_command_writes_a_burst_file_the_demo_can_use(tmp_path: Path, backend: LiveBackend):
    from coherence_assets_tests.test_cli import run_cli

    aois = tmp_path / "aois.geojson"
    gpd.GeoDataFrame(
        {"aoi_id": ["andes", "south_pacific"]},
        geometry=[shapely.box(-70.1, -33.1, -69.9, -32.9), shapely.box(-140.1, -30.1, -139.9, -29.9)],
        crs=4326,
    ).to_file(aois)
    env = {"OPENEO_BACKEND_URL": backend.url, "COHERENCE_CATALOGUE_URL": backend.catalogue_url}

    completed = run_cli(
        "bursts-for-aoi",
        str(aois),
        "--output",
        str(tmp_path / "out.gpkg"),
        "--window",
        WINDOW,
        "--orbit",
        "descending",
        cwd=tmp_path,
        env=env,
    )

    assert completed.returncode == 0, completed.stderr
    bursts = read_burst_map(tmp_path / "out.gpkg")
    assert len(bursts) >= 1
    assert f"image 1 of 2 AOI(s) in window {WINDOW}" in completed.stdout
    assert f"COHERENCE_BURSTS_FILE={tmp_path / 'out.gpkg'}" in completed.stdout
    assert completed.stderr.strip().splitlines()[-1] == f"no burst images AOI(s) south_pacific in {WINDOW}"
    ocean_only = run_cli(
        "bursts-for-aoi",
        str(aois),
        "--output",
        str(tmp_path / "none.gpkg"),
        "--window",
        "2999-01-01",
        cwd=tmp_path,
        env=env,
    )
    assert ocean_only.returncode == 2 and "has not begun yet" in ocean_only.stderr
