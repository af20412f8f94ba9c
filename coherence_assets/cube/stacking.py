"""Stacking a burst's coherence rasters into one xarray cube stored as Zarr.

The cube (README, "Where outputs land") holds ``coherence`` as float32 on ``(time, y, x)``, or on
``(pair, y, x)`` when several temporal baselines make reference dates ambiguous, with NaN
where there is no data. One store holds it in two chunk layouts, because no single layout
serves both reads users make:

- the root group, chunked ``(1, 512, 512)``: one date's image reads a few chunks;
- the group ``timeseries``, the same dataset chunked ``(512, 32, 32)``: one pixel's series
  reads one chunk per 512 pairs (17 years of 12-day pairs, 5 of four baselines) instead of one
  per pair.

The store is Zarr format 2, both layouts compressed with Blosc (zstd, bit shuffle): GDAL 3.10
(rasterio's wheels, QGIS) reads format 2 but not format 3's mandatory ``bytes`` codec, and
compressed, the NaN padding of a partly filled time chunk costs next to nothing, so the store
stays about twice its GeoTIFFs at any number of pairs. The attributes follow CF-1.8: ``time``
has ``time_bnds`` (reference and secondary acquisition of each pair) as its cell bounds.

Pairs are stored sorted by reference (then secondary) date in both, so ``time`` increases in
the store and ``xr.open_zarr`` needs no sorting.

Growing the cube:

- Pairs already in the store are skipped, so re-stacking the same rasters writes nothing.
- New pairs that all come after the last stored one are appended: the image layout gets new
  chunks only; the time-series layout rewrites the last, partly filled time chunk of each
  tile (at most 511 old pairs) and adds new ones.
- Anything else rewrites the whole cube into a sibling store that then replaces it: a window
  that lands before stored pairs (a backfill), a raster reaching beyond the cube's extent (the
  union grid grows; old pixels padded with NaN), or a store of an older layout. That costs
  reading and writing every stored pair once.
- A write is committed by writing ``complete_pair_count`` in the group attributes after the
  data. A store whose arrays are longer than that count was interrupted mid-append and is
  truncated back before anything else; one without the attribute never finished its first
  write and is removed, to be rebuilt from the rasters.

Each raster is opened once per stacking and decoded once: it is read in 512 x 512 tiles, and
the same blocks are validated (structure, coherence range) and written to both layouts.
Memory is bounded by two buffers of at most 128 pairs x one tile (256 MB), whatever the number
of pairs and the size of the burst.
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import posixpath
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date
from typing import Literal, NamedTuple

import dask.array as da
import fsspec
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
import zarr
from affine import Affine
from fsspec.implementations.local import LocalFileSystem
from numcodecs import Blosc
from rasterio.errors import RasterioError
from rasterio.windows import Window

from coherence_assets.cube.grid_alignment import RasterGrid, pixel_offset, union_grid
from coherence_assets.pairs.pair import Pair
from coherence_assets.raster_files.names import parse_raster_file_name
from coherence_assets.raster_files.validation import (
    InvalidRasterError,
    ValueStatistics,
    check_structure,
    masked_block,
    open_coherence_raster,
)
from coherence_assets.storage import move_tree

log = logging.getLogger(__name__)

VARIABLE = "coherence"
TIME_DIM = "time"
PAIR_DIM = "pair"
SERIES_GROUP = "timeseries"
DEFAULT_SPATIAL_CHUNK = 512
# (pairs, pixels): a pixel's series over 512 pairs is one 2 MB chunk (before compression; the NaN
# padding of a partly filled one compresses to almost nothing, but is decoded). The number of
# chunks, more than their bytes, sets the cost of such small reads: measured on one store against
# a single-chunk layout, 500 pairs read 1.2x at 256 deep and 1.0x at 512; 240 pairs 1.0x at 256
# and 1.15x at 512 (the padding).
DEFAULT_SERIES_CHUNKS = (512, 32)
ZARR_FORMAT = 2
# zstd with bit shuffle: each layout a little smaller than the deflate GeoTIFFs (LZ4 is 10 %
# larger, which two layouts cannot afford), and still fast to decode. GDAL reads Blosc.
COMPRESSOR = Blosc(cname="zstd", clevel=5, shuffle=Blosc.BITSHUFFLE)
COMPLETE_PAIR_COUNT_ATTR = "complete_pair_count"
BOUNDS_DIM = "bnds"
_TIME_BOUNDS = "time_bnds"
# chunk files in folders per leading index ("3/0/1"), not thousands side by side; GDAL reads both
_SEPARATOR_KEY = "chunk_key_encoding"
_CHUNK_KEY_ENCODING = {"name": "v2", "separator": "/"}
REWRITE_SUFFIX = ".rewrite"
_GROUP_METADATA = ".zgroup"
# format 3 stores, written before the cube moved to format 2, are rewritten when next stacked
_FORMAT_3_METADATA = "zarr.json"
# Pairs read and written together at most: a quarter of a time chunk of the time-series layout,
# which is then written in four steps (each re-encodes the chunk), for a quarter of the memory.
_BATCH_PAIRS = 128
# GeoTIFFs of one batch decoded at once; more threads than cores only add memory.
_READ_THREADS = min(4, os.cpu_count() or 1)
# Leading-dim coordinates are tiny; large chunks keep them to a few objects in the store.
_COORDINATE_CHUNK = 1024
_EPOCH = np.datetime64("1970-01-01", "D")
# int32 days: CF-1.8 knows no 64-bit integers, and days since 1970 fit in 32 bits for millennia
_DATE_ENCODING = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int32"}
# No valid_min/valid_max: Zarr keeps attributes as JSON, without a type, so every export would
# write them as double, which CF forbids for float data; the range is in the comment instead.
_COHERENCE_ATTRS = {
    "long_name": "interferometric coherence",
    "units": "1",
    "comment": "magnitude of the complex correlation of the pair's two acquisitions, from 0 to 1",
}
_GLOBAL_ATTRS = {
    "Conventions": "CF-1.8",
    "title": "Sentinel-1 InSAR coherence time series of one burst",
    "source": "coherence-assets",
    # CF asks for an audit trail; the provenance passed as global_attributes replaces it
    "history": "stacked by coherence-assets from Sentinel-1 coherence GeoTIFFs, one per pair",
}

Chunks = tuple[int, int, int]
# Values a CF global attribute may take (Zarr attributes are JSON).
AttributeValue = str | int | float


class PairRaster(NamedTuple):
    """A stored coherence raster and the pair it holds."""

    path: str
    reference_date: date
    secondary_date: date

    @property
    def pair(self) -> Pair:
        return self.reference_date, self.secondary_date


@dataclass(frozen=True)
class CubeSummary:
    """What the cube holds after stacking, for logs and asset metadata."""

    cube_path: str
    pairs: pd.DataFrame
    grid_shape: tuple[int, int]
    added_pairs: int
    rewrite_reason: str | None = None

    @property
    def rewritten(self) -> bool:
        """True when the whole cube was rewritten (see :attr:`rewrite_reason`), not appended to."""
        return self.rewrite_reason is not None

    @property
    def pair_count(self) -> int:
        return len(self.pairs)

    @property
    def dates(self) -> list[date]:
        """Reference dates, sorted and unique."""
        return sorted(set(self.pairs["reference_date"]))


def find_pair_rasters(fs: fsspec.AbstractFileSystem, rasters_root: str) -> list[PairRaster]:
    """All stored rasters of one burst (``<root>/<window>/<YYYYMMDD>_<YYYYMMDD>.tif``)."""
    paths = sorted(fs.glob(f"{rasters_root.rstrip('/')}/*/*.tif"))
    return [PairRaster(path, *parse_raster_file_name(path)) for path in paths]


def open_coherence_cube(
    fs: fsspec.AbstractFileSystem, cube_path: str, layout: Literal["image", "timeseries"] = "image"
) -> xr.Dataset:
    """The stored cube, lazily, in the chunk layout that suits the read.

    ``"image"`` (the store's root, what plain ``xr.open_zarr`` gives) for maps of a few dates,
    ``"timeseries"`` for the series of a few pixels or areas. Both hold the same values. The
    image layout's dask chunks hold a date's whole image: one task reads its zarr chunks
    concurrently, instead of one task each.
    """
    if layout not in ("image", "timeseries"):
        raise ValueError(f"layout must be 'image' or 'timeseries', got {layout!r}")
    store = open_zarr_store(fs, cube_path)
    if layout == "image":
        dataset = _open_dataset(store, chunks={"y": -1, "x": -1})
    else:
        # its own zarr chunks: dask chunks along every pair measured slower (benchmarks/cube_stacking.py)
        dataset = _open_dataset(store, group=SERIES_GROUP)
    # xarray gives float variables without a _FillValue one when it writes them (to_netcdf too);
    # CF forbids it on coordinate variables, which never miss a value.
    for name in ("x", "y"):
        dataset[name].encoding["_FillValue"] = None
    return dataset


def stack_coherence_cube(
    fs: fsspec.AbstractFileSystem,
    rasters: Iterable[PairRaster | tuple[str, date, date]],
    cube_path: str,
    *,
    pair_dim: bool = False,
    spatial_chunk: int = DEFAULT_SPATIAL_CHUNK,
    series_chunks: tuple[int, int] = DEFAULT_SERIES_CHUNKS,
    global_attributes: Mapping[str, AttributeValue] | None = None,
) -> CubeSummary:
    """Add the pairs of ``rasters`` that the cube at ``cube_path`` does not hold yet.

    Parameters
    ----------
    rasters
        ``(path, reference_date, secondary_date)`` of every raster of the burst; pairs already
        in the cube are skipped, so passing all of them each time is cheap.
    pair_dim
        Stack along ``pair`` instead of ``time``; needed when several temporal baselines
        give one reference date several pairs.
    spatial_chunk
        Chunk size in x and y of the image layout (one pair per chunk), for new stores.
    series_chunks
        ``(pairs, pixels)`` chunk size of the time-series layout, for new stores.
    global_attributes
        CF global attributes (such as ``history``, ``source``, ``references``) set on both
        layouts with every commit, over the cube's own; written even when no pair is new, so
        that the cube always describes its latest stacking.

    Raises
    ------
    InvalidRasterError
        If a new raster is not a valid coherence GeoTIFF; nothing of the stacking is kept.
    GridMisalignmentError
        If a new raster does not lie pixel on pixel with the cube or the other rasters.
    ValueError
        If two rasters hold the same pair, a reference date repeats without ``pair_dim``, or
        the cube was built with the other leading dimension.
    """
    if spatial_chunk < 1 or min(series_chunks) < 1:
        raise ValueError(
            f"chunk sizes must be positive, got spatial_chunk={spatial_chunk}, series_chunks={series_chunks}"
        )
    leading = PAIR_DIM if pair_dim else TIME_DIM
    unique = _unique_rasters(rasters)
    store = open_zarr_store(fs, cube_path)
    existing = _open_committed(fs, store, cube_path)
    if existing is not None:
        _check_leading_dim(existing, leading, cube_path)
    stored = _stored_pairs(existing)
    new = sorted((raster for raster in unique if raster.pair not in stored), key=lambda raster: raster.pair)
    if not pair_dim:
        _check_unique_reference_dates([*stored, *(raster.pair for raster in new)], cube_path)
    if existing is None and not new:
        raise ValueError(f"no coherence rasters to stack into {cube_path}; expected at least one")
    outdated = existing is not None and _outdated_layout(fs, cube_path, existing)
    attributes = dict(global_attributes or {})
    if not new and not outdated:
        log.info("cube %s already holds all %d pairs", cube_path, len(stored))
        if any(existing.attrs.get(name) != value for name, value in attributes.items()):
            _commit(store, len(stored), attributes)
            existing = _open_dataset(store)
        return _summarise(existing, cube_path, added=0, rewrite_reason=None)
    layout = _Layout(leading, spatial_chunk, series_chunks, attributes)
    rewrite_reason = _store_new_pairs(fs, cube_path, existing, new, layout, outdated)
    how = rewrite_reason or ("a new cube" if existing is None else "appended")
    log.info("stacked %d new pairs into %s (%s)", len(new), cube_path, how)
    return _summarise(
        _open_dataset(open_zarr_store(fs, cube_path)),
        cube_path,
        added=len(new),
        rewrite_reason=rewrite_reason,
    )


@dataclass(frozen=True)
class _Layout:
    """Leading dimension and chunk sizes asked for; an existing store keeps its own chunks."""

    leading: str
    spatial_chunk: int
    series_chunks: tuple[int, int]
    global_attributes: Mapping[str, AttributeValue]

    def image_chunks(self, grid: RasterGrid) -> Chunks:
        return 1, min(self.spatial_chunk, grid.height), min(self.spatial_chunk, grid.width)

    def series_chunks_for(self, grid: RasterGrid) -> Chunks:
        pairs, pixels = self.series_chunks
        return pairs, min(pixels, grid.height), min(pixels, grid.width)


def _store_new_pairs(
    fs: fsspec.AbstractFileSystem,
    cube_path: str,
    existing: xr.Dataset | None,
    new: Sequence[PairRaster],
    layout: _Layout,
    outdated: bool,
) -> str | None:
    """Validate, align and write ``new``; why the whole cube had to be rewritten, None if appended."""
    grids = [_grid_of_raster(fs, raster.path) for raster in new]
    if existing is None:
        target = union_grid(grids, source=cube_path)
        layers = [_RasterLayer(fs, raster, grid, target) for raster, grid in zip(new, grids, strict=True)]
        _build_store(fs, cube_path, target, layers, layout)
        return None
    cube_grid = _grid_of_cube(existing, cube_path)
    target = union_grid([cube_grid, *grids], source=cube_path)
    new_layers = [_RasterLayer(fs, raster, grid, target) for raster, grid in zip(new, grids, strict=True)]
    stored = _stored_pairs(existing)
    in_order = not stored or not new or new[0].pair > max(stored)
    if cube_grid.same_grid_as(target) and in_order and not outdated:
        _append(fs, cube_path, existing, new_layers, layout.global_attributes)
        return None
    reason = (
        f"rewritten on a grid grown from {cube_grid.shape} to {target.shape} pixels"
        if not cube_grid.same_grid_as(target)
        else "rewritten in the current layout"
        if outdated
        else f"rewritten in date order: new pairs from {new[0].reference_date} precede stored ones"
    )
    log.info("cube %s with %d pairs is %s", cube_path, existing.sizes[layout.leading] + len(new), reason)
    root = zarr.open_group(open_zarr_store(fs, cube_path), mode="r", use_consolidated=False)
    old_layers = _stored_layers(root, existing, cube_grid, target)
    layers = sorted([*old_layers, *new_layers], key=lambda layer: layer.pair)
    rewrite_path = cube_path + REWRITE_SUFFIX
    if fs.exists(rewrite_path):
        fs.rm(rewrite_path, recursive=True)
    _build_store(fs, rewrite_path, target, layers, layout)
    fs.rm(cube_path, recursive=True)
    move_tree(fs, rewrite_path, cube_path)
    return reason


class _RasterLayer:
    """One new raster, read band by band onto the target grid (NaN where it has no pixel).

    The blocks it reads are the ones written, and they feed the range check and the mean:
    the raster is decoded exactly once.
    """

    def __init__(
        self, fs: fsspec.AbstractFileSystem, raster: PairRaster, grid: RasterGrid, target: RasterGrid
    ) -> None:
        self.fs, self.raster, self.grid = fs, raster, grid
        self.offset = pixel_offset(grid, within=target)
        self.width = target.width
        self.statistics = ValueStatistics(raster.path, grid.height * grid.width)
        self._source = None

    @property
    def pair(self) -> Pair:
        return self.raster.pair

    @property
    def mean_coherence(self) -> float:
        return self.statistics.mean_coherence

    def open(self, stack: ExitStack) -> None:
        self._source = stack.enter_context(open_coherence_raster(self.fs, self.raster.path))

    def read_tile(self, rows: slice, columns: slice, out: np.ndarray) -> None:
        """The tile ``rows`` x ``columns`` of the target grid into ``out`` (already NaN)."""
        overlap = _overlap(self.offset, self.grid, rows, columns)
        if overlap is None:
            return
        (first_row, last_row), (first_column, last_column), (top, left) = overlap
        window = Window(first_column, first_row, last_column - first_column, last_row - first_row)
        try:
            block = masked_block(self._source, window)
        except RasterioError as error:
            raise InvalidRasterError(f"{self.raster.path} is corrupt or not a GeoTIFF: {error}") from error
        self.statistics.add(block)
        out[top : top + block.shape[0], left : left + block.shape[1]] = block

    def close(self) -> None:
        self._source = None
        self.statistics.check_range()


class _StoredLayer:
    """One pair already in the cube, read back from its image layout onto the target grid."""

    def __init__(
        self, array: zarr.Array, index: int, pair: Pair, mean: float, grid: RasterGrid, target: RasterGrid
    ) -> None:
        self.array, self.index, self.pair, self.mean_coherence, self.grid = array, index, pair, mean, grid
        self.offset = pixel_offset(grid, within=target)

    def open(self, stack: ExitStack) -> None:
        """Nothing to open: the store stays open for the whole rewrite."""

    def read_tile(self, rows: slice, columns: slice, out: np.ndarray) -> None:
        overlap = _overlap(self.offset, self.grid, rows, columns)
        if overlap is not None:
            (first_row, last_row), (first_column, last_column), (top, left) = overlap
            out[top : top + last_row - first_row, left : left + last_column - first_column] = self.array[
                self.index, first_row:last_row, first_column:last_column
            ]

    def close(self) -> None:
        """Stored pairs were validated when they were stacked."""


_Layer = _RasterLayer | _StoredLayer


def _overlap(
    offset: tuple[int, int], grid: RasterGrid, rows: slice, columns: slice
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None:
    """Where a layer at ``offset`` meets a tile of the target grid: its own row and column
    ranges, and their top-left position in the tile; None if they do not meet."""
    row_offset, column_offset = offset
    first_row, last_row = max(rows.start - row_offset, 0), min(rows.stop - row_offset, grid.height)
    first_column = max(columns.start - column_offset, 0)
    last_column = min(columns.stop - column_offset, grid.width)
    if first_row >= last_row or first_column >= last_column:
        return None
    position = (first_row + row_offset - rows.start, first_column + column_offset - columns.start)
    return (first_row, last_row), (first_column, last_column), position


def _stored_layers(
    root: zarr.Group, existing: xr.Dataset, cube_grid: RasterGrid, target: RasterGrid
) -> list[_StoredLayer]:
    pairs = zip(_dates(existing[TIME_DIM].values), _dates(existing["secondary_time"].values), strict=True)
    means = existing["mean_coherence"].values
    return [
        _StoredLayer(root[VARIABLE], index, pair, float(means[index]), cube_grid, target)
        for index, pair in enumerate(pairs)
    ]


def _build_store(
    fs: fsspec.AbstractFileSystem, path: str, target: RasterGrid, layers: Sequence[_Layer], layout: _Layout
) -> None:
    """Write a new store at ``path`` holding ``layers`` in order; nothing stays if it fails."""
    store = open_zarr_store(fs, path)
    template = _coherence_dataset(
        reference_dates=[layer.pair[0] for layer in layers],
        secondary_dates=[layer.pair[1] for layer in layers],
        grid=target,
        leading=layout.leading,
    )
    image_chunks, series_chunks = layout.image_chunks(target), layout.series_chunks_for(target)
    try:
        _write_template(template, store, image_chunks, group=None)
        _write_template(template, store, series_chunks, group=SERIES_GROUP)
        root = zarr.open_group(store, mode="r+", use_consolidated=False)
        _write_layers(root, 0, layers)
    except BaseException:
        if fs.exists(path):
            fs.rm(path, recursive=True)
        raise
    _commit(store, len(layers), layout.global_attributes)


def _append(
    fs: fsspec.AbstractFileSystem,
    cube_path: str,
    existing: xr.Dataset,
    layers: Sequence[_RasterLayer],
    global_attributes: Mapping[str, AttributeValue],
) -> None:
    """Grow the arrays along the leading dim and fill the new entries; old image chunks stay as they are."""
    store = open_zarr_store(fs, cube_path)
    committed = existing.sizes[existing[VARIABLE].dims[0]]
    root = zarr.open_group(store, mode="r+", use_consolidated=False)
    try:
        for array in _leading_arrays(root):
            array.resize((committed + len(layers), *array.shape[1:]))
        _write_layers(root, committed, layers)
    except BaseException:
        _open_committed(fs, store, cube_path)  # truncates back to the committed pairs
        raise
    _commit(store, committed + len(layers), global_attributes)


def _write_layers(root: zarr.Group, start: int, layers: Sequence[_Layer]) -> None:
    """Fill entries ``start`` onwards of both layouts with ``layers``, then their coordinates.

    Layers go in batches of at most ``_BATCH_PAIRS`` that end on the time-series layout's chunk
    boundaries, so each of its chunks is written once or twice per stacking; each batch is read in tiles that cover whole chunks of
    both layouts, so memory does not grow with the burst's width either. One tile is written
    while the next is read, into a second buffer.
    """
    image, series = root[VARIABLE], root[f"{SERIES_GROUP}/{VARIABLE}"]
    height, width = image.shape[1:]
    tile_height = math.lcm(image.chunks[1], series.chunks[1])
    tile_width = math.lcm(image.chunks[2], series.chunks[2])
    batch_pairs = min(series.chunks[0], _BATCH_PAIRS)
    buffer_shape = (min(batch_pairs, len(layers)), min(tile_height, height), min(tile_width, width))
    buffers = [np.empty(buffer_shape, dtype=np.float32) for _ in range(2)]
    tiles_read = 0
    pending_write: Future | None = None
    with ThreadPoolExecutor(_READ_THREADS) as readers, ThreadPoolExecutor(1) as writer:
        for batch_start, batch in _batches(start, layers, batch_pairs):
            positions = slice(batch_start, batch_start + len(batch))
            with ExitStack() as opened:
                for layer in batch:
                    layer.open(opened)
                for row in range(0, height, tile_height):
                    for column in range(0, width, tile_width):
                        rows = slice(row, min(row + tile_height, height))
                        columns = slice(column, min(column + tile_width, width))
                        # This buffer's last tile was written before the previous tile was queued.
                        tile = buffers[tiles_read % 2][
                            : len(batch), : rows.stop - rows.start, : columns.stop - columns.start
                        ]
                        tiles_read += 1
                        _read_tile(readers, batch, rows, columns, tile)
                        if pending_write is not None:
                            pending_write.result()
                        pending_write = writer.submit(
                            _write_tile, (image, series), (positions, rows, columns), tile
                        )
            for layer in batch:
                layer.close()
        if pending_write is not None:
            pending_write.result()
    _write_coordinates(root, start, layers)


def _read_tile(
    readers: ThreadPoolExecutor, batch: Sequence[_Layer], rows: slice, columns: slice, tile: np.ndarray
) -> None:
    """The tile ``rows`` x ``columns`` of every layer of ``batch``, NaN where a layer has no pixel."""
    tile.fill(np.nan)
    # GDAL decodes without holding the GIL: the layers' reads share the cores. Each read runs
    # in a copy of this context, where rasterio keeps fsspec openers.
    reads = [
        readers.submit(contextvars.copy_context().run, layer.read_tile, rows, columns, out)
        for layer, out in zip(batch, tile, strict=True)
    ]
    for read in reads:
        read.result()


def _write_tile(arrays: Sequence[zarr.Array], region: tuple[slice, slice, slice], tile: np.ndarray) -> None:
    for array in arrays:
        array[region] = tile


def _batches(start: int, layers: Sequence[_Layer], chunk: int) -> Iterator[tuple[int, Sequence[_Layer]]]:
    """``(position, layers)`` runs of ``layers`` placed from ``start``, cut at multiples of ``chunk``."""
    position, done = start, 0
    while done < len(layers):
        size = min(chunk - position % chunk, len(layers) - done)
        yield position, layers[done : done + size]
        position, done = position + size, done + size


def _write_coordinates(root: zarr.Group, start: int, layers: Sequence[_Layer]) -> None:
    reference = np.array([layer.pair[0] for layer in layers], dtype="datetime64[D]")
    secondary = np.array([layer.pair[1] for layer in layers], dtype="datetime64[D]")
    reference_days, secondary_days = (
        (reference - _EPOCH).astype(np.int32),
        (secondary - _EPOCH).astype(np.int32),
    )
    values = {
        TIME_DIM: reference_days,
        "secondary_time": secondary_days,
        _TIME_BOUNDS: np.column_stack([reference_days, secondary_days]),
        "temporal_baseline": (secondary - reference).astype(np.int32),
        "mean_coherence": np.array([layer.mean_coherence for layer in layers], dtype=np.float32),
    }
    stop = start + len(layers)
    for group in (root, root[SERIES_GROUP]):
        for name, value in values.items():
            group[name][start:stop] = value


def _leading_arrays(root: zarr.Group) -> list[zarr.Array]:
    """The arrays of both layouts that run along the leading (pair) dimension."""
    leading = _dimension_names(root[VARIABLE])[0]
    groups = [root, *([root[SERIES_GROUP]] if SERIES_GROUP in root else [])]
    return [
        array for group in groups for _, array in group.arrays() if _dimension_names(array)[:1] == (leading,)
    ]


def _dimension_names(array: zarr.Array) -> tuple[str, ...]:
    """Format 3 keeps them in the metadata, format 2 in xarray's ``_ARRAY_DIMENSIONS`` attribute."""
    names = getattr(array.metadata, "dimension_names", None) or array.attrs.get("_ARRAY_DIMENSIONS")
    return tuple(names or ())


def _outdated_layout(fs: fsspec.AbstractFileSystem, cube_path: str, existing: xr.Dataset) -> bool:
    """True for a store of an older layout (format 3, no time-series layout) or appended out of order."""
    has_series = fs.exists(posixpath.join(cube_path, SERIES_GROUP, _GROUP_METADATA))
    order = np.lexsort((existing["secondary_time"].values, existing[TIME_DIM].values))
    return not has_series or not np.array_equal(order, np.arange(order.size))


def _coherence_dataset(
    reference_dates: Sequence[date],
    secondary_dates: Sequence[date],
    grid: RasterGrid,
    leading: str,
) -> xr.Dataset:
    """The cube's layout, CF attributes and grid mapping; ``coherence`` is a lazy placeholder."""
    reference = np.asarray(reference_dates, dtype="datetime64[ns]")
    secondary = np.asarray(secondary_dates, dtype="datetime64[ns]")
    baseline = ((secondary - reference) // np.timedelta64(1, "D")).astype(np.int32)
    coords = {
        TIME_DIM: (
            leading,
            reference,
            {"standard_name": "time", "long_name": "reference acquisition date", "bounds": _TIME_BOUNDS},
        ),
        # CF cell bounds: each pair's coherence describes the interval between its two acquisitions
        _TIME_BOUNDS: ((leading, BOUNDS_DIM), np.column_stack([reference, secondary])),
        "secondary_time": (leading, secondary, {"long_name": "secondary acquisition date"}),
        "temporal_baseline": (
            leading,
            baseline,
            {"long_name": "temporal baseline, secondary minus reference date", "units": "days"},
        ),
        "mean_coherence": (
            leading,
            np.full(reference.size, np.nan, dtype=np.float32),
            {"long_name": "spatial mean coherence over valid pixels", "units": "1"},
        ),
        "y": ("y", grid.y_coordinates()),
        "x": ("x", grid.x_coordinates()),
    }
    placeholder = da.empty((reference.size, *grid.shape), dtype=np.float32, chunks=-1)
    dataset = xr.Dataset(
        {VARIABLE: ((leading, "y", "x"), placeholder, dict(_COHERENCE_ATTRS))},
        coords=coords,
        attrs=dict(_GLOBAL_ATTRS),
    )
    dataset = (
        dataset.rio.write_crs(grid.crs_wkt).rio.write_transform(grid.transform).rio.write_coordinate_system()
    )
    # rioxarray moves grid_mapping into the encoding, which to_zarr(encoding=...) replaces:
    # keep it an attribute so it reaches the store.
    grid_mapping = dataset[VARIABLE].encoding.pop("grid_mapping")
    dataset[VARIABLE].attrs["grid_mapping"] = grid_mapping
    dataset[grid_mapping].attrs["long_name"] = "coordinate reference system of the UTM grid"
    return dataset


def _write_template(
    template: xr.Dataset, store: zarr.abc.store.Store | str, chunks: Chunks, group: str | None
) -> None:
    """Metadata and coordinates of one layout; ``coherence`` itself is filled by :func:`_write_layers`."""
    coordinate_encoding = {"chunks": (_COORDINATE_CHUNK,), _SEPARATOR_KEY: _CHUNK_KEY_ENCODING}
    # Coordinates never miss a value: no _FillValue, which CF does not allow on them.
    no_fill = {"_FillValue": None}
    encoding = {
        VARIABLE: {
            "chunks": chunks,
            "_FillValue": np.float32(np.nan),
            "dtype": "float32",
            "compressors": (COMPRESSOR,),
            _SEPARATOR_KEY: _CHUNK_KEY_ENCODING,
        },
        TIME_DIM: {**_DATE_ENCODING, **coordinate_encoding},
        _TIME_BOUNDS: {**_DATE_ENCODING, **coordinate_encoding, "chunks": (_COORDINATE_CHUNK, 2)},
        "secondary_time": {**_DATE_ENCODING, **coordinate_encoding},
        "temporal_baseline": {"dtype": "int32", **coordinate_encoding},
        "mean_coherence": {"dtype": "float32", **coordinate_encoding},
        "x": no_fill,
        "y": no_fill,
        "spatial_ref": {"dtype": "int32"},
    }
    # compute=False writes every array's metadata and the in-memory coordinates, not the
    # placeholder, which is one dask chunk (a graph of one task, whatever the cube's size) that
    # is never computed: xarray's check that dask chunks match the store's does not apply.
    template.to_zarr(
        store,
        group=group,
        mode="w-",
        encoding=encoding,
        zarr_format=ZARR_FORMAT,
        consolidated=False,
        compute=False,
        safe_chunks=False,
    )


def _commit(
    store: zarr.abc.store.Store | str,
    pair_count: int,
    global_attributes: Mapping[str, AttributeValue] | None = None,
) -> None:
    """Record that ``pair_count`` pairs are completely written, set ``global_attributes`` on both
    layouts, then consolidate metadata."""
    group = zarr.open_group(store, mode="r+", use_consolidated=False)
    if global_attributes:
        for layout in (group, *([group[SERIES_GROUP]] if SERIES_GROUP in group else [])):
            layout.attrs.update(dict(global_attributes))
    group.attrs[COMPLETE_PAIR_COUNT_ATTR] = pair_count
    with warnings.catch_warnings():
        # Consolidated metadata is a zarr-python extension to Zarr v3; readers that lack it
        # fall back to the per-array metadata, and those that have it open the cube faster.
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(store)


def _open_committed(
    fs: fsspec.AbstractFileSystem, store: zarr.abc.store.Store | str, cube_path: str
) -> xr.Dataset | None:
    """The cube as last committed, undoing an interrupted write first; None if there is none."""
    rewrite_path = cube_path + REWRITE_SUFFIX
    if not _has_group(fs, cube_path) and _is_committed(fs, rewrite_path):
        log.warning("cube %s was interrupted while its rewrite replaced it; finishing the swap", cube_path)
        if fs.exists(cube_path):
            fs.rm(cube_path, recursive=True)
        move_tree(fs, rewrite_path, cube_path)
    if not _has_group(fs, cube_path):
        return None
    group = zarr.open_group(store, mode="r+", use_consolidated=False)
    committed = group.attrs.get(COMPLETE_PAIR_COUNT_ATTR)
    if committed is None or VARIABLE not in group.array_keys():
        log.warning(
            "cube %s never finished its first write; removing it to rebuild from the rasters", cube_path
        )
        fs.rm(cube_path, recursive=True)
        return None
    truncated = False
    for array in _leading_arrays(group):
        if array.shape[0] > committed:
            array.resize((committed, *array.shape[1:]))
            truncated = True
    if truncated:
        log.warning("cube %s had an interrupted append; truncated back to %d pairs", cube_path, committed)
        _commit(store, committed)
    return _open_dataset(store)


def _has_group(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    return any(fs.exists(posixpath.join(path, name)) for name in (_GROUP_METADATA, _FORMAT_3_METADATA))


def _is_committed(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    if not _has_group(fs, path):
        return False
    group = zarr.open_group(open_zarr_store(fs, path), mode="r", use_consolidated=False)
    return COMPLETE_PAIR_COUNT_ATTR in group.attrs


def _open_dataset(
    store: zarr.abc.store.Store | str, group: str | None = None, chunks: dict[str, int] | None = None
) -> xr.Dataset:
    """The stored dataset, lazily; ``chunks`` merges zarr chunks into larger dask chunks along those dims."""
    # decode_timedelta=False: temporal_baseline is an integer number of days, not a timedelta.
    options = {"chunks": chunks} if chunks else {}
    return xr.open_zarr(store, group=group, consolidated=False, decode_timedelta=False, **options)


def open_zarr_store(fs: fsspec.AbstractFileSystem, path: str) -> zarr.abc.store.Store | str:
    """A local path for zarr's own LocalStore, an fsspec-backed store anywhere else."""
    if isinstance(fs, LocalFileSystem):
        return path
    return zarr.storage.FsspecStore.from_mapper(fs.get_mapper(path))


def _check_leading_dim(existing: xr.Dataset, leading: str, cube_path: str) -> None:
    stored = existing[VARIABLE].dims[0]
    if stored != leading:
        raise ValueError(
            f"cube {cube_path} stacks pairs along {stored!r} but {leading!r} was requested; the number of "
            f"temporal baselines changed, so delete the cube to rebuild it (pair_dim={leading == PAIR_DIM})"
        )


def _stored_pairs(existing: xr.Dataset | None) -> set[Pair]:
    if existing is None:
        return set()
    return set(zip(_dates(existing[TIME_DIM].values), _dates(existing["secondary_time"].values), strict=True))


def _check_unique_reference_dates(pairs: Iterable[Pair], cube_path: str) -> None:
    seen: dict[date, Pair] = {}
    for pair in pairs:
        if pair[0] in seen and seen[pair[0]] != pair:
            raise ValueError(
                f"pairs {seen[pair[0]][0]}/{seen[pair[0]][1]} and {pair[0]}/{pair[1]} of {cube_path} share "
                "reference date; a (time, y, x) cube holds one pair per reference date: stack with "
                "pair_dim=True when several temporal baselines are configured"
            )
        seen[pair[0]] = pair


def _unique_rasters(rasters: Iterable[PairRaster | tuple[str, date, date]]) -> list[PairRaster]:
    by_pair: dict[Pair, PairRaster] = {}
    for raster in map(PairRaster._make, rasters):
        known = by_pair.setdefault(raster.pair, raster)
        if known.path != raster.path:
            raise ValueError(
                f"rasters {known.path} and {raster.path} both hold pair {raster.reference_date}/"
                f"{raster.secondary_date}; expected one raster per pair"
            )
    return list(by_pair.values())


def _grid_of_raster(fs: fsspec.AbstractFileSystem, path: str) -> RasterGrid:
    """The grid of a raster from its header, after checking its structure (no pixel is decoded)."""
    try:
        with open_coherence_raster(fs, path) as source:
            check_structure(source, path)
            return RasterGrid(
                source=path, crs_wkt=source.crs.to_wkt(), transform=source.transform, shape=source.shape
            )
    except RasterioError as error:
        raise InvalidRasterError(f"{path} is corrupt or not a GeoTIFF: {error}") from error


def _grid_of_cube(dataset: xr.Dataset, cube_path: str) -> RasterGrid:
    # The GeoTransform as written, not one recomputed from float pixel-centre coordinates,
    # so the alignment check compares exactly what the rasters declared.
    geotransform = [float(term) for term in dataset["spatial_ref"].attrs["GeoTransform"].split()]
    return RasterGrid(
        source=cube_path,
        crs_wkt=dataset["spatial_ref"].attrs["crs_wkt"],
        transform=Affine.from_gdal(*geotransform),
        shape=(dataset.sizes["y"], dataset.sizes["x"]),
    )


def _summarise(dataset: xr.Dataset, cube_path: str, added: int, rewrite_reason: str | None) -> CubeSummary:
    pairs = pd.DataFrame(
        {
            "reference_date": _dates(dataset[TIME_DIM].values),
            "secondary_date": _dates(dataset["secondary_time"].values),
            "temporal_baseline_days": dataset["temporal_baseline"].values.astype(int),
            "mean_coherence": dataset["mean_coherence"].values.astype(float),
        }
    )
    pairs = pairs.sort_values(["reference_date", "secondary_date"], ignore_index=True)
    return CubeSummary(
        cube_path=cube_path,
        pairs=pairs,
        grid_shape=(dataset.sizes["y"], dataset.sizes["x"]),
        added_pairs=added,
        rewrite_reason=rewrite_reason,
    )


def _dates(values: np.ndarray) -> list[date]:
    return [timestamp.date() for timestamp in pd.to_datetime(values)]
