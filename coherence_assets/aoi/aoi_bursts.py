"""The bursts that image an area of interest, found in the burst catalogue by CDSE's geographic query.

Users used to download ESA's burst ID map (1.5 million rows) and intersect it with their area in
a GIS. The ``Bursts`` catalogue answers ``OData.CSC.Intersects`` directly: one query per AOI for
one quarter (every burst that images land is acquired several times in any quarter), paged.
Each burst keeps the footprint of its latest record, and the share of each AOI it covers is
measured in an equal-area projection centred on the AOI, so it is right at any latitude and
across the antimeridian. Every intersecting burst is kept, from both orbit directions unless
one is asked for: bursts of one track overlap by a few kilometres, and a smaller set chosen to
cover an AOI once would drop the overlap that keeps an AOI on a burst edge whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import geopandas as gpd
import shapely
from shapely import affinity
from shapely.geometry import shape

from coherence_assets.aoi.areas import AOI_ID
from coherence_assets.catalogue.odata_client import BurstAcquisition, BurstCatalogueClient
from coherence_assets.geofiles import GEOPARQUET_SUFFIXES
from coherence_assets.windows import window_key_of, window_last_day

Orbit = Literal["ascending", "descending", "both"]
ORBITS: tuple[Orbit, ...] = ("ascending", "descending", "both")
BURST_FILE_COLUMNS = (
    "burst_id",
    "subswath_name",
    "relative_orbit_number",
    "orbit_direction",
    "aoi_ids",
    "aoi_coverage",
    "geometry",
)
# CDSE serves OData queries by GET: an AOI drawn with thousands of vertices is asked for by its
# convex hull (a superset), and the catalogue's answer is then intersected with the AOI itself.
MAX_QUERY_WKT_CHARACTERS = 2000
_WORLD = shapely.box(-180.0, -90.0, 180.0, 90.0)


class NoBurstError(ValueError):
    """No IW burst images the AOIs in the window; the message is the one line to print."""


@dataclass(frozen=True)
class AoiBursts:
    """The burst file's rows, and the AOIs no burst images (reported, not silently dropped)."""

    bursts: gpd.GeoDataFrame
    window: str
    aois_without_bursts: list[str]


def last_full_quarter(today: dt.date) -> str:
    """The window key of the quarter before the one that holds ``today``."""
    current = dt.date.fromisoformat(window_key_of(today))
    return window_key_of(current - dt.timedelta(days=1))


def bursts_for_aois(
    aois: gpd.GeoDataFrame, client: BurstCatalogueClient, window: str, orbit: Orbit = "both"
) -> AoiBursts:
    """Every IW burst whose footprint intersects an AOI in the quarter starting ``window``.

    Parameters
    ----------
    aois
        ``aoi_id`` and polygons in any CRS (as :func:`coherence_assets.aoi.areas.load_areas_of_interest` gives).
    window
        First day of a quarter (``YYYY-MM-DD``); its records are searched.
    orbit
        Keep ``ascending`` or ``descending`` bursts only, or ``both``.
    """
    if orbit not in ORBITS:
        raise ValueError(f"orbit must be one of {', '.join(ORBITS)}, got {orbit!r}")
    start = dt.date.fromisoformat(window)
    first = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    last = dt.datetime.combine(window_last_day(start), dt.time.max, tzinfo=dt.UTC)
    footprints: dict[tuple[int, int, str], BurstAcquisition] = {}
    served: dict[tuple[int, int, str], dict[str, float]] = {}
    without: list[str] = []
    for aoi_id, area in zip(aois[AOI_ID], geographic_areas(aois), strict=True):
        records = _wanted(client.search_area(query_wkt(area), first, last), orbit)
        latest = {_key(record): record for record in records}  # records come oldest first
        coverage = {
            key: fraction
            for key, record in latest.items()
            if (fraction := covered_fraction(area, shape(record.footprint))) > 0
        }
        if not coverage:
            without.append(str(aoi_id))
        for key, fraction in coverage.items():
            footprints[key] = latest[key]
            served.setdefault(key, {})[str(aoi_id)] = fraction
    if not footprints:
        raise NoBurstError(
            f"no Sentinel-1 IW burst images AOI(s) {', '.join(without)} in the quarter {window} "
            f"({orbit} orbits): is the AOI over open ocean, or its CRS wrong? Try another --window or --orbit both"
        )
    return AoiBursts(_burst_table(footprints, served), window, without)


def geographic_areas(aois: gpd.GeoDataFrame) -> list[shapely.Geometry]:
    """Each AOI in EPSG:4326, split at the antimeridian where it crosses it (as CDSE's geography expects)."""
    return [split_at_antimeridian(area) for area in aois.to_crs(4326).geometry]


def split_at_antimeridian(area: shapely.Geometry) -> shapely.Geometry:
    """An AOI whose longitudes jump across ±180° (more than 180° wide) as its parts on either side."""
    west, _, east, _ = area.bounds
    if east - west <= 180.0:
        return area
    # shift the western half by a turn, so the shape is contiguous over 180°, then cut it there
    shifted = shapely.transform(area, lambda xy: xy + [[360.0, 0.0]] * (xy[:, :1] < 0))
    inside = shifted.intersection(_WORLD)
    beyond = affinity.translate(shifted.intersection(shapely.box(180.0, -90.0, 540.0, 90.0)), -360.0)
    return shapely.union(inside, beyond)


def query_wkt(area: shapely.Geometry) -> str:
    """The AOI as the catalogue is asked for it: itself, or its convex hull(s) when its WKT is too long."""
    text = shapely.to_wkt(area, rounding_precision=6)
    if len(text) <= MAX_QUERY_WKT_CHARACTERS:
        return text
    parts = getattr(area, "geoms", [area])
    return shapely.to_wkt(
        shapely.MultiPolygon([part.convex_hull for part in parts]).buffer(0), rounding_precision=6
    )


def covered_fraction(area: shapely.Geometry, footprint: shapely.Geometry) -> float:
    """Share of ``area``'s surface inside ``footprint``, both EPSG:4326, in an equal-area projection."""
    centre = area.representative_point()
    equal_area = f"+proj=laea +lat_0={centre.y} +lon_0={centre.x} +datum=WGS84 +units=m"
    projected = gpd.GeoSeries([area, split_at_antimeridian(footprint)], crs=4326).to_crs(equal_area)
    whole, burst = projected.iloc[0], projected.iloc[1]
    return round(float(whole.intersection(burst).area / whole.area), 4) if whole.area > 0 else 0.0


def _wanted(records: Iterable[BurstAcquisition], orbit: Orbit) -> list[BurstAcquisition]:
    """IW records with a footprint, of the asked orbit direction."""
    return [
        record
        for record in records
        if record.subswath.startswith("IW")
        and record.footprint is not None
        and (orbit == "both" or record.orbit_direction.lower() == orbit)
    ]


def _key(record: BurstAcquisition) -> tuple[int, int, str]:
    return (record.relative_orbit, record.burst_id, record.subswath)


def _burst_table(
    records: dict[tuple[int, int, str], BurstAcquisition],
    served: dict[tuple[int, int, str], dict[str, float]],
) -> gpd.GeoDataFrame:
    keys = sorted(records)
    return gpd.GeoDataFrame(
        {
            "burst_id": [records[key].burst_id for key in keys],
            "subswath_name": [records[key].subswath for key in keys],
            "relative_orbit_number": [records[key].relative_orbit for key in keys],
            "orbit_direction": [records[key].orbit_direction for key in keys],
            # plain text columns, so every format (GeoJSON, GeoPackage, GeoParquet) keeps them as they are
            "aoi_ids": [",".join(served[key]) for key in keys],
            "aoi_coverage": [
                ",".join(f"{fraction:.4f}" for fraction in served[key].values()) for key in keys
            ],
        },
        geometry=[shape(records[key].footprint) for key in keys],
        crs=4326,
    )[list(BURST_FILE_COLUMNS)]


def write_burst_file(bursts: gpd.GeoDataFrame, path: str | Path) -> None:
    """Write the bursts as GeoParquet (``.parquet``), GeoPackage (``.gpkg``) or GeoJSON (anything else)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() in GEOPARQUET_SUFFIXES:
        bursts.to_parquet(target, index=False)
    else:
        bursts.to_file(target, driver="GPKG" if target.suffix.lower() == ".gpkg" else "GeoJSON")
