"""Exact grid alignment between coherence rasters, and the union grid that holds them all.

Stacking rasters into one cube is only meaningful when each pixel of one raster lies exactly
on a pixel of the others: same CRS, same resolution, and origins a whole number of pixels
apart. Resampling would hide a processing error, so a misaligned raster is refused instead.
Extents may differ (bursts move slightly between acquisitions); the cube then covers the
union of the extents and pixels outside a raster are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.crs import CRS

# A pixel offset within this many pixels of a whole number counts as whole: GeoTIFF origins
# are stored as doubles, so exact float equality would refuse grids that do align.
PIXEL_OFFSET_TOLERANCE = 1e-6
RESOLUTION_RELATIVE_TOLERANCE = 1e-9


class GridMisalignmentError(ValueError):
    """Two rasters cannot be stacked pixel on pixel."""


@dataclass(frozen=True)
class RasterGrid:
    """The pixel grid of one raster (or of the cube), named after where it comes from."""

    source: str
    crs_wkt: str
    transform: Affine
    shape: tuple[int, int]

    @property
    def height(self) -> int:
        return self.shape[0]

    @property
    def width(self) -> int:
        return self.shape[1]

    def x_coordinates(self) -> np.ndarray:
        """Pixel-centre x coordinates, as rioxarray writes them."""
        return self.transform.c + (np.arange(self.width) + 0.5) * self.transform.a

    def y_coordinates(self) -> np.ndarray:
        """Pixel-centre y coordinates (decreasing for north-up grids)."""
        return self.transform.f + (np.arange(self.height) + 0.5) * self.transform.e

    def same_grid_as(self, other: RasterGrid) -> bool:
        """True when ``other`` covers exactly the same pixels (aligned, same origin and shape)."""
        check_aligned(self, other)
        return self.shape == other.shape and pixel_offset(other, within=self) == (0, 0)


def check_aligned(reference: RasterGrid, other: RasterGrid) -> None:
    """Raise :class:`GridMisalignmentError` unless ``other`` lies pixel on pixel with ``reference``."""
    problem = _alignment_problem(reference, other)
    if problem is not None:
        raise GridMisalignmentError(
            f"{other.source} is not aligned with {reference.source}: {problem}; coherence rasters of "
            "one burst must share CRS, resolution and pixel grid to be stacked"
        )


def pixel_offset(grid: RasterGrid, within: RasterGrid) -> tuple[int, int]:
    """Row and column of ``grid``'s upper-left pixel in ``within`` (negative when outside)."""
    check_aligned(within, grid)
    column = (grid.transform.c - within.transform.c) / within.transform.a
    row = (grid.transform.f - within.transform.f) / within.transform.e
    return round(row), round(column)


def union_grid(grids: Sequence[RasterGrid], source: str = "the union grid") -> RasterGrid:
    """The smallest grid, aligned with all of ``grids``, that contains every one of them."""
    if not grids:
        raise ValueError("union_grid needs at least one grid, got none")
    reference = grids[0]
    offsets = [pixel_offset(grid, within=reference) for grid in grids]
    top = min(row for row, _ in offsets)
    left = min(column for _, column in offsets)
    bottom = max(row + grid.height for (row, _), grid in zip(offsets, grids, strict=True))
    right = max(column + grid.width for (_, column), grid in zip(offsets, grids, strict=True))
    transform = reference.transform
    origin = Affine(
        transform.a, 0.0, transform.c + left * transform.a, 0.0, transform.e, transform.f + top * transform.e
    )
    return RasterGrid(
        source=source, crs_wkt=reference.crs_wkt, transform=origin, shape=(bottom - top, right - left)
    )


def _alignment_problem(reference: RasterGrid, other: RasterGrid) -> str | None:
    for grid in (reference, other):
        if grid.transform.b != 0 or grid.transform.d != 0:
            return f"{grid.source} has a rotated grid ({tuple(grid.transform)[:6]}), expected north-up"
    if CRS.from_wkt(reference.crs_wkt) != CRS.from_wkt(other.crs_wkt):
        return f"CRS {_crs_name(other.crs_wkt)} differs from {_crs_name(reference.crs_wkt)}"
    for axis, ours, theirs in (
        ("x", reference.transform.a, other.transform.a),
        ("y", reference.transform.e, other.transform.e),
    ):
        if not np.isclose(ours, theirs, rtol=RESOLUTION_RELATIVE_TOLERANCE, atol=0):
            return f"{axis} pixel size {theirs} differs from {ours}"
    for axis, offset in (
        ("x", (other.transform.c - reference.transform.c) / reference.transform.a),
        ("y", (other.transform.f - reference.transform.f) / reference.transform.e),
    ):
        if abs(offset - round(offset)) > PIXEL_OFFSET_TOLERANCE:
            return f"origins are {offset:.4f} pixels apart in {axis}, expected a whole number"
    return None


def _crs_name(crs_wkt: str) -> str:
    crs = CRS.from_wkt(crs_wkt)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else repr(crs_wkt[:60])
