"""The quicklook is a PNG of the mean-coherence series and the latest map, embeddable as Markdown."""

from __future__ import annotations

import base64
import io
from datetime import date

import fsspec
import matplotlib.image
import numpy as np
import pytest
import xarray as xr

from coherence_assets.cube.quicklook import quicklook_markdown, render_quicklook_png, series_with_gaps
from coherence_assets.cube.stacking import PairRaster, open_coherence_cube, stack_coherence_cube
from coherence_assets_tests.rasters.geotiffs import coherence_values, write_coherence_tif

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def cube(tmp_path) -> xr.Dataset:
    pairs = [(date(2023, 7, 1), date(2023, 7, 13)), (date(2023, 7, 13), date(2023, 7, 25))]
    rasters = [
        PairRaster(
            write_coherence_tif(tmp_path / f"{index}.tif", coherence_values(level=0.3 + 0.2 * index)), *pair
        )
        for index, pair in enumerate(pairs)
    ]
    stack_coherence_cube(fsspec.filesystem("file"), rasters, str(tmp_path / "cube.zarr"), spatial_chunk=16)
    return open_coherence_cube(fsspec.filesystem("file"), str(tmp_path / "cube.zarr"))


def test_quicklook_is_a_readable_png(cube):
    png = render_quicklook_png(cube)

    assert png.startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[0] > 200 and image.shape[1] > 600


def test_quicklook_works_for_an_in_memory_cube_without_stored_means(cube):
    in_memory = cube.drop_vars("mean_coherence").load()

    assert render_quicklook_png(in_memory).startswith(PNG_SIGNATURE)


def test_quicklook_of_an_empty_cube_is_refused(cube):
    with pytest.raises(ValueError, match="holds no pairs"):
        render_quicklook_png(cube.isel(time=slice(0, 0)))


def test_markdown_embeds_the_png_as_a_data_url():
    markdown = quicklook_markdown(PNG_SIGNATURE)

    assert markdown.startswith("![coherence quicklook](data:image/png;base64,")
    assert base64.b64decode(markdown.split(",", 1)[1].rstrip(")")) == PNG_SIGNATURE


def test_all_nan_latest_map_still_renders(cube):
    blank = cube.copy()
    blank["coherence"] = xr.full_like(cube["coherence"], np.nan)

    assert render_quicklook_png(blank).startswith(PNG_SIGNATURE)


def test_a_missing_acquisition_breaks_the_line_instead_of_bridging_it():
    times = np.array(["2023-08-19", "2023-07-02", "2023-07-14", "2023-08-31"], dtype="datetime64[D]")
    values = np.array([0.3, 0.5, 0.6, 0.4])

    line_times, line_values = series_with_gaps(times, values, baseline_days=12)

    assert list(line_times.astype(str)) == [
        "2023-07-02",
        "2023-07-14",
        "2023-08-01",
        "2023-08-19",
        "2023-08-31",
    ]
    assert np.isnan(line_values[2])
    assert list(line_values[[0, 1, 3, 4]]) == [0.5, 0.6, 0.3, 0.4]


def test_regular_pairs_have_no_break():
    times = np.array(["2023-07-02", "2023-07-14", "2023-07-26"], dtype="datetime64[D]")

    _, line_values = series_with_gaps(times, np.array([0.5, 0.6, 0.7]), baseline_days=12)

    assert not np.isnan(line_values).any()
