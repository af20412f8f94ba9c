"""Reading and validating a user's burst map (GeoJSON, GeoPackage or GeoParquet).

Users bring their own burst files, often exported by hand from ESA's burst-ID map, so every
problem is collected and reported at once, naming the rows and columns at fault.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import fsspec
import geopandas as gpd
import pandas as pd

from coherence_assets.bursts.burst_ids import BurstKey, orbit_mismatch
from coherence_assets.cdse_facts import BURST_TIMING, SUBSWATHS, relative_orbit_of_burst_id
from coherence_assets.geofiles import read_geospatial_file, rows_of

REQUIRED_COLUMNS = ("burst_id", "subswath_name", "relative_orbit_number")

log = logging.getLogger(__name__)


class BurstMapError(ValueError):
    """A burst map that cannot be used, with every reason found."""


def read_burst_map(path: str | Path) -> gpd.GeoDataFrame:
    """Read the file as a GeoDataFrame, telling apart 'missing', 'not geospatial' and 'empty'."""
    return read_geospatial_file(
        Path(path),
        "burst file",
        "COHERENCE_BURSTS_FILE (or the bursts_file resource in a run's launchpad config)",
        "file of bursts",
        "add at least one burst",
        BurstMapError,
    )


def _as_integers(column: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The column as nullable integers and a mask of values that are not whole numbers."""
    numbers = pd.to_numeric(column, errors="coerce")
    not_integer = numbers.isna() | (numbers.round() != numbers)
    return numbers.where(~not_integer).astype("Int64"), not_integer


def _outside_lonlat(lonlat: gpd.GeoSeries) -> pd.Series:
    """Rows whose EPSG:4326 bounds leave [-180, 180] x [-90, 90] (or are not finite after reprojection)."""
    bounds = lonlat.bounds
    inside = (
        bounds["minx"].between(-180, 180)
        & bounds["maxx"].between(-180, 180)
        & bounds["miny"].between(-90, 90)
        & bounds["maxy"].between(-90, 90)
    )
    return ~inside.astype(bool)


def validate_burst_map(frame: gpd.GeoDataFrame, source: str) -> gpd.GeoDataFrame:
    """Check a burst map and return one row per burst key in EPSG:4326.

    Raises
    ------
    BurstMapError
        Listing every problem: missing columns, non-integer burst ids or ids beyond their mode's
        cycle, unknown subswaths,
        relative orbits outside 1-175, empty or invalid geometries, coordinates that cannot be
        longitude/latitude in the file's CRS (metres labelled EPSG:4326), duplicate burst keys.
    """
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise BurstMapError(
            f"burst file {source} lacks the column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(str, frame.columns))}. Expected the ESA burst-map columns "
            f"{', '.join(REQUIRED_COLUMNS)} and a geometry"
        )
    if frame.crs is None:
        raise BurstMapError(
            f"burst file {source} has no coordinate reference system; set one (e.g. EPSG:4326)"
        )
    frame = frame.reset_index(drop=True)
    problems: list[str] = []

    burst_ids, bad_ids = _as_integers(frame["burst_id"])
    bad_ids |= burst_ids.fillna(0) < 1
    if bad_ids.any():
        problems.append(f"column burst_id is not a positive integer in rows {rows_of(bad_ids)}")
    orbits, bad_orbits = _as_integers(frame["relative_orbit_number"])
    bad_orbits |= ~orbits.fillna(0).between(1, 175)
    if bad_orbits.any():
        problems.append(
            f"column relative_orbit_number is not an integer from 1 to 175 in rows {rows_of(bad_orbits)}"
        )
    subswaths = frame["subswath_name"].astype("string").str.strip().str.upper()
    bad_subswaths = ~subswaths.isin(SUBSWATHS).fillna(False).astype(bool)
    bad_ids, bad_orbits = bad_ids.astype(bool), bad_orbits.astype(bool)
    if bad_subswaths.any():
        problems.append(
            f"column subswath_name is not one of {', '.join(SUBSWATHS)} in rows {rows_of(bad_subswaths)}"
        )
    last_ids = subswaths.str[:2].map({mode: timing.max_burst_id for mode, timing in BURST_TIMING.items()})
    beyond_cycle = (~(bad_ids | bad_subswaths) & (burst_ids.fillna(0) > last_ids.fillna(0))).astype(bool)
    if beyond_cycle.any():
        limits = ", ".join(f"{mode} {timing.max_burst_id}" for mode, timing in BURST_TIMING.items())
        problems.append(
            f"column burst_id lies beyond the last burst of its mode's 12-day cycle ({limits}) "
            f"in rows {rows_of(beyond_cycle)}"
        )
    bad_ids |= beyond_cycle
    geometry = frame.geometry
    bad_geometry = geometry.isna() | geometry.is_empty | ~geometry.is_valid
    if bad_geometry.any():
        problems.append(f"geometry is missing, empty or invalid in rows {rows_of(bad_geometry)}")
    lonlat = geometry.to_crs("EPSG:4326")
    not_lonlat = _outside_lonlat(lonlat) & ~bad_geometry
    if not_lonlat.any():
        first = frame.index[not_lonlat][0]
        x, y = geometry[first].bounds[:2]
        problems.append(
            f"geometry coordinates cannot be longitude/latitude in degrees although the file says "
            f"{frame.crs.to_string()} (row {first} starts at x={x:.6g}, y={y:.6g}: projected metres, "
            f"such as UTM?) in rows {rows_of(not_lonlat)}; write the file with its real CRS"
        )

    usable = ~(bad_ids | bad_orbits | bad_subswaths)
    keys = pd.Series(
        [
            str(BurstKey(int(orbits[index]), int(burst_ids[index]), str(subswaths[index])))
            if usable[index]
            else None
            for index in frame.index
        ],
        index=frame.index,
        dtype="object",
    )
    duplicated = keys.duplicated(keep=False) & keys.notna()
    if duplicated.any():
        names = ", ".join(sorted(set(keys[duplicated])))
        problems.append(f"burst keys {names} appear more than once, in rows {rows_of(duplicated)}")
    if problems:
        raise BurstMapError(
            f"burst file {source} has {len(problems)} problem(s):\n- " + "\n- ".join(problems)
        )

    for index in frame.index:
        if orbit_mismatch(int(burst_ids[index]), int(orbits[index]), str(subswaths[index])) > 1:
            log.warning(
                "burst file %s row %s: burst id %s lies on relative orbit %s but the row says %s; "
                "are burst_id and relative_orbit_number swapped or mistyped?",
                source,
                index,
                burst_ids[index],
                relative_orbit_of_burst_id(int(burst_ids[index]), str(subswaths[index])),
                orbits[index],
            )
    validated = gpd.GeoDataFrame(
        {
            "burst": keys.astype(str),
            "burst_id": burst_ids.astype("int64"),
            "subswath_name": subswaths.astype(str),
            "relative_orbit_number": orbits.astype("int64"),
        },
        geometry=lonlat.values,
        crs="EPSG:4326",
    )
    return validated.sort_values("burst").reset_index(drop=True)


def load_burst_catalogue(path: str | Path) -> gpd.GeoDataFrame:
    """Read and validate a burst map in one step."""
    return validate_burst_map(read_burst_map(path), str(path))


def orbit_warnings(catalogue: gpd.GeoDataFrame) -> list[str]:
    """Burst keys whose id and relative orbit disagree by more than one orbit."""
    return [
        row.burst
        for row in catalogue.itertuples()
        if orbit_mismatch(int(row.burst_id), int(row.relative_orbit_number), row.subswath_name) > 1
    ]


def burst_file_version(bursts_file: str) -> str:
    """The burst file's content digest: an unchanged file keeps its data version, so re-materialising
    the catalogue marks nothing downstream unsynced."""
    with fsspec.open(bursts_file, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()[:16]
