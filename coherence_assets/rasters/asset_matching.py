"""Which job result asset holds which InSAR pair.

A coherence job returns one GeoTIFF per pair, but the asset names differ between processes
(docs/architecture.md, "Result assets and pairs"): ``sentinel1_sar_coherence`` names them
``S1_coh_2images_<reference>_<secondary>.tif`` and its STAC items carry both dates, while the
older processes named them ``openEO_<reference date>Z.tif``. Matching uses the STAC dates
first and the dates in the name second, and reports what did not match instead of guessing.
The process does not dedupe burst records (one acquisition in two parent products), so one pair
can come as two rasters of the same acquisitions: one is kept, the other reported.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote, urlparse

from coherence_assets.pairs.pair import Pair, format_pair
from coherence_assets.raster_files.names import parse_compact_date

_COHERENCE_2IMAGES_NAME = re.compile(r"S1_coh_2images_(\d{8})T\d{6}_(\d{8})T\d{6}")
_OPENEO_DATE_NAME = re.compile(r"^openEO_(\d{4}-\d{2}-\d{2})Z?\.tiff?$")
_GEOTIFF_SUFFIXES = (".tif", ".tiff")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ResultAssetRef:
    """One file of a job's results, with the pair dates its STAC item states (if any)."""

    name: str
    href: str
    size: int | None = None
    media_type: str | None = None
    reference_datetime: datetime | None = None
    secondary_datetime: datetime | None = None

    @property
    def is_geotiff(self) -> bool:
        """True for rasters; metadata files (JSON, logs) that share the results are not pairs."""
        if self.media_type and self.media_type.lower().startswith("image/tiff"):
            return True
        return _base_name(self.name).lower().endswith(_GEOTIFF_SUFFIXES) or urlparse(
            self.href
        ).path.lower().endswith(_GEOTIFF_SUFFIXES)


@dataclass(frozen=True)
class MatchResult:
    """Assets matched to pairs, plus what matched nothing and the duplicates left out, so callers can report them."""

    matched: dict[Pair, ResultAssetRef]
    unmatched_assets: list[ResultAssetRef]
    pairs_without_asset: list[Pair]
    duplicate_assets: dict[Pair, list[ResultAssetRef]] = field(default_factory=dict)


def asset_refs_from_stac(document: Mapping[str, Any]) -> list[ResultAssetRef]:
    """The assets of one STAC item (or collection), carrying the item's pair dates.

    ``properties.datetime`` is the reference acquisition and
    ``properties["sar:datetime_secondary"]`` the secondary one; a collection without
    ``properties`` yields assets without dates, to be matched by name. Both are read as plain
    dicts (why not pystac: :mod:`coherence_assets.rasters.job_results`).
    """
    properties = document.get("properties") or {}
    reference = _parse_stac_datetime(properties.get("datetime"))
    secondary = _parse_stac_datetime(properties.get("sar:datetime_secondary"))
    return [
        ResultAssetRef(
            name=name,
            href=asset["href"],
            size=asset.get("file:size"),
            media_type=asset.get("type"),
            reference_datetime=reference,
            secondary_datetime=secondary,
        )
        for name, asset in (document.get("assets") or {}).items()
    ]


def match_assets_to_pairs(assets: Iterable[ResultAssetRef], pairs: Iterable[Pair]) -> MatchResult:
    """Match GeoTIFF assets to ``(reference_date, secondary_date)`` pairs.

    When several assets hold one pair, the one whose name sorts first is kept (so every run keeps
    the same one) and the others are returned in ``duplicate_assets`` for the caller to report.

    Raises
    ------
    ValueError
        If an asset names only a reference date that several pairs share: it would silently
        store the wrong raster.
    """
    wanted = list(dict.fromkeys(pairs))
    wanted_set = set(wanted)
    pairs_by_reference: dict[date, list[Pair]] = defaultdict(list)
    for pair in wanted:
        pairs_by_reference[pair[0]].append(pair)
    matched: dict[Pair, ResultAssetRef] = {}
    unmatched: list[ResultAssetRef] = []
    duplicates: dict[Pair, list[ResultAssetRef]] = defaultdict(list)
    for asset in assets:
        if not asset.is_geotiff:
            continue
        pair = _pair_of_asset(asset, wanted_set, pairs_by_reference)
        if pair is None:
            unmatched.append(asset)
            continue
        kept = matched.get(pair)
        if kept is not None and kept.href != asset.href:
            kept, dropped = sorted((kept, asset), key=lambda ref: (ref.name, ref.href))
            duplicates[pair].append(dropped)
        matched[pair] = kept or asset
    missing = [pair for pair in wanted if pair not in matched]
    return MatchResult(
        matched=matched,
        unmatched_assets=unmatched,
        pairs_without_asset=missing,
        duplicate_assets=dict(duplicates),
    )


def asset_pair_dates(asset: ResultAssetRef) -> tuple[date | None, date | None]:
    """Reference and secondary date of an asset: STAC metadata first, then its name."""
    name = _base_name(asset.name)
    name_reference: date | None = None
    name_secondary: date | None = None
    if two_images := _COHERENCE_2IMAGES_NAME.search(name):
        name_reference = parse_compact_date(two_images.group(1))
        name_secondary = parse_compact_date(two_images.group(2))
    elif single_date := _OPENEO_DATE_NAME.match(name):
        name_reference = date.fromisoformat(single_date.group(1))
    reference = asset.reference_datetime.date() if asset.reference_datetime else name_reference
    secondary = asset.secondary_datetime.date() if asset.secondary_datetime else name_secondary
    return reference, secondary


def safe_target_path(folder: str, name: str) -> str:
    """``folder/name``, refusing names a result could use to write outside ``folder``.

    Names come from a remote backend, so ``..`` segments, absolute paths, drive letters,
    URLs, backslashes and their URL-encoded forms are all refused.
    """
    for candidate in (name, _fully_unquoted(name)):
        problem = _path_problem(candidate)
        if problem is not None:
            raise ValueError(
                f"asset name {name!r} is refused: {problem}; expected a relative file name inside {folder!r}"
            )
    return f"{folder.rstrip('/')}/{name}"


def _pair_of_asset(
    asset: ResultAssetRef, wanted: set[Pair], pairs_by_reference: Mapping[date, list[Pair]]
) -> Pair | None:
    reference, secondary = asset_pair_dates(asset)
    if reference is None:
        return None
    if secondary is not None:
        return (reference, secondary) if (reference, secondary) in wanted else None
    candidates = pairs_by_reference.get(reference, [])
    if len(candidates) > 1:
        listed = ", ".join(format_pair(pair) for pair in candidates)
        raise ValueError(
            f"asset {asset.name!r} names only reference date {reference}, which pairs {listed} "
            "share; run one job per temporal baseline so each reference date is unique"
        )
    return candidates[0] if candidates else None


def _path_problem(candidate: str) -> str | None:
    if not candidate:
        return "it is empty"
    if "\x00" in candidate:
        return "it contains a NUL byte"
    if "\\" in candidate:
        return "it contains a backslash"
    if candidate.startswith(("/", "~")) or _WINDOWS_DRIVE.match(candidate):
        return "it is an absolute path"
    if "://" in candidate:
        return "it is a URL"
    if any(segment in ("", ".", "..") for segment in candidate.split("/")):
        return "it has an empty, '.' or '..' path segment"
    return None


def _fully_unquoted(name: str) -> str:
    """Undo URL encoding until nothing changes, so ``%252e%252e`` is seen as ``..`` too."""
    previous, current = None, name
    while current != previous:
        previous, current = current, unquote(current)
    return current


def _parse_stac_datetime(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _base_name(name: str) -> str:
    return posixpath.basename(name)
