"""Grids stack only pixel on pixel; differing extents are covered by their union."""

from __future__ import annotations

import pytest
from affine import Affine
from rasterio.crs import CRS

from coherence_assets.cube.grid_alignment import (
    GridMisalignmentError,
    RasterGrid,
    check_aligned,
    pixel_offset,
    union_grid,
)

UTM_32N = CRS.from_epsg(32632).to_wkt()


def grid(
    source: str, x0: float = 600_000.0, y0: float = 5_200_000.0, shape=(30, 40), pixel=20.0, crs=UTM_32N
):
    return RasterGrid(source=source, crs_wkt=crs, transform=Affine(pixel, 0, x0, 0, -pixel, y0), shape=shape)


def test_whole_pixel_shift_is_aligned_and_offset_counts_pixels():
    reference = grid("a.tif")
    shifted = grid("b.tif", x0=600_000.0 + 3 * 20, y0=5_200_000.0 + 2 * 20)

    check_aligned(reference, shifted)
    assert pixel_offset(shifted, within=reference) == (-2, 3)


def test_union_grid_covers_all_extents():
    first = grid("a.tif")
    second = grid("b.tif", x0=600_000.0 - 5 * 20, y0=5_200_000.0 - 10 * 20, shape=(30, 40))

    union = union_grid([first, second], source="cube.zarr")

    assert union.source == "cube.zarr"
    assert union.shape == (40, 45)
    assert (union.transform.c, union.transform.f) == (599_900.0, 5_200_000.0)
    assert union.x_coordinates()[0] == 599_910.0
    assert union.y_coordinates()[0] == 5_199_990.0
    assert union.same_grid_as(union_grid([union, first]))


@pytest.mark.parametrize(
    ("other", "problem"),
    [
        (grid("b.tif", x0=600_010.0), "origins are 0.5000 pixels apart in x"),
        (grid("b.tif", pixel=10.0), "x pixel size 10.0 differs from 20.0"),
        (grid("b.tif", crs=CRS.from_epsg(32633).to_wkt()), "CRS EPSG:32633 differs from EPSG:32632"),
    ],
)
def test_misaligned_grid_names_both_files_and_the_problem(other, problem):
    with pytest.raises(GridMisalignmentError, match=f"b.tif is not aligned with a.tif: {problem}"):
        union_grid([grid("a.tif"), other])


def test_union_of_nothing_is_refused():
    with pytest.raises(ValueError, match="at least one grid"):
        union_grid([])
