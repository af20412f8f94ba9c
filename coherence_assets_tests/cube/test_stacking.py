"""Stacking real GeoTIFFs into the Zarr cube: layout, NaN, appends, union grids and refusals."""

from __future__ import annotations

import io
import os
import shutil
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
import zarr
from fsspec.implementations.memory import MemoryFileSystem

from coherence_assets.cube.grid_alignment import GridMisalignmentError
from coherence_assets.cube.stacking import (
    CubeSummary,
    PairRaster,
    find_pair_rasters,
    open_coherence_cube,
    stack_coherence_cube,
)
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.raster_files.validation import InvalidRasterError
from coherence_assets_tests.rasters.geotiffs import ORIGIN, PIXEL_SIZE, coherence_values, write_coherence_tif

LOCAL = fsspec.filesystem("file")
CHUNK = 16
JULY = [(date(2023, 7, 1), date(2023, 7, 13)), (date(2023, 7, 13), date(2023, 7, 25))]
OCTOBER = [(date(2023, 10, 5), date(2023, 10, 17))]


def make_rasters(root: Path, window: str, pairs, level: float = 0.5, **tif_options) -> list[PairRaster]:
    folder = root / "coherence_rasters" / "t015_030343_iw2" / window
    folder.mkdir(parents=True, exist_ok=True)
    rasters = []
    for index, (reference, secondary) in enumerate(pairs):
        values = tif_options.pop("values", None)
        if values is None:
            values = coherence_values(level=level + 0.1 * index)
        path = write_coherence_tif(folder / raster_file_name(reference, secondary), values, **tif_options)
        rasters.append(PairRaster(path, reference, secondary))
    return rasters


def mean_coherence_by_date(summary: CubeSummary) -> pd.Series:
    """Spatial mean coherence per pair, indexed by reference date (repeated per baseline)."""
    return summary.pairs.set_index("reference_date")["mean_coherence"]


def cube_path(root: Path) -> str:
    return str(root / "coherence_cube" / "t015_030343_iw2.zarr")


def file_states(folder: str) -> dict[str, tuple[int, bytes]]:
    """Every chunk file under ``folder`` (not the metadata, such as .zarray) with its modification time and content."""
    states = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            if name.startswith("."):
                continue
            path = os.path.join(directory, name)
            states[path] = (os.stat(path).st_mtime_ns, Path(path).read_bytes())
    return states


def read_tif(path: str) -> np.ndarray:
    with rasterio.open(path) as source:
        return source.read(1)


def day(value: np.datetime64) -> date:
    return pd.Timestamp(value).date()


def test_cube_has_the_documented_layout(tmp_path):
    rasters = make_rasters(tmp_path, "2023-07-01", JULY)

    summary = stack_coherence_cube(LOCAL, rasters, cube_path(tmp_path), spatial_chunk=CHUNK)
    cube = xr.open_zarr(cube_path(tmp_path))

    coherence = cube["coherence"]
    assert coherence.dims == ("time", "y", "x")
    assert coherence.dtype == np.float32
    assert coherence.encoding["chunks"] == (1, CHUNK, CHUNK)
    assert np.isnan(coherence.encoding["_FillValue"])
    assert coherence.attrs["long_name"] == "interferometric coherence"
    assert coherence.attrs["units"] == "1"
    assert coherence.attrs["grid_mapping"] == "spatial_ref"
    assert cube["time"].dtype == np.dtype("datetime64[ns]")
    assert list(cube["time"].values) == list(np.array([pair[0] for pair in JULY], dtype="datetime64[ns]"))
    assert list(cube["secondary_time"].values) == list(
        np.array([pair[1] for pair in JULY], dtype="datetime64[ns]")
    )
    assert cube["secondary_time"].dims == ("time",)
    assert list(cube["temporal_baseline"].values) == [12, 12]
    assert np.issubdtype(cube["temporal_baseline"].dtype, np.integer)
    assert cube.rio.crs.to_epsg() == 32632
    assert "spatial_ref" in cube.coords
    assert cube["x"].values[0] == ORIGIN[0] + PIXEL_SIZE / 2
    assert cube["y"].values[0] == ORIGIN[1] - PIXEL_SIZE / 2
    assert tuple(cube.rio.transform())[:6] == (PIXEL_SIZE, 0.0, ORIGIN[0], 0.0, -PIXEL_SIZE, ORIGIN[1])
    assert (summary.pair_count, summary.grid_shape, summary.added_pairs) == (2, (30, 40), 2)
    assert summary.dates == [date(2023, 7, 1), date(2023, 7, 13)]


def test_values_are_stored_exactly_and_no_data_stays_nan_never_zero(tmp_path):
    values = coherence_values()
    values[values < 0.4] = -9999.0
    rasters = make_rasters(tmp_path, "2023-07-01", JULY[:1], values=values, nodata=-9999.0)

    summary = stack_coherence_cube(LOCAL, rasters, cube_path(tmp_path), spatial_chunk=CHUNK)
    stored = open_coherence_cube(LOCAL, cube_path(tmp_path))["coherence"].isel(time=0).values

    expected = np.where(values == -9999.0, np.nan, values)
    np.testing.assert_array_equal(stored, expected)
    assert np.isnan(stored[0]).all()
    assert not (stored == 0).any()
    assert mean_coherence_by_date(summary)[date(2023, 7, 1)] == pytest.approx(
        float(np.nanmean(expected)), rel=1e-6
    )


def test_new_window_is_appended_without_touching_old_chunks(tmp_path, caplog):
    cube = cube_path(tmp_path)
    july = make_rasters(tmp_path, "2023-07-01", JULY)
    with caplog.at_level("INFO"):
        stack_coherence_cube(LOCAL, july, cube, spatial_chunk=CHUNK)
    messages = [record.getMessage() for record in caplog.records]
    assert any(message.endswith("(a new cube)") for message in messages), messages
    assert not any("(appended)" in message for message in messages), messages
    old_chunks = file_states(f"{cube}/coherence")

    october = make_rasters(tmp_path, "2023-10-01", OCTOBER, level=0.2)
    # A different chunk size now must not change how the existing store is chunked.
    summary = stack_coherence_cube(LOCAL, july + october, cube, spatial_chunk=CHUNK // 2)

    assert (summary.added_pairs, summary.pair_count, summary.rewritten) == (1, 3, False)
    new_chunks = file_states(f"{cube}/coherence")
    assert {path: new_chunks[path] for path in old_chunks} == old_chunks
    assert any(path.startswith(f"{cube}/coherence/2/") for path in new_chunks)
    stored = open_coherence_cube(LOCAL, cube)
    np.testing.assert_array_equal(stored["coherence"].isel(time=2).values, coherence_values(level=0.2))


def test_restacking_the_same_rasters_writes_nothing(tmp_path):
    cube = cube_path(tmp_path)
    rasters = make_rasters(tmp_path, "2023-07-01", JULY)
    first = stack_coherence_cube(LOCAL, rasters, cube, spatial_chunk=CHUNK)
    before = file_states(cube)

    again = stack_coherence_cube(LOCAL, list(reversed(rasters)), cube, spatial_chunk=CHUNK)

    assert file_states(cube) == before
    assert again.added_pairs == 0
    assert again.pairs.equals(first.pairs)


def test_differing_extents_stack_on_the_union_grid_with_nan_outside(tmp_path):
    shifted_origin = (ORIGIN[0] + 5 * PIXEL_SIZE, ORIGIN[1] - 3 * PIXEL_SIZE)
    first = make_rasters(tmp_path, "2023-07-01", JULY[:1])
    second = make_rasters(tmp_path, "2023-07-01", JULY[1:], origin=shifted_origin)

    summary = stack_coherence_cube(LOCAL, first + second, cube_path(tmp_path), spatial_chunk=CHUNK)
    cube = open_coherence_cube(LOCAL, cube_path(tmp_path))

    assert summary.grid_shape == (33, 45)
    later = cube["coherence"].isel(time=1).values
    assert np.isnan(later[:3, :]).all() and np.isnan(later[:, :5]).all()
    np.testing.assert_array_equal(later[3:, 5:], coherence_values(level=0.5))
    earlier = cube["coherence"].isel(time=0).values
    assert np.isnan(earlier[30:, :]).all() and np.isnan(earlier[:, 40:]).all()


def test_grown_extent_rewrites_the_cube_keeping_old_pairs_in_place(tmp_path):
    cube = cube_path(tmp_path)
    july = make_rasters(tmp_path, "2023-07-01", JULY)
    stack_coherence_cube(LOCAL, july, cube, spatial_chunk=CHUNK)
    wider = make_rasters(tmp_path, "2023-10-01", OCTOBER, origin=(ORIGIN[0] - 4 * PIXEL_SIZE, ORIGIN[1]))

    summary = stack_coherence_cube(LOCAL, july + wider, cube, spatial_chunk=CHUNK)
    stored = open_coherence_cube(LOCAL, cube)

    assert (summary.rewritten, summary.pair_count, summary.grid_shape) == (True, 3, (30, 44))
    assert stored.rio.transform().c == ORIGIN[0] - 4 * PIXEL_SIZE
    np.testing.assert_array_equal(stored["coherence"].isel(time=0).values[:, 4:], coherence_values(level=0.5))
    assert np.isnan(stored["coherence"].isel(time=0).values[:, :4]).all()
    assert not os.path.exists(cube + ".rewrite")


def test_half_pixel_offset_is_refused_naming_both_files(tmp_path):
    first = make_rasters(tmp_path, "2023-07-01", JULY[:1])
    misaligned = make_rasters(
        tmp_path, "2023-07-01", JULY[1:], origin=(ORIGIN[0] + PIXEL_SIZE / 2, ORIGIN[1])
    )

    with pytest.raises(GridMisalignmentError) as raised:
        stack_coherence_cube(LOCAL, first + misaligned, cube_path(tmp_path), spatial_chunk=CHUNK)

    message = str(raised.value)
    assert "20230713_20230725.tif is not aligned with" in message
    assert "20230701_20230713.tif" in message
    assert "0.5000 pixels apart in x" in message
    assert not os.path.exists(cube_path(tmp_path))


def test_corrupt_geotiff_is_refused_before_anything_is_written(tmp_path):
    rasters = make_rasters(tmp_path, "2023-07-01", JULY)
    Path(rasters[1].path).write_bytes(b"not a tiff")

    with pytest.raises(InvalidRasterError, match=r"20230713_20230725\.tif is corrupt or not a GeoTIFF"):
        stack_coherence_cube(LOCAL, rasters, cube_path(tmp_path), spatial_chunk=CHUNK)
    assert not os.path.exists(cube_path(tmp_path))


def test_several_baselines_stack_along_pair(tmp_path):
    pairs = [JULY[0], (date(2023, 7, 1), date(2023, 7, 25)), JULY[1]]
    rasters = make_rasters(tmp_path, "2023-07-01", pairs)

    summary = stack_coherence_cube(LOCAL, rasters, cube_path(tmp_path), pair_dim=True, spatial_chunk=CHUNK)
    cube = open_coherence_cube(LOCAL, cube_path(tmp_path))

    assert cube["coherence"].dims == ("pair", "y", "x")
    for name in ("time", "secondary_time", "temporal_baseline"):
        assert cube[name].dims == ("pair",)
    assert cube["temporal_baseline"].values.tolist() == [12, 24, 12]
    assert summary.pair_count == 3
    first_date = (
        xr.open_zarr(cube_path(tmp_path)).swap_dims(pair="time").sel(time=slice("2023-07-01", "2023-07-12"))
    )
    assert [day(s) for s in first_date["secondary_time"].values] == [date(2023, 7, 13), date(2023, 7, 25)]


def test_shared_reference_date_needs_the_pair_dimension(tmp_path):
    rasters = make_rasters(tmp_path, "2023-07-01", [JULY[0], (date(2023, 7, 1), date(2023, 7, 25))])

    with pytest.raises(ValueError, match=r"share reference date.*pair_dim=True"):
        stack_coherence_cube(LOCAL, rasters, cube_path(tmp_path), spatial_chunk=CHUNK)


def test_switching_leading_dimension_on_an_existing_cube_is_refused(tmp_path):
    rasters = make_rasters(tmp_path, "2023-07-01", JULY)
    stack_coherence_cube(LOCAL, rasters[:1], cube_path(tmp_path), spatial_chunk=CHUNK)

    with pytest.raises(ValueError, match="stacks pairs along 'time' but 'pair' was requested"):
        stack_coherence_cube(LOCAL, rasters, cube_path(tmp_path), pair_dim=True, spatial_chunk=CHUNK)


def test_interrupted_append_is_truncated_before_appending_again(tmp_path):
    cube = cube_path(tmp_path)
    july = make_rasters(tmp_path, "2023-07-01", JULY)
    stack_coherence_cube(LOCAL, july, cube, spatial_chunk=CHUNK)
    # What a crash mid-append leaves: arrays already grown, their new entries never written.
    group = zarr.open_group(cube, mode="r+", use_consolidated=False)
    for _, array in group.arrays():
        if array.attrs["_ARRAY_DIMENSIONS"][:1] == ["time"]:
            array.resize((array.shape[0] + 1, *array.shape[1:]))

    october = make_rasters(tmp_path, "2023-10-01", OCTOBER, level=0.2)
    summary = stack_coherence_cube(LOCAL, july + october, cube, spatial_chunk=CHUNK)

    assert summary.pair_count == 3
    assert summary.dates == [date(2023, 7, 1), date(2023, 7, 13), date(2023, 10, 5)]
    assert not np.isnat(open_coherence_cube(LOCAL, cube)["time"].values).any()


def test_find_pair_rasters_lists_all_windows_of_a_burst(tmp_path):
    rasters = make_rasters(tmp_path, "2023-07-01", JULY) + make_rasters(tmp_path, "2023-10-01", OCTOBER)
    (tmp_path / "coherence_rasters" / "t015_030343_iw2" / "2023-10-01" / "20231017_20231029.tif.part").touch()

    found = find_pair_rasters(LOCAL, str(tmp_path / "coherence_rasters" / "t015_030343_iw2"))

    assert found == rasters


class ObjectStoreLikeFileSystem(MemoryFileSystem):
    """An in-memory, non-local filesystem that, like s3fs, opens a separate handle per open.

    fsspec's memory filesystem hands every reader the same file object, which concurrent
    dask tasks would share.
    """

    protocol = "objectstorelike"

    def _open(self, path, mode="rb", **kwargs):
        if mode == "rb":
            return io.BytesIO(self.cat_file(path))
        return super()._open(path, mode, **kwargs)


def test_cube_on_a_non_local_fsspec_filesystem(tmp_path):
    # Not a LocalFileSystem: rasters are read through fs.open and the cube is written through
    # zarr's FsspecStore, as on an object store.
    remote = ObjectStoreLikeFileSystem()
    rasters = []
    for raster in make_rasters(tmp_path, "2023-07-01", JULY):
        remote.put(raster.path, f"/stacking-test/{Path(raster.path).name}")
        rasters.append(raster._replace(path=f"/stacking-test/{Path(raster.path).name}"))

    try:
        summary = stack_coherence_cube(remote, rasters, "/stacking-test/cube.zarr", spatial_chunk=CHUNK)
        again = stack_coherence_cube(remote, rasters, "/stacking-test/cube.zarr", spatial_chunk=CHUNK)
        cube = open_coherence_cube(remote, "/stacking-test/cube.zarr")

        assert (summary.pair_count, again.added_pairs) == (2, 0)
        np.testing.assert_array_equal(cube["coherence"].isel(time=1).values, coherence_values(level=0.6))
    finally:
        remote.rm("/stacking-test", recursive=True)


@pytest.mark.parametrize("pair_dim", [False, True], ids=["time", "pair"])
def test_backfilled_earlier_window_lands_in_date_order_and_dates_slice(tmp_path, pair_dim):
    cube = cube_path(tmp_path)
    later_pairs = [(date(2023, 8, 8), date(2023, 8, 20)), (date(2023, 9, 13), date(2023, 9, 25))]
    later = make_rasters(tmp_path, "2023-08-01", later_pairs, level=0.2)
    stack_coherence_cube(LOCAL, later, cube, pair_dim=pair_dim, spatial_chunk=CHUNK, series_chunks=(2, 8))
    july = make_rasters(tmp_path, "2023-07-01", JULY)

    summary = stack_coherence_cube(
        LOCAL, later + july, cube, pair_dim=pair_dim, spatial_chunk=CHUNK, series_chunks=(2, 8)
    )

    assert (summary.added_pairs, summary.rewritten) == (2, True)
    stored = xr.open_zarr(cube)
    expected = sorted(JULY + later_pairs)
    assert [
        (day(t), day(s)) for t, s in zip(stored["time"].values, stored["secondary_time"].values, strict=True)
    ] == (expected)
    by_pair = {raster.pair: raster.path for raster in later + july}
    for index, pair in enumerate(expected):
        np.testing.assert_array_equal(stored["coherence"][index].values, read_tif(by_pair[pair]))
    if pair_dim:
        stored = stored.swap_dims(pair="time")
    july_only = stored.sel(time=slice("2023-07-01", "2023-07-31"))
    assert [day(t) for t in july_only["time"].values] == [reference for reference, _ in JULY]
    assert not os.path.exists(cube + ".rewrite")


def test_in_order_append_leaves_complete_chunks_of_both_layouts_untouched(tmp_path):
    cube = cube_path(tmp_path)
    july = make_rasters(tmp_path, "2023-07-01", JULY)
    stack_coherence_cube(LOCAL, july, cube, spatial_chunk=CHUNK, series_chunks=(2, 8))
    image_chunks = file_states(f"{cube}/coherence")
    series_chunks = file_states(f"{cube}/timeseries/coherence")
    assert image_chunks and series_chunks

    october = make_rasters(tmp_path, "2023-10-01", OCTOBER, level=0.2)
    summary = stack_coherence_cube(LOCAL, july + october, cube, spatial_chunk=CHUNK, series_chunks=(2, 8))

    assert summary.rewritten is False
    after_image, after_series = (
        file_states(f"{cube}/coherence"),
        file_states(f"{cube}/timeseries/coherence"),
    )
    assert {path: after_image[path] for path in image_chunks} == image_chunks
    # The two July pairs fill the first time chunk of every tile: October starts a new one.
    assert {path: after_series[path] for path in series_chunks} == series_chunks
    assert set(after_series) > set(series_chunks)


def test_both_layouts_hold_the_same_cube_in_their_own_chunks(tmp_path):
    cube = cube_path(tmp_path)
    shifted = (ORIGIN[0] - 3 * PIXEL_SIZE, ORIGIN[1] + 2 * PIXEL_SIZE)
    october = make_rasters(tmp_path, "2023-10-01", OCTOBER)
    stack_coherence_cube(LOCAL, october, cube, spatial_chunk=CHUNK, series_chunks=(2, 8))
    july = make_rasters(tmp_path, "2023-07-01", JULY, origin=shifted)
    stack_coherence_cube(LOCAL, october + july, cube, spatial_chunk=CHUNK, series_chunks=(2, 8))
    december = make_rasters(tmp_path, "2023-10-01", [(date(2023, 12, 4), date(2023, 12, 16))], level=0.3)

    stack_coherence_cube(LOCAL, october + july + december, cube, spatial_chunk=CHUNK, series_chunks=(2, 8))

    image = open_coherence_cube(LOCAL, cube)
    series = open_coherence_cube(LOCAL, cube, layout="timeseries")
    assert image["coherence"].encoding["chunks"] == (1, CHUNK, CHUNK)
    assert series["coherence"].encoding["chunks"] == (2, 8, 8)
    assert image.sizes["time"] == 4
    xr.testing.assert_identical(image["coherence"].load(), series["coherence"].load())
    xr.testing.assert_identical(
        xr.open_zarr(cube, group="timeseries").coherence, xr.open_zarr(cube).coherence
    )


def test_zero_filled_raster_without_nodata_tag_stores_nan_not_zero(tmp_path):
    values = coherence_values()
    values[np.isnan(values)] = 0.0
    values[:, :3] = 0.0
    rasters = make_rasters(tmp_path, "2023-07-01", JULY[:1], values=values, nodata=None)

    summary = stack_coherence_cube(LOCAL, rasters, cube_path(tmp_path), spatial_chunk=CHUNK)

    stored = xr.open_zarr(cube_path(tmp_path))["coherence"].isel(time=0).values
    assert not (stored == 0).any()
    assert np.isnan(stored[0]).all() and np.isnan(stored[:, :3]).all()
    valid = values[1:, 3:]
    np.testing.assert_array_equal(stored[1:, 3:], valid)
    assert mean_coherence_by_date(summary)[JULY[0][0]] == pytest.approx(float(valid.mean()), rel=1e-6)


def test_out_of_range_raster_in_an_append_leaves_the_cube_as_it_was(tmp_path):
    cube = cube_path(tmp_path)
    july = make_rasters(tmp_path, "2023-07-01", JULY)
    stack_coherence_cube(LOCAL, july, cube, spatial_chunk=CHUNK)
    before = xr.open_zarr(cube).load()
    values = coherence_values()
    values[20, 20] = 1.5
    broken = make_rasters(tmp_path, "2023-10-01", OCTOBER, values=values)

    with pytest.raises(
        InvalidRasterError, match=r"20231005_20231017\.tif has coherence values from .* to 1\.5"
    ):
        stack_coherence_cube(LOCAL, july + broken, cube, spatial_chunk=CHUNK)

    xr.testing.assert_identical(xr.open_zarr(cube).load(), before)
    xr.testing.assert_identical(xr.open_zarr(cube, group="timeseries").coherence.load(), before.coherence)


def test_cube_without_the_time_series_layout_is_rewritten_with_it(tmp_path):
    cube = cube_path(tmp_path)
    july = make_rasters(tmp_path, "2023-07-01", JULY)
    stack_coherence_cube(LOCAL, july, cube, spatial_chunk=CHUNK)
    shutil.rmtree(f"{cube}/timeseries")  # as a cube stacked before the layout existed

    summary = stack_coherence_cube(LOCAL, july, cube, spatial_chunk=CHUNK)

    assert (summary.added_pairs, summary.rewritten) == (0, True)
    xr.testing.assert_identical(
        open_coherence_cube(LOCAL, cube, layout="timeseries").coherence.load(),
        open_coherence_cube(LOCAL, cube).coherence.load(),
    )


def test_rewrite_interrupted_after_removing_the_old_cube_is_swapped_in(tmp_path):
    cube = cube_path(tmp_path)
    july = make_rasters(tmp_path, "2023-07-01", JULY)
    stack_coherence_cube(LOCAL, july, cube, spatial_chunk=CHUNK)
    expected = xr.open_zarr(cube).load()
    # What a crash between removing the old cube and moving its finished rewrite in leaves.
    shutil.move(cube, cube + ".rewrite")

    summary = stack_coherence_cube(LOCAL, july, cube, spatial_chunk=CHUNK)

    assert (summary.pair_count, summary.added_pairs) == (2, 0)
    xr.testing.assert_identical(xr.open_zarr(cube).load(), expected)
    assert not os.path.exists(cube + ".rewrite")


def peak_traced_bytes(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_stacking_memory_does_not_grow_with_the_number_of_pairs(tmp_path):
    def pairs(count: int, start: date):
        return [
            (start + timedelta(days=12 * index), start + timedelta(days=12 * (index + 1)))
            for index in range(count)
        ]

    shape = (200, 200)
    few = make_rasters(tmp_path / "few", "2023-07-01", pairs(4, date(2023, 7, 1)), values=None)
    many = make_rasters(tmp_path / "many", "2023-07-01", pairs(32, date(2023, 7, 1)), values=None)
    for raster in few + many:
        write_coherence_tif(raster.path, coherence_values(shape))

    def stack(rasters, root):
        return lambda: stack_coherence_cube(
            LOCAL, rasters, cube_path(root), spatial_chunk=32, series_chunks=(4, 16)
        )

    few_peak = peak_traced_bytes(stack(few, tmp_path / "few"))
    many_peak = peak_traced_bytes(stack(many, tmp_path / "many"))

    one_raster = shape[0] * shape[1] * 4
    # Holding every raster at once would add 28 rasters' worth; the stacker holds one batch of bands.
    assert many_peak - few_peak < 4 * one_raster, (few_peak, many_peak)
