"""Every way a burst file can be wrong gets its own clear message."""

import json
import logging

import geopandas as gpd
import pytest
from shapely.geometry import Polygon

from coherence_assets.bursts.burst_map import BurstMapError, load_burst_catalogue
from coherence_assets.settings import packaged_demo_bursts_file

SQUARE = Polygon([(10.5, 46.5), (10.7, 46.5), (10.7, 46.6), (10.5, 46.6)])


def write_bursts(path, rows, crs="EPSG:4326"):
    frame = gpd.GeoDataFrame(rows, geometry=[row.pop("geometry", SQUARE) for row in rows], crs=crs)
    frame.to_file(path, driver="GPKG" if path.suffix == ".gpkg" else "GeoJSON")
    return path


def row(burst_id=30343, subswath="IW2", orbit=15, **extra):
    return {"burst_id": burst_id, "subswath_name": subswath, "relative_orbit_number": orbit, **extra}


def test_packaged_demo_file_holds_burst_30343_on_both_tracks():
    catalogue = load_burst_catalogue(packaged_demo_bursts_file())
    assert "t015_030343_iw2" in set(catalogue["burst"])
    assert {15, 168} <= set(catalogue["relative_orbit_number"])
    assert catalogue.crs.to_epsg() == 4326
    assert catalogue["burst"].is_unique


def test_geopackage_in_utm_is_reprojected_to_wgs84(tmp_path):
    utm = gpd.GeoSeries([SQUARE], crs="EPSG:4326").to_crs("EPSG:32632").iloc[0]
    path = write_bursts(tmp_path / "bursts.gpkg", [row(geometry=utm)], crs="EPSG:32632")
    catalogue = load_burst_catalogue(path)
    assert catalogue.crs.to_epsg() == 4326
    assert catalogue.geometry.iloc[0].bounds == pytest.approx(SQUARE.bounds, abs=1e-6)


def test_utm_metres_in_a_file_that_says_wgs84_are_refused_naming_the_file_and_rows(tmp_path):
    """GeoJSON carries no CRS of its own: an export in UTM metres is read as EPSG:4326."""
    utm = gpd.GeoSeries([SQUARE], crs="EPSG:4326").to_crs("EPSG:32632").iloc[0]
    rows = [row(), row(burst_id=30344, geometry=utm), row(burst_id=30345, geometry=utm)]
    path = write_bursts(tmp_path / "bursts.geojson", rows, crs="EPSG:4326")
    with pytest.raises(BurstMapError) as refused:
        load_burst_catalogue(path)
    message = str(refused.value)
    assert f"burst file {path} has 1 problem(s)" in message
    assert "cannot be longitude/latitude in degrees although the file says EPSG:4326" in message
    assert "in rows 1, 2;" in message
    assert f"x={utm.bounds[0]:.6g}" in message


def test_geoparquet_is_read(tmp_path):
    path = tmp_path / "bursts.parquet"
    gpd.GeoDataFrame([row()], geometry=[SQUARE], crs="EPSG:4326").to_parquet(path)
    assert list(load_burst_catalogue(path)["burst"]) == ["t015_030343_iw2"]


def test_missing_file_says_which_variable_to_set(tmp_path):
    with pytest.raises(BurstMapError, match=r"does not exist.*COHERENCE_BURSTS_FILE"):
        load_burst_catalogue(tmp_path / "nope.geojson")


def test_non_geospatial_file_is_named(tmp_path):
    path = tmp_path / "bursts.geojson"
    path.write_text("burst_id,subswath\n1,IW1\n")
    with pytest.raises(BurstMapError, match="not a readable geospatial file"):
        load_burst_catalogue(path)


def test_empty_file_gets_its_own_message(tmp_path):
    path = tmp_path / "bursts.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(BurstMapError, match="has no rows"):
        load_burst_catalogue(path)


def test_missing_columns_are_listed(tmp_path):
    path = write_bursts(tmp_path / "bursts.geojson", [{"burst": 30343}])
    with pytest.raises(
        BurstMapError, match=r"lacks the column.*burst_id, subswath_name, relative_orbit_number"
    ):
        load_burst_catalogue(path)


def test_every_bad_row_is_reported_in_one_error(tmp_path):
    rows = [
        row(),
        row(burst_id="abc"),
        row(burst_id=1.5),
        row(subswath="IW4"),
        row(orbit=0),
        row(orbit=176),
        row(burst_id=30344, geometry=Polygon()),
        row(burst_id=30345, geometry=Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])),  # self-intersecting
        row(),  # duplicate of row 0
    ]
    path = write_bursts(tmp_path / "bursts.geojson", rows)
    with pytest.raises(BurstMapError) as raised:
        load_burst_catalogue(path)
    message = str(raised.value)
    assert "burst_id is not a positive integer in rows 1, 2" in message
    assert "subswath_name is not one of IW1" in message and "rows 3" in message
    assert "relative_orbit_number is not an integer from 1 to 175 in rows 4, 5" in message
    assert "geometry is missing, empty or invalid in rows 6, 7" in message
    assert "t015_030343_iw2 appear more than once, in rows 0, 8" in message


def test_swapped_orbit_and_id_warn_but_pass(tmp_path, caplog):
    path = write_bursts(tmp_path / "bursts.geojson", [row(orbit=117)])
    with caplog.at_level(logging.WARNING):
        catalogue = load_burst_catalogue(path)
    assert list(catalogue["burst"]) == ["t117_030343_iw2"]
    assert "lies on relative orbit 15 but the row says 117" in caplog.text


def test_lowercase_subswath_is_normalised(tmp_path):
    path = write_bursts(tmp_path / "bursts.geojson", [row(subswath=" iw3 ")])
    assert list(load_burst_catalogue(path)["subswath_name"]) == ["IW3"]


def test_an_ew_row_is_checked_against_the_ew_burst_cycle(tmp_path, caplog):
    """ASF's published EW5 burst 308684 lies on orbit 159; an id past the EW cycle's end is refused."""
    published = write_bursts(tmp_path / "ew.geojson", [row(burst_id=308684, subswath="EW5", orbit=159)])
    with caplog.at_level(logging.WARNING):
        assert list(load_burst_catalogue(published)["burst"]) == ["t159_308684_ew5"]
    assert not caplog.records

    beyond = write_bursts(tmp_path / "beyond.geojson", [row(burst_id=350000, subswath="EW1", orbit=175)])
    with pytest.raises(
        BurstMapError,
        match=r"beyond the last burst of its mode's 12-day cycle \(IW 375887, EW 341235\) in rows 0",
    ):
        load_burst_catalogue(beyond)
