"""Reading a user's geospatial file (burst map, areas of interest) and naming its bad rows.

Both files are checked the same way, so that a user gets the same kind of one-line answer for
either: missing, not geospatial, without geometry, empty, or which rows are wrong.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

GEOPARQUET_SUFFIXES = (".parquet", ".geoparquet")
MAX_ROWS_PER_PROBLEM = 10


def read_geospatial_file(
    path: Path, label: str, setting: str, expected: str, empty_hint: str, error: type[Exception]
) -> gpd.GeoDataFrame:
    """Read ``path`` as a GeoDataFrame, telling apart 'missing', 'not geospatial' and 'empty'.

    ``label`` names the file in errors ("burst file"), ``setting`` the variable that chooses it,
    ``expected`` what it should hold ("file of bursts"), ``empty_hint`` what to add to an empty one;
    every problem raises ``error``.
    """
    if not path.exists():
        raise error(
            f"{label} {path} does not exist: set {setting} to a GeoJSON, GeoPackage or GeoParquet {expected}"
        )
    try:
        frame = gpd.read_parquet(path) if path.suffix.lower() in GEOPARQUET_SUFFIXES else gpd.read_file(path)
    except Exception as cause:  # pyogrio, pyarrow and geopandas each raise their own types
        raise error(
            f"{label} {path} is not a readable geospatial file (GeoJSON, GeoPackage or GeoParquet): {cause}"
        ) from cause
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns:
        raise error(f"{label} {path} has no geometry column: it is not a geospatial file")
    if frame.empty:
        raise error(f"{label} {path} has no rows: {empty_hint}")
    return frame


def rows_of(mask: pd.Series) -> str:
    """Row numbers (0-based, in the file's feature order) of a problem, shortened for long lists."""
    rows = [str(index) for index in mask[mask].index[:MAX_ROWS_PER_PROBLEM]]
    more = int(mask.sum()) - len(rows)
    return ", ".join(rows) + (f" and {more} more" if more > 0 else "")
