"""Reading and validating a user's areas of interest (GeoJSON, GeoPackage or GeoParquet, any CRS).

Like burst maps, AOI files are drawn or exported by hand, so every problem is collected and
reported at once, naming the rows at fault and what to change.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from coherence_assets.geofiles import read_geospatial_file, rows_of

AOI_ID = "aoi_id"
POLYGON_TYPES = ("Polygon", "MultiPolygon")


class AoiFileError(ValueError):
    """An AOI file that cannot be used, with every reason found."""


def load_areas_of_interest(path: str | Path) -> gpd.GeoDataFrame:
    """The file's polygons as ``aoi_id`` (str) and geometry, in the file's own CRS.

    Raises
    ------
    AoiFileError
        If the file is missing or unreadable, has no CRS or no ``aoi_id`` column, or has
        missing, duplicate or empty ids or missing, empty, invalid or non-polygon geometries.
    """
    frame = read_geospatial_file(
        Path(path),
        "AOI file",
        "COHERENCE_AOI_FILE (or the aoi_file resource in a run's launchpad config)",
        "file of polygons with an aoi_id column",
        "add at least one polygon with an aoi_id",
        AoiFileError,
    )
    source = str(path)
    if AOI_ID not in frame.columns:
        raise AoiFileError(
            f"AOI file {source} has no column {AOI_ID!r} (it has {', '.join(map(str, frame.columns))}): "
            "give every polygon a unique aoi_id"
        )
    if frame.crs is None:
        raise AoiFileError(f"AOI file {source} has no coordinate reference system; set one (e.g. EPSG:4326)")
    frame = frame.reset_index(drop=True)
    ids = frame[AOI_ID].astype("string").str.strip()
    problems: list[str] = []
    missing_id = ids.isna() | (ids == "")
    if missing_id.any():
        problems.append(f"column {AOI_ID} is missing or empty in rows {rows_of(missing_id)}")
    duplicated = ids.duplicated(keep=False) & ~missing_id
    if duplicated.any():
        names = ", ".join(sorted(set(ids[duplicated])))
        problems.append(f"{AOI_ID} {names} appear(s) more than once, in rows {rows_of(duplicated)}")
    geometry = frame.geometry
    bad_geometry = geometry.isna() | geometry.is_empty | ~geometry.is_valid
    if bad_geometry.any():
        problems.append(
            f"geometry is missing, empty or invalid in rows {rows_of(bad_geometry)} (shapely's make_valid "
            "or QGIS's 'Fix geometries' repairs invalid ones)"
        )
    not_polygon = ~bad_geometry & ~geometry.geom_type.isin(POLYGON_TYPES)
    if not_polygon.any():
        problems.append(f"geometry is not a Polygon or MultiPolygon in rows {rows_of(not_polygon)}")
    if problems:
        raise AoiFileError(f"AOI file {source} has {len(problems)} problem(s):\n- " + "\n- ".join(problems))
    return gpd.GeoDataFrame({AOI_ID: ids.astype(str)}, geometry=geometry.values, crs=frame.crs)


def aois_outside_footprints(aois: gpd.GeoDataFrame, footprints: gpd.GeoSeries) -> list[str]:
    """Ids of the AOIs that intersect none of ``footprints`` (compared in the footprints' CRS)."""
    coverage = footprints.union_all()
    projected = aois.to_crs(footprints.crs)
    return sorted(projected.loc[~projected.intersects(coverage), AOI_ID])
