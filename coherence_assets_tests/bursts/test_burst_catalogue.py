"""The burst_catalogue step without Dagster: a burst file on disk in, a GeoParquet in a real data dir out."""

from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Polygon

from coherence_assets.bursts.burst_catalogue import store_burst_catalogue
from coherence_assets.bursts.burst_map import BurstMapError
from coherence_assets.storage import DataStore

SQUARE = Polygon([(10.5, 46.5), (10.7, 46.5), (10.7, 46.6), (10.5, 46.6)])


def write_bursts(path: Path, rows: list[tuple[int, str, int]]) -> str:
    """A GeoJSON burst map with a row per (burst id, subswath, relative orbit)."""
    frame = gpd.GeoDataFrame(
        [
            {"burst_id": burst_id, "subswath_name": subswath, "relative_orbit_number": orbit}
            for burst_id, subswath, orbit in rows
        ],
        geometry=[SQUARE] * len(rows),
        crs="EPSG:4326",
    )
    frame.to_file(path, driver="GeoJSON")
    return str(path)


def test_the_map_is_stored_as_geoparquet_and_versioned_by_the_files_content(tmp_path: Path):
    store = DataStore(str(tmp_path / "data"))
    source = write_bursts(tmp_path / "bursts.geojson", [(30344, "IW2", 15), (30343, "IW2", 117)])

    stored = store_burst_catalogue(store, source)

    written = gpd.read_parquet(stored.path)
    assert list(written["burst"]) == stored.burst_keys == ["t015_030344_iw2", "t117_030343_iw2"]
    assert written.crs.to_epsg() == 4326
    assert stored.orbit_warnings == ["t117_030343_iw2"]  # burst 30343 lies on orbit 15
    copy = tmp_path / "copy.geojson"
    copy.write_bytes(Path(source).read_bytes())
    assert store_burst_catalogue(store, str(copy)).version == stored.version
    edited = write_bursts(tmp_path / "bursts.geojson", [(30344, "IW2", 15)])
    assert store_burst_catalogue(store, edited).version != stored.version


def test_a_bad_map_raises_and_leaves_the_stored_catalogue_as_it_was(tmp_path: Path):
    store = DataStore(str(tmp_path / "data"))
    good = store_burst_catalogue(store, write_bursts(tmp_path / "good.geojson", [(30343, "IW2", 15)]))
    before = Path(good.path).read_bytes()

    with pytest.raises(BurstMapError, match="subswath_name is not one of IW1, IW2, IW3"):
        store_burst_catalogue(store, write_bursts(tmp_path / "bad.geojson", [(30343, "IW7", 15)]))

    assert Path(good.path).read_bytes() == before
