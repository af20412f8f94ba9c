"""Which pairs of a partition have a raster, and which of those are valid: asked by the job sensor every
tick while a download is due, by submissions (pairs with a raster are not paid for again) and by downloads."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
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
    """The pairs whose raster is a valid coherence GeoTIFF, and why each other file found is not one."""

    summaries: dict[Pair, RasterSummary]
    invalid: dict[Pair, str]


def judge_rasters(store: DataStore, folder: str, pairs: list[Pair]) -> ValidRasters:
    """Validate the pairs' rasters that exist, changing nothing: a decision for the caller to act on
    (:func:`remove_invalid_rasters`)."""
    summaries: dict[Pair, RasterSummary] = {}
    invalid: dict[Pair, str] = {}
    present = present_rasters(store, folder, pairs)
    if not present:
        return ValidRasters(summaries, invalid)
    # rasterio only where rasters are read: the sensor imports this module, and often finds none
    from coherence_assets.raster_files.validation import InvalidRasterError, validate_coherence_raster

    for pair in (pair for pair in pairs if pair in present):
        try:
            summaries[pair] = validate_coherence_raster(store.fs, f"{folder}/{raster_file_name(*pair)}")
        except FileNotFoundError:  # removed meanwhile by another validator
            continue
        except InvalidRasterError as error:
            invalid[pair] = str(error)
    return ValidRasters(summaries, invalid)


def remove_invalid_rasters(store: DataStore, folder: str, pairs: Iterable[Pair]) -> None:
    """Remove the rasters of ``pairs`` that :func:`judge_rasters` found invalid, so they count as missing
    and are downloaded again (one removed meanwhile by another validator is no error)."""
    for pair in pairs:
        with suppress(FileNotFoundError):
            store.fs.rm(f"{folder}/{raster_file_name(*pair)}")


def valid_rasters(store: DataStore, folder: str, pairs: list[Pair]) -> ValidRasters:
    """Judge the pairs' rasters and remove the invalid ones at once (``invalid`` says why each went).

    A raster is valid or absent: whoever finds a bad one (a crash's leftover, garbage of the right
    size) removes it, so the pair counts as missing and is downloaded again.
    """
    judged = judge_rasters(store, folder, pairs)
    remove_invalid_rasters(store, folder, judged.invalid)
    return judged


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
