"""Stacking a burst's coherence rasters into one xarray cube stored as Zarr.

The cube (DESIGN.md "Assets") holds ``coherence`` as float32 on ``(time, y, x)``, or on
``(pair, y, x)`` when several temporal baselines make reference dates ambiguous, with NaN
where there is no data. It is built lazily with dask, one pair and one 512 x 512 tile per
chunk, so memory stays bounded whatever the number of pairs.

Growing the cube:

- Pairs already in the store are never read or rewritten: new pairs are appended with
  ``to_zarr(append_dim=...)``, so re-stacking the same rasters writes nothing.
- When a new raster reaches beyond the cube's extent, the union grid grows. That is the one
  case in which the cube is rewritten: old and new pairs go to a sibling store on the union
  grid (old pixels padded with NaN), which then replaces the cube.
- An append is committed by writing ``complete_pair_count`` in the group attributes after
  the data. A store whose arrays are longer than that count was interrupted mid-append and is
  truncated back before anything else; one without the attribute never finished its first
  write and is removed, to be rebuilt from the rasters.
- Pairs are stored in the order they were appended (sorted within each append); a backfill of
  older windows therefore lands after newer ones. :func:`open_coherence_cube` sorts by time.
"""

from __future__ import annotations

import logging
import posixpath
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import dask.array as da
import fsspec
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
import zarr
from affine import Affine
from dask.base import tokenize
from fsspec.implementations.local import LocalFileSystem
from rasterio.windows import Window

from coherence_assets.cube.grid_alignment import RasterGrid, pixel_offset, union_grid
from coherence_assets.rasters.asset_matching import parse_raster_file_name
from coherence_assets.rasters.validation import (
    RasterSummary,
    masked_block,
    open_coherence_raster,
    validate_coherence_raster,
)

log = logging.getLogger(__name__)

VARIABLE = "coherence"
TIME_DIM = "time"
PAIR_DIM = "pair"
DEFAULT_SPATIAL_CHUNK = 512
COMPLETE_PAIR_COUNT_ATTR = "complete_pair_count"
REWRITE_SUFFIX = ".rewrite"
# Leading-dim coordinates are tiny; large chunks keep them to a few objects in the store.
_COORDINATE_CHUNK = 1024
_DATE_ENCODING = {"units": "days since 1970-01-01", "calendar": "proleptic_gregorian", "dtype": "int64"}
_COHERENCE_ATTRS = {
    "long_name": "interferometric coherence",
    "units": "1",
    "valid_min": 0.0,
    "valid_max": 1.0,
}
_GLOBAL_ATTRS = {
    "Conventions": "CF-1.8",
    "title": "Sentinel-1 InSAR coherence time series of one burst",
    "source": "coherence-assets",
}

Pair = tuple[date, date]


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
    rewritten: bool

    @property
    def pair_count(self) -> int:
        return len(self.pairs)

    @property
    def dates(self) -> list[date]:
        """Reference dates, sorted and unique."""
        return sorted(set(self.pairs["reference_date"]))

    @property
    def mean_coherence_by_date(self) -> pd.Series:
        """Spatial mean coherence per pair, indexed by reference date (repeated per baseline)."""
        return self.pairs.set_index("reference_date")["mean_coherence"]


def find_pair_rasters(fs: fsspec.AbstractFileSystem, rasters_root: str) -> list[PairRaster]:
    """All stored rasters of one burst (``<root>/<window>/<YYYYMMDD>_<YYYYMMDD>.tif``)."""
    paths = sorted(fs.glob(f"{rasters_root.rstrip('/')}/*/*.tif"))
    return [PairRaster(path, *parse_raster_file_name(path)) for path in paths]


def open_coherence_cube(fs: fsspec.AbstractFileSystem, cube_path: str) -> xr.Dataset:
    """The stored cube, lazily, sorted by reference then secondary date (appends may not be)."""
    return _open_dataset(_zarr_store(fs, cube_path)).sortby([TIME_DIM, "secondary_time"])


def stack_coherence_cube(
    fs: fsspec.AbstractFileSystem,
    rasters: Iterable[PairRaster | tuple[str, date, date]],
    cube_path: str,
    *,
    pair_dim: bool = False,
    spatial_chunk: int = DEFAULT_SPATIAL_CHUNK,
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
        Zarr and dask chunk size in x and y; each chunk holds one pair.

    Raises
    ------
    InvalidRasterError
        If a new raster is not a valid coherence GeoTIFF.
    GridMisalignmentError
        If a new raster does not lie pixel on pixel with the cube or the other rasters.
    ValueError
        If two rasters hold the same pair, a reference date repeats without ``pair_dim``, or
        the cube was built with the other leading dimension.
    """
    if spatial_chunk < 1:
        raise ValueError(f"spatial_chunk must be a positive number of pixels, got {spatial_chunk}")
    leading = PAIR_DIM if pair_dim else TIME_DIM
    unique = _unique_rasters(rasters)
    store = _zarr_store(fs, cube_path)
    existing = _open_committed(fs, store, cube_path)
    if existing is not None:
        _check_leading_dim(existing, leading, cube_path)
    stored = _stored_pairs(existing)
    new = sorted((raster for raster in unique if raster.pair not in stored), key=lambda raster: raster.pair)
    if not pair_dim:
        _check_unique_reference_dates([*stored, *(raster.pair for raster in new)], cube_path)
    if existing is None and not new:
        raise ValueError(f"no coherence rasters to stack into {cube_path}; expected at least one")
    if not new:
        log.info("cube %s already holds all %d pairs", cube_path, len(stored))
        return _summarise(existing, cube_path, added=0, rewritten=False)
    rewritten = _store_new_pairs(fs, cube_path, store, existing, new, leading, spatial_chunk)
    log.info(
        "stacked %d new pairs into %s (%s)", len(new), cube_path, "rewritten" if rewritten else "appended"
    )
    return _summarise(
        _open_dataset(_zarr_store(fs, cube_path)), cube_path, added=len(new), rewritten=rewritten
    )


def _store_new_pairs(
    fs: fsspec.AbstractFileSystem,
    cube_path: str,
    store: zarr.abc.store.Store | str,
    existing: xr.Dataset | None,
    new: Sequence[PairRaster],
    leading: str,
    spatial_chunk: int,
) -> bool:
    """Validate, align and write ``new``; True if the cube had to be rewritten on a grown grid."""
    summaries = [validate_coherence_raster(fs, raster.path) for raster in new]
    grids = [_grid_of_raster(summary) for summary in summaries]
    if existing is None:
        target = union_grid(grids, source=cube_path)
        chunks = _chunks_for(target, spatial_chunk)
        _write_new_store(_dataset_of_rasters(fs, new, summaries, grids, target, leading, chunks), store)
        return False
    cube_grid = _grid_of_cube(existing, cube_path)
    target = union_grid([cube_grid, *grids], source=cube_path)
    if cube_grid.same_grid_as(target):
        # Appended chunks must match the stored chunking, whatever spatial_chunk says now.
        chunks = existing[VARIABLE].encoding["chunks"]
        addition = _dataset_of_rasters(fs, new, summaries, grids, target, leading, chunks)
        _append(addition, store, leading, committed=existing.sizes[leading])
        return False
    chunks = _chunks_for(target, spatial_chunk)
    addition = _dataset_of_rasters(fs, new, summaries, grids, target, leading, chunks)
    _rewrite_on_grid(fs, cube_path, existing, cube_grid, addition, target, chunks)
    return True


def _chunks_for(grid: RasterGrid, spatial_chunk: int) -> tuple[int, int, int]:
    """One pair per chunk and square tiles, no larger than the grid itself."""
    return 1, min(spatial_chunk, grid.height), min(spatial_chunk, grid.width)


class _RasterOnGrid:
    """Band 1 of a raster seen through a larger aligned grid: NaN wherever the raster is not.

    ``dask.array.from_array`` slices it chunk by chunk, so each task reads only the window
    of the file that its chunk overlaps.
    """

    def __init__(
        self,
        fs: fsspec.AbstractFileSystem,
        path: str,
        offset: tuple[int, int],
        raster: RasterGrid,
        grid: RasterGrid,
    ) -> None:
        self.fs, self.path, self.offset, self.raster_shape = fs, path, offset, raster.shape
        self.shape = (1, *grid.shape)
        self.dtype = np.dtype(np.float32)
        self.ndim = 3

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        _, rows, columns = key
        row_start, row_stop, _ = rows.indices(self.shape[1])
        column_start, column_stop, _ = columns.indices(self.shape[2])
        block = np.full((1, row_stop - row_start, column_stop - column_start), np.nan, dtype=np.float32)
        row_offset, column_offset = self.offset
        first_row, last_row = max(row_start - row_offset, 0), min(row_stop - row_offset, self.raster_shape[0])
        first_column = max(column_start - column_offset, 0)
        last_column = min(column_stop - column_offset, self.raster_shape[1])
        if first_row < last_row and first_column < last_column:
            window = Window(first_column, first_row, last_column - first_column, last_row - first_row)
            with open_coherence_raster(self.fs, self.path) as source:
                top, left = first_row + row_offset - row_start, first_column + column_offset - column_start
                block[0, top : top + window.height, left : left + window.width] = masked_block(source, window)
        return block


def _dataset_of_rasters(
    fs: fsspec.AbstractFileSystem,
    rasters: Sequence[PairRaster],
    summaries: Sequence[RasterSummary],
    grids: Sequence[RasterGrid],
    target: RasterGrid,
    leading: str,
    chunks: tuple[int, int, int],
) -> xr.Dataset:
    layers = [
        da.from_array(
            _RasterOnGrid(fs, raster.path, pixel_offset(grid, within=target), grid, target),
            chunks=chunks,
            name=f"coherence-raster-{tokenize(raster.path, grid, target, chunks)}",
            meta=np.empty((0, 0, 0), dtype=np.float32),
        )
        for raster, grid in zip(rasters, grids, strict=True)
    ]
    return _coherence_dataset(
        da.concatenate(layers, axis=0),
        reference_dates=[raster.reference_date for raster in rasters],
        secondary_dates=[raster.secondary_date for raster in rasters],
        mean_coherence=[summary.mean_coherence for summary in summaries],
        grid=target,
        leading=leading,
    )


def _coherence_dataset(
    data: da.Array,
    reference_dates: Sequence[date] | np.ndarray,
    secondary_dates: Sequence[date] | np.ndarray,
    mean_coherence: Sequence[float] | np.ndarray,
    grid: RasterGrid,
    leading: str,
) -> xr.Dataset:
    """The cube's layout, CF attributes and grid mapping, around ``data`` on ``(leading, y, x)``."""
    reference = np.asarray(reference_dates, dtype="datetime64[ns]")
    secondary = np.asarray(secondary_dates, dtype="datetime64[ns]")
    baseline = ((secondary - reference) // np.timedelta64(1, "D")).astype(np.int32)
    coords = {
        TIME_DIM: (leading, reference, {"standard_name": "time", "long_name": "reference acquisition date"}),
        "secondary_time": (leading, secondary, {"long_name": "secondary acquisition date"}),
        "temporal_baseline": (
            leading,
            baseline,
            {"long_name": "temporal baseline, secondary minus reference date", "units": "days"},
        ),
        "mean_coherence": (
            leading,
            np.asarray(mean_coherence, dtype=np.float32),
            {"long_name": "spatial mean coherence over valid pixels", "units": "1"},
        ),
        "y": ("y", grid.y_coordinates()),
        "x": ("x", grid.x_coordinates()),
    }
    dataset = xr.Dataset(
        {VARIABLE: ((leading, "y", "x"), data, dict(_COHERENCE_ATTRS))},
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
    return dataset


def _write_new_store(dataset: xr.Dataset, store: zarr.abc.store.Store | str) -> None:
    leading = dataset[VARIABLE].dims[0]
    coordinate_encoding = {"chunks": (_COORDINATE_CHUNK,)}
    encoding = {
        VARIABLE: {
            "chunks": dataset[VARIABLE].data.chunksize,
            "_FillValue": np.float32(np.nan),
            "dtype": "float32",
        },
        TIME_DIM: {**_DATE_ENCODING, **coordinate_encoding},
        "secondary_time": {**_DATE_ENCODING, **coordinate_encoding},
        "temporal_baseline": {"dtype": "int32", **coordinate_encoding},
        "mean_coherence": {"dtype": "float32", **coordinate_encoding},
    }
    dataset.to_zarr(store, mode="w-", encoding=encoding, zarr_format=3, consolidated=False)
    _commit(store, dataset.sizes[leading])


def _append(dataset: xr.Dataset, store: zarr.abc.store.Store | str, leading: str, committed: int) -> None:
    # x, y and spatial_ref are unchanged; writing them again could only rewrite (or corrupt)
    # what older pairs rely on. The old count keeps an interrupted append detectable.
    addition = dataset.drop_vars(["x", "y", "spatial_ref"])
    addition.attrs[COMPLETE_PAIR_COUNT_ATTR] = committed
    addition.to_zarr(store, append_dim=leading, consolidated=False)
    _commit(store, committed + dataset.sizes[leading])


def _rewrite_on_grid(
    fs: fsspec.AbstractFileSystem,
    cube_path: str,
    existing: xr.Dataset,
    cube_grid: RasterGrid,
    addition: xr.Dataset,
    target: RasterGrid,
    chunks: tuple[int, int, int],
) -> None:
    """Rewrite old and new pairs on the grown union grid, then swap the new store in."""
    leading = existing[VARIABLE].dims[0]
    row, column = pixel_offset(cube_grid, within=target)
    padding = (
        (0, 0),
        (row, target.height - row - cube_grid.height),
        (column, target.width - column - cube_grid.width),
    )
    padded = da.pad(existing[VARIABLE].data, padding, mode="constant", constant_values=np.nan)
    old = _coherence_dataset(
        padded.rechunk(chunks),
        reference_dates=existing[TIME_DIM].values,
        secondary_dates=existing["secondary_time"].values,
        mean_coherence=existing["mean_coherence"].values,
        grid=target,
        leading=leading,
    )
    combined = xr.concat([old, addition], dim=leading).sortby([TIME_DIM, "secondary_time"])
    rewrite_path = cube_path + REWRITE_SUFFIX
    if fs.exists(rewrite_path):
        fs.rm(rewrite_path, recursive=True)
    log.info(
        "grid of %s grows from %s to %s pixels: rewriting the cube", cube_path, cube_grid.shape, target.shape
    )
    _write_new_store(combined, _zarr_store(fs, rewrite_path))
    fs.rm(cube_path, recursive=True)
    fs.mv(rewrite_path, cube_path, recursive=True)


def _commit(store: zarr.abc.store.Store | str, pair_count: int) -> None:
    """Record that ``pair_count`` pairs are completely written, then consolidate metadata."""
    group = zarr.open_group(store, mode="r+", use_consolidated=False)
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
    if not fs.exists(posixpath.join(cube_path, "zarr.json")):
        return None
    group = zarr.open_group(store, mode="r+", use_consolidated=False)
    committed = group.attrs.get(COMPLETE_PAIR_COUNT_ATTR)
    if committed is None or VARIABLE not in group.array_keys():
        log.warning(
            "cube %s never finished its first write; removing it to rebuild from the rasters", cube_path
        )
        fs.rm(cube_path, recursive=True)
        return None
    leading = group[VARIABLE].metadata.dimension_names[0]
    truncated = False
    for _, array in group.arrays():
        if (array.metadata.dimension_names or ())[:1] == (leading,) and array.shape[0] > committed:
            array.resize((committed, *array.shape[1:]))
            truncated = True
    if truncated:
        log.warning("cube %s had an interrupted append; truncated back to %d pairs", cube_path, committed)
        _commit(store, committed)
    return _open_dataset(store)


def _open_dataset(store: zarr.abc.store.Store | str) -> xr.Dataset:
    # decode_timedelta=False: temporal_baseline is an integer number of days, not a timedelta.
    return xr.open_zarr(store, consolidated=False, decode_timedelta=False)


def _zarr_store(fs: fsspec.AbstractFileSystem, path: str) -> zarr.abc.store.Store | str:
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


def _grid_of_raster(summary: RasterSummary) -> RasterGrid:
    return RasterGrid(
        source=summary.path, crs_wkt=summary.crs_wkt, transform=summary.transform, shape=summary.shape
    )


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


def _summarise(dataset: xr.Dataset, cube_path: str, added: int, rewritten: bool) -> CubeSummary:
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
        rewritten=rewritten,
    )


def _dates(values: np.ndarray) -> list[date]:
    return [timestamp.date() for timestamp in pd.to_datetime(values)]
