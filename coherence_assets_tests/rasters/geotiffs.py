"""Real coherence GeoTIFFs for tests: UTM 32N, 20 m pixels, float32, NaN no-data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

UTM_32N = "EPSG:32632"
PIXEL_SIZE = 20.0
ORIGIN = (600_000.0, 5_200_000.0)
SHAPE = (30, 40)


def coherence_values(shape: tuple[int, int] = SHAPE, level: float = 0.5) -> np.ndarray:
    """A smooth field around ``level`` with a NaN first row, like a burst edge without data."""
    rows, columns = np.indices(shape)
    values = (level + 0.2 * np.sin(rows / 5.0) * np.cos(columns / 7.0)).astype(np.float32)
    values[0, :] = np.nan
    return values


def write_coherence_tif(
    path: str | Path,
    values: np.ndarray | None = None,
    *,
    origin: tuple[float, float] = ORIGIN,
    pixel_size: float = PIXEL_SIZE,
    crs: str | None = UTM_32N,
    nodata: float | None = np.nan,
) -> str:
    """Write ``values`` (2-D, or 3-D for several bands) as a GeoTIFF and return its path."""
    data = coherence_values() if values is None else values
    bands = data if data.ndim == 3 else data[np.newaxis]
    transform = Affine(pixel_size, 0.0, origin[0], 0.0, -pixel_size, origin[1])
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=bands.shape[2],
        height=bands.shape[1],
        count=bands.shape[0],
        dtype=bands.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as target:
        target.write(bands)
    return str(path)
