"""Where each burst lies on the ground, for the catalogue's footprints and the synthetic scenes.

Bursts in the configured burst map keep their mapped polygon. Any other valid burst id gets a
deterministic synthetic footprint (20 km along track x 80 km across) placed on a circular
Sentinel-1 ground track at the orbit position its id implies, so the catalogue can answer for
every burst in the world without shipping ESA's 1.5 million-row burst map.
"""

from __future__ import annotations

import logging
import math
from functools import cache, lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
import shapely.affinity
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon

from coherence_assets.cdse_facts import (
    BURST_TIMING,
    IW_SUBSWATHS,
    ORBIT_PERIOD_SECONDS,
    orbit_position_of_burst_id,
    relative_orbit_of_burst_id,
)
from embedded_openeo.land_mask import touches_land

logger = logging.getLogger(__name__)

BURST_MAP_COLUMNS = ("burst_id", "subswath_name", "relative_orbit_number", "geometry")
INCLINATION_DEGREES = 98.18
# Longitude of relative orbit 1's ascending node, fitted so that synthetic footprints of the
# packaged South Tyrol bursts fall within about a degree of their mapped polygons.
ANX_LONGITUDE_ORBIT_1 = 1.32
GROUND_TRACK_SHIFT_PER_ORBIT = 360.0 * ORBIT_PERIOD_SECONDS / 86400.0
EARTH_ROTATION_DEGREES_PER_SECOND = 360.0 / 86400.0
WGS84_ECCENTRICITY_SQUARED = 0.00669438
BURST_LENGTH_M = 20_000.0
SUBSWATH_WIDTH_M = 80_000.0
# Sentinel-1 looks right; these are the ground distances from nadir to each subswath's centre.
SUBSWATH_CENTRE_FROM_NADIR_M = {"IW1": 440_000.0, "IW2": 520_000.0, "IW3": 600_000.0}
_GEOD = Geod(ellps="WGS84")
MAX_IW_BURST_ID = BURST_TIMING["IW"].max_burst_id


def is_valid_burst(burst_id: int, subswath: str) -> bool:
    """True for the IW bursts the archive holds: a burst id of ESA's map and an IW subswath."""
    return 1 <= burst_id <= MAX_IW_BURST_ID and subswath in IW_SUBSWATHS


class BurstRegistry:
    """Footprints (EPSG:4326 polygons) of bursts, keyed by burst id and subswath."""

    def __init__(self, mapped: dict[tuple[int, str], Polygon]) -> None:
        self._mapped = mapped

    @classmethod
    def from_file(cls, path: Path | None) -> BurstRegistry:
        """Read a burst map (GeoJSON, GeoPackage or GeoParquet); ``None`` maps nothing.

        Rows whose ``relative_orbit_number`` differs from the orbit their burst id implies are
        skipped: a burst id exists only on that orbit.
        """
        if path is None:
            return cls({})
        frame = gpd.read_parquet(path) if Path(path).suffix == ".parquet" else gpd.read_file(path)
        missing = [column for column in BURST_MAP_COLUMNS if column not in frame.columns]
        if missing:
            raise ValueError(f"burst map {path} lacks columns {missing}; it needs {list(BURST_MAP_COLUMNS)}")
        if frame.crs is not None and frame.crs.to_epsg() != 4326:
            frame = frame.to_crs(4326)
        mapped: dict[tuple[int, str], Polygon] = {}
        for row in frame.itertuples(index=False):
            burst_id, subswath = int(row.burst_id), str(row.subswath_name).upper()
            try:
                implied_orbit = relative_orbit_of_burst_id(burst_id, subswath)
            except ValueError as error:
                logger.warning(
                    "burst map %s: row of burst %d %s skipped: %s", path, burst_id, subswath, error
                )
                continue
            if int(row.relative_orbit_number) != implied_orbit:
                logger.warning(
                    "burst map %s: burst %d %s is on relative orbit %d, not %d as its id implies; skipped",
                    path,
                    burst_id,
                    subswath,
                    row.relative_orbit_number,
                    implied_orbit,
                )
                continue
            mapped[(burst_id, subswath)] = row.geometry
        logger.info("burst registry loaded %d mapped bursts from %s", len(mapped), path)
        return cls(mapped)

    def footprint(self, burst_id: int, subswath: str) -> Polygon | MultiPolygon:
        """The mapped polygon of the burst, else its synthetic footprint."""
        if not is_valid_burst(burst_id, subswath):
            raise ValueError(
                f"no IW burst {burst_id} {subswath!r}: ids run from 1 to {MAX_IW_BURST_ID}, "
                f"subswaths are {IW_SUBSWATHS}"
            )
        mapped = self._mapped.get((burst_id, subswath))
        return mapped if mapped is not None else synthetic_footprint(burst_id, subswath)

    def is_acquired(self, burst_id: int, subswath: str) -> bool:
        """Whether the archive holds the burst: mapped bursts always, others where they touch land."""
        return (burst_id, subswath) in self._mapped or _synthetic_touches_land(burst_id, subswath)

    def bursts_intersecting(self, area: shapely.Geometry) -> list[tuple[int, str]]:
        """Every IW burst (id, subswath) whose footprint intersects ``area`` (EPSG:4326), sorted.

        Synthetic footprints are found from every burst's centre, computed once for the whole world
        (vectorised), then tested exactly; mapped bursts are tested on their mapped polygon.
        """
        found = {key for key, polygon in self._mapped.items() if polygon.intersects(area)}
        # part by part: the bounding box of parts on two continents would hold half the world's bursts
        for part in shapely.get_parts(area):
            for burst_id, subswath in _synthetic_candidates(part):
                if (burst_id, subswath) not in self._mapped and synthetic_footprint(
                    burst_id, subswath
                ).intersects(part):
                    found.add((burst_id, subswath))
        return sorted(found)


@lru_cache(maxsize=65536)
def _synthetic_touches_land(burst_id: int, subswath: str) -> bool:
    return touches_land(synthetic_footprint(burst_id, subswath))


@lru_cache(maxsize=4096)
def synthetic_footprint(burst_id: int, subswath: str) -> Polygon | MultiPolygon:
    """A 20 km x 80 km quadrilateral beside the ground track, where the burst's orbit position puts it."""
    relative_orbit, orbit_fraction = orbit_position_of_burst_id(burst_id, subswath)
    nadir_lon, nadir_lat = _nadir(relative_orbit, orbit_fraction)
    ahead_lon, ahead_lat = _nadir(relative_orbit, orbit_fraction + 1e-4)
    heading, _, _ = _GEOD.inv(nadir_lon, nadir_lat, ahead_lon, ahead_lat)
    from_nadir = SUBSWATH_CENTRE_FROM_NADIR_M[subswath]
    centre_lon, centre_lat, _ = _GEOD.fwd(nadir_lon, nadir_lat, heading + 90.0, from_nadir)
    corners = []
    for along, across in ((-1, -1), (-1, 1), (1, 1), (1, -1)):
        lon, lat, _ = _GEOD.fwd(centre_lon, centre_lat, heading, along * BURST_LENGTH_M / 2)
        lon, lat, _ = _GEOD.fwd(lon, lat, heading + 90.0, across * SUBSWATH_WIDTH_M / 2)
        corners.append((round(lon, 6), round(lat, 6)))
    return _split_at_antimeridian(Polygon(corners))


def _split_at_antimeridian(footprint: Polygon) -> Polygon | MultiPolygon:
    """A footprint across ±180° as its two parts, as CDSE's catalogue writes such footprints.

    Read as one ring, its corners at +179.9° and -179.9° would enclose the rest of the world instead.
    """
    west, _, east, _ = footprint.bounds
    if east - west <= 180.0:
        return footprint
    shifted = shapely.transform(footprint, lambda xy: xy + [[360.0, 0.0]] * (xy[:, :1] < 0))
    inside = shifted.intersection(shapely.box(-180.0, -90.0, 180.0, 90.0))
    beyond = shapely.affinity.translate(shifted.intersection(shapely.box(180.0, -90.0, 540.0, 90.0)), -360.0)
    return MultiPolygon([inside, beyond])


def _nadir(relative_orbit: int, orbit_fraction: float) -> tuple[float, float]:
    """Sub-satellite point (lon, geodetic lat) of a circular sun-synchronous orbit."""
    lon, lat = _nadir_arrays(np.asarray(relative_orbit), np.asarray(orbit_fraction))
    return float(lon), float(lat)


def _nadir_arrays(relative_orbit: np.ndarray, orbit_fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_nadir` for arrays of orbit positions, so the whole world's bursts take one call."""
    argument_of_latitude = 2.0 * np.pi * orbit_fraction
    inclination = math.radians(INCLINATION_DEGREES)
    geocentric_lat = np.arcsin(math.sin(inclination) * np.sin(argument_of_latitude))
    lat = np.degrees(np.arctan(np.tan(geocentric_lat) / (1.0 - WGS84_ECCENTRICITY_SQUARED)))
    lon = (
        ANX_LONGITUDE_ORBIT_1
        - (relative_orbit - 1) * GROUND_TRACK_SHIFT_PER_ORBIT
        + np.degrees(
            np.arctan2(math.cos(inclination) * np.sin(argument_of_latitude), np.cos(argument_of_latitude))
        )
        - EARTH_ROTATION_DEGREES_PER_SECOND * orbit_fraction * ORBIT_PERIOD_SECONDS
    )
    return (lon + 180.0) % 360.0 - 180.0, lat


# Half the diagonal of a synthetic footprint (41 km) plus slack, in degrees of latitude.
_CANDIDATE_MARGIN_DEGREES = 0.5


@cache
def _synthetic_centres() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Burst ids, subswath indices, centre longitudes and latitudes of every IW burst's synthetic footprint.

    The same construction as :func:`synthetic_footprint`, vectorised: about a million bursts in a second.
    """
    timing = BURST_TIMING["IW"]
    burst_ids = np.arange(1, MAX_IW_BURST_ID + 1)
    seconds_in_cycle = timing.preamble_seconds + (burst_ids - 0.5) * timing.cycle_seconds
    orbit_index, seconds_since_anx = np.divmod(seconds_in_cycle, ORBIT_PERIOD_SECONDS)
    relative_orbit = orbit_index.astype(int) % 175 + 1
    fraction = seconds_since_anx / ORBIT_PERIOD_SECONDS
    nadir_lon, nadir_lat = _nadir_arrays(relative_orbit, fraction)
    ahead_lon, ahead_lat = _nadir_arrays(relative_orbit, fraction + 1e-4)
    heading, _, _ = _GEOD.inv(nadir_lon, nadir_lat, ahead_lon, ahead_lat)
    ids, subswaths, lons, lats = [], [], [], []
    for index, subswath in enumerate(IW_SUBSWATHS):
        distance = np.full(burst_ids.shape, SUBSWATH_CENTRE_FROM_NADIR_M[subswath])
        lon, lat, _ = _GEOD.fwd(nadir_lon, nadir_lat, heading + 90.0, distance)
        ids.append(burst_ids)
        subswaths.append(np.full(burst_ids.shape, index, dtype=np.uint8))
        lons.append(lon)
        lats.append(lat)
    return np.concatenate(ids), np.concatenate(subswaths), np.concatenate(lons), np.concatenate(lats)


def _synthetic_candidates(area: shapely.Geometry) -> list[tuple[int, str]]:
    """Bursts whose synthetic footprint may touch ``area``: centres near its bounding box (longitudes wrap)."""
    burst_ids, subswaths, lons, lats = _synthetic_centres()
    west, south, east, north = area.bounds
    margin = _CANDIDATE_MARGIN_DEGREES
    near = (lats >= south - margin) & (lats <= north + margin)
    lon_margin = margin / np.maximum(np.cos(np.radians(lats[near])), 0.02)
    centre_lon = (west + east) / 2.0
    offset = np.abs((lons[near] - centre_lon + 180.0) % 360.0 - 180.0)
    close = offset <= (east - west) / 2.0 + lon_margin
    indices = np.flatnonzero(near)[close]
    return [(int(burst_ids[i]), IW_SUBSWATHS[subswaths[i]]) for i in indices]
