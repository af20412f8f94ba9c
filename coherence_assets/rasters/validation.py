"""Checks that a downloaded file really is a coherence raster before anything builds on it.

A backend can return an HTML error page, a truncated file, a multi-band stack or an
integer-scaled product under a ``.tif`` name; the cube must never silently absorb one.
Pixels are read block by block so a large burst never has to fit in memory at once.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

import fsspec
import numpy as np
import rasterio
from affine import Affine
from fsspec.implementations.local import LocalFileSystem
from rasterio.errors import RasterioError

# Coherence is in [0, 1] by definition; float32 arithmetic in the estimator may overshoot by
# a few ulps, which is not a processing error.
COHERENCE_RANGE_TOLERANCE = 1e-5


class InvalidRasterError(ValueError):
    """A file that should be a coherence raster is not one."""


@dataclass(frozen=True)
class RasterSummary:
    """What a valid coherence raster holds: its grid and how much coherent signal it has."""

    path: str
    crs_wkt: str
    epsg: int | None
    transform: Affine
    shape: tuple[int, int]
    nodata: float | None
    mean_coherence: float
    valid_fraction: float


def open_coherence_raster(fs: fsspec.AbstractFileSystem, path: str) -> AbstractContextManager:
    """Open ``path`` with rasterio, natively on a local disk and through ``fs.open`` elsewhere."""
    if not fs.exists(path):
        raise FileNotFoundError(f"coherence raster {path} does not exist")
    if isinstance(fs, LocalFileSystem):
        return rasterio.open(path)
    return rasterio.open(path, opener=fs.open)


def validate_coherence_raster(fs: fsspec.AbstractFileSystem, path: str) -> RasterSummary:
    """Check that ``path`` is a single-band float GeoTIFF with a CRS and coherence in [0, 1].

    Raises
    ------
    InvalidRasterError
        Naming the file and what is wrong with it.
    FileNotFoundError
        If there is no file at ``path``.
    """
    try:
        with open_coherence_raster(fs, path) as source:
            _check_structure(source, path)
            valid_count, total, minimum, maximum = _value_statistics(source)
            summary = RasterSummary(
                path=path,
                crs_wkt=source.crs.to_wkt(),
                epsg=source.crs.to_epsg(),
                transform=source.transform,
                shape=(source.height, source.width),
                nodata=source.nodata,
                mean_coherence=total / valid_count if valid_count else float("nan"),
                valid_fraction=valid_count / (source.height * source.width),
            )
    except RasterioError as error:
        raise InvalidRasterError(f"{path} is corrupt or not a GeoTIFF: {error}") from error
    if valid_count and (minimum < -COHERENCE_RANGE_TOLERANCE or maximum > 1 + COHERENCE_RANGE_TOLERANCE):
        raise InvalidRasterError(
            f"{path} has coherence values from {minimum} to {maximum}; expected values within [0, 1], "
            "and NaN (or the declared nodata value) where there is no data"
        )
    return summary


def masked_block(source: rasterio.DatasetReader, window: rasterio.windows.Window) -> np.ndarray:
    """Band 1 in ``window`` as float32, with the file's nodata value turned into NaN (never 0)."""
    block = source.read(1, window=window).astype(np.float32, copy=False)
    nodata = source.nodata
    if nodata is not None and not np.isnan(nodata):
        block = np.where(block == nodata, np.float32(np.nan), block)
    return block


def _check_structure(source: rasterio.DatasetReader, path: str) -> None:
    if source.driver != "GTiff":
        raise InvalidRasterError(f"{path} is a {source.driver} file, expected a GeoTIFF")
    if source.count != 1:
        raise InvalidRasterError(f"{path} has {source.count} bands, expected exactly one coherence band")
    if not np.issubdtype(np.dtype(source.dtypes[0]), np.floating):
        raise InvalidRasterError(
            f"{path} has {source.dtypes[0]} pixels, expected float32 coherence (an integer raster "
            "is a scaled or wrong product)"
        )
    if source.crs is None:
        raise InvalidRasterError(f"{path} has no CRS, expected the UTM CRS of the terrain-corrected burst")
    if source.transform == Affine.identity():
        raise InvalidRasterError(f"{path} has no geotransform, expected a georeferenced grid")


def _value_statistics(source: rasterio.DatasetReader) -> tuple[int, float, float, float]:
    """Count, sum, minimum and maximum of the valid (non-NaN) pixels, one block at a time."""
    valid_count, total = 0, 0.0
    minimum, maximum = np.inf, -np.inf
    for _, window in source.block_windows(1):
        block = masked_block(source, window)
        values = block[~np.isnan(block)]
        if values.size:
            valid_count += values.size
            total += float(values.sum(dtype=np.float64))
            minimum = min(minimum, float(values.min()))
            maximum = max(maximum, float(values.max()))
    return valid_count, total, minimum, maximum
