"""AOI files: the packaged default, any CRS and format, and every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import Polygon

from coherence_assets.aoi.areas import AoiFileError, aois_outside_footprints, load_areas_of_interest
from coherence_assets.bursts.burst_map import load_burst_catalogue
from coherence_assets.settings import packaged_demo_aoi_file, packaged_demo_bursts_file

SQUARE = shapely.box(11.0, 46.5, 11.01, 46.51)
BOWTIE = Polygon([(11.0, 46.5), (11.01, 46.51), (11.01, 46.5), (11.0, 46.51)])


def write(frame: gpd.GeoDataFrame, path: Path) -> Path:
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_file(path)
    return path


def test_the_packaged_glacier_outlines_lie_in_the_packaged_bursts_and_say_they_are_approximate():
    aois = load_areas_of_interest(packaged_demo_aoi_file())
    raw = gpd.read_file(packaged_demo_aoi_file())

    assert len(aois) >= 3 and aois["aoi_id"].is_unique
    assert raw["approximate"].all() and raw["note"].str.contains("approximate").all()
    assert aois_outside_footprints(aois, load_burst_catalogue(packaged_demo_bursts_file()).geometry) == []


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".parquet"])
def test_every_format_is_read_in_its_own_crs(tmp_path, suffix):
    frame = gpd.GeoDataFrame({"aoi_id": ["a", "b"]}, geometry=[SQUARE, SQUARE.buffer(0.01)], crs=4326)
    path = write(frame.to_crs(32632), tmp_path / f"aois{suffix}")

    aois = load_areas_of_interest(path)

    assert list(aois["aoi_id"]) == ["a", "b"]
    assert aois.crs.to_epsg() == 32632


def test_missing_aoi_id_column_is_named_with_the_columns_found(tmp_path):
    path = write(gpd.GeoDataFrame({"name": ["x"]}, geometry=[SQUARE], crs=4326), tmp_path / "a.geojson")

    with pytest.raises(AoiFileError, match=r"no column 'aoi_id' \(it has name, geometry\)"):
        load_areas_of_interest(path)


def test_every_problem_is_reported_at_once_with_its_rows(tmp_path):
    frame = gpd.GeoDataFrame(
        {"aoi_id": ["a", "a", "", "d", "e"]},
        geometry=[SQUARE, SQUARE, SQUARE, BOWTIE, shapely.Point(11.0, 46.5)],
        crs=4326,
    )
    path = write(frame, tmp_path / "aois.gpkg")

    with pytest.raises(AoiFileError) as raised:
        load_areas_of_interest(path)

    message = str(raised.value)
    assert f"AOI file {path} has 4 problem(s)" in message
    assert "aoi_id is missing or empty in rows 2" in message
    assert "aoi_id a appear(s) more than once, in rows 0, 1" in message
    assert "missing, empty or invalid in rows 3" in message
    assert "not a Polygon or MultiPolygon in rows 4" in message


def test_unreadable_missing_and_crs_less_files_say_what_to_do(tmp_path):
    garbage = tmp_path / "aois.geojson"
    garbage.write_text("not json")
    no_crs = write(gpd.GeoDataFrame({"aoi_id": ["a"]}, geometry=[SQUARE]), tmp_path / "no_crs.parquet")

    with pytest.raises(AoiFileError, match="is not a readable geospatial file"):
        load_areas_of_interest(garbage)
    with pytest.raises(AoiFileError, match="does not exist: set COHERENCE_AOI_FILE"):
        load_areas_of_interest(tmp_path / "missing.gpkg")
    with pytest.raises(AoiFileError, match="has no coordinate reference system"):
        load_areas_of_interest(no_crs)
