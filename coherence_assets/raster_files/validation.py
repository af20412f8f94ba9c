"""Checks that a downloaded file really is a coherence raster before anything builds on it.

A backend can return an HTML error page, a truncated file, a multi-band stack or an
integer-scaled product under a ``.tif`` name; the cube must never silently absorb one.
Pixels are read block by block so a large burst never has to fit in memory at once.

No data is NaN, whatever the file says: its declared nodata value, and also an exact 0. A
boxcar coherence estimate ``|sum s1 conj(s2)| / sqrt(sum|s1|^2 sum|s2|^2)`` over a 21 x 5
window is never exactly 0 for real data, while products filled with 0 outside the swath and
without a nodata tag are common; reading their zeros as coherence would bias every mean low.
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
    """Open ``path`` with rasterio, natively on a local disk and through ``fs`` elsewhere.

    Every rasterio read of the project comes here. Off the local disk rasterio gets the
    filesystem object itself, not its ``open``: given a bare callable, rasterio 1.4 first probes
    it with the path ``"test"``, which s3fs refuses ("Opener is invalid"); given a filesystem it
    uses its ``open``, ``isfile``, ``isdir`` and ``ls`` as GDAL's virtual file system.
    """
    if not fs.exists(path):
        raise FileNotFoundError(f"coherence raster {path} does not exist")
    # Coherence GeoTIFFs carry everything inside (no .aux.xml or .ovr sidecars): without
    # listing the folder, which holds a window's rasters, an open takes half the time.
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
        if isinstance(fs, LocalFileSystem):
            return rasterio.open(path)
        return rasterio.open(path, opener=fs)


class ValueStatistics:
    """Count, sum and range of the valid pixels of one raster, accumulated block by block.

    Stacking feeds it the blocks it writes anyway, so a raster is decoded once for both.
    """

    def __init__(self, path: str, pixel_count: int) -> None:
        self.path, self.pixel_count = path, pixel_count
        self.valid_count, self.total = 0, 0.0
        self.minimum, self.maximum = np.inf, -np.inf

    def add(self, block: np.ndarray) -> None:
        # NaN-ignoring reductions (fmin/fmax, nansum's pairwise sum): a few fast passes, as this
        # runs on every block that stacking writes.
        count = block.size - int(np.count_nonzero(np.isnan(block)))
        if count:
            self.valid_count += count
            self.total += float(np.nansum(block))
            self.minimum = min(self.minimum, float(np.fmin.reduce(block, axis=None)))
            self.maximum = max(self.maximum, float(np.fmax.reduce(block, axis=None)))

    @property
    def mean_coherence(self) -> float:
        return self.total / self.valid_count if self.valid_count else float("nan")

    @property
    def valid_fraction(self) -> float:
        return self.valid_count / self.pixel_count

    def check_range(self) -> None:
        """Raise :class:`InvalidRasterError` unless every valid pixel is a coherence in [0, 1]."""
        low, high = -COHERENCE_RANGE_TOLERANCE, 1 + COHERENCE_RANGE_TOLERANCE
        if self.valid_count and (self.minimum < low or self.maximum > high):
            raise InvalidRasterError(
                f"{self.path} has coherence values from {self.minimum} to {self.maximum}; expected values "
                "within [0, 1], and NaN (or the declared nodata value) where there is no data"
            )


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
            check_structure(source, path)
            statistics = ValueStatistics(path, source.height * source.width)
            for _, window in source.block_windows(1):
                statistics.add(masked_block(source, window))
            summary = RasterSummary(
                path=path,
                crs_wkt=source.crs.to_wkt(),
                epsg=source.crs.to_epsg(),
                transform=source.transform,
                shape=(source.height, source.width),
                nodata=source.nodata,
                mean_coherence=statistics.mean_coherence,
                valid_fraction=statistics.valid_fraction,
            )
    except RasterioError as error:
        raise InvalidRasterError(f"{path} is corrupt or not a GeoTIFF: {error}") from error
    statistics.check_range()
    return summary


def masked_block(source: rasterio.DatasetReader, window: rasterio.windows.Window) -> np.ndarray:
    """Band 1 in ``window`` as float32, NaN wherever there is no data (see the module docstring)."""
    block = source.read(1, window=window, out_dtype=np.float32)
    no_data = block == 0
    nodata = source.nodata
    if nodata is not None and not np.isnan(nodata):
        no_data |= block == nodata
    if no_data.any():  # rare in NaN-filled products: skip the slow masked assignment
        block[no_data] = np.nan
    return block


def check_structure(source: rasterio.DatasetReader, path: str) -> None:
    """Raise :class:`InvalidRasterError` unless ``source`` is one georeferenced float band."""
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
