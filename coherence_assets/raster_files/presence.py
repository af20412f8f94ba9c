"""Which pairs of a partition have a raster, and which of those are valid: asked by the job sensor every
tick while a download is due, by submissions (pairs with a raster are not paid for again) and by downloads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import fsspec

from coherence_assets.pairs.pair import Pair
from coherence_assets.raster_files.names import PART_SUFFIX, raster_file_name
from coherence_assets.storage import DataStore

if TYPE_CHECKING:
    from coherence_assets.raster_files.validation import RasterSummary


@dataclass(frozen=True)
class ValidRasters:
    """The pairs whose raster is a valid coherence GeoTIFF, and why the other files found were removed."""

    summaries: dict[Pair, RasterSummary]
    removed: dict[Pair, str]


def valid_rasters(store: DataStore, folder: str, pairs: list[Pair]) -> ValidRasters:
    """Validate the pairs' rasters that exist; a file that is not a valid coherence raster is removed.

    A raster is valid or absent: whoever finds a bad one (a crash's leftover, garbage of the right
    size) removes it, so the pair counts as missing and is downloaded again.
    """
    summaries: dict[Pair, RasterSummary] = {}
    removed: dict[Pair, str] = {}
    present = present_rasters(store, folder, pairs)
    if not present:
        return ValidRasters(summaries, removed)
    # rasterio only where rasters are read: the sensor imports this module, and often finds none
    from coherence_assets.raster_files.validation import InvalidRasterError, validate_coherence_raster

    for pair in (pair for pair in pairs if pair in present):
        path = f"{folder}/{raster_file_name(*pair)}"
        try:
            summaries[pair] = validate_coherence_raster(store.fs, path)
        except FileNotFoundError:  # removed meanwhile by another validator
            continue
        except InvalidRasterError as error:
            store.fs.rm(path)
            removed[pair] = str(error)
    return ValidRasters(summaries, removed)


def present_rasters(store: DataStore, folder: str, pairs: list[Pair]) -> set[Pair]:
    """Pairs with a raster under its final name (downloads only ever rename complete files).

    One listing of the folder rather than one request per pair: the job sensor asks every tick
    while a download is due, and on an object store each request is an HTTP round trip. The
    filesystem's cached listing (s3fs keeps one per folder) is dropped first: the rasters are
    written by download runs in other processes.
    """
    store.fs.invalidate_cache(folder)
    try:
        names = {path.rsplit("/", 1)[-1] for path in store.fs.ls(folder, detail=False)}
    except FileNotFoundError:
        return set()
    return {pair for pair in pairs if raster_file_name(*pair) in names}


def remove_partial_downloads(fs: fsspec.AbstractFileSystem, target_paths: Iterable[str]) -> list[str]:
    """Remove the ``.part`` files of ``target_paths`` (of a job that will never finish them); those removed."""
    removed = [path + PART_SUFFIX for path in target_paths if fs.exists(path + PART_SUFFIX)]
    for part_path in removed:
        fs.rm(part_path)
    return removed
