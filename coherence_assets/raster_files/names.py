"""A stored raster's name says which pair it holds: ``YYYYMMDD_YYYYMMDD.tif`` (reference, secondary)."""

from __future__ import annotations

import posixpath
import re
from datetime import date, datetime

from coherence_assets.pairs.pair import Pair

_RASTER_FILE_NAME = re.compile(r"^(\d{8})_(\d{8})\.tif$")
# a download's bytes go to <raster>.part until complete (rasters/download.py)
PART_SUFFIX = ".part"


def raster_file_name(reference_date: date, secondary_date: date) -> str:
    """The stored raster's name, ``YYYYMMDD_YYYYMMDD.tif``, so the file says which pair it is."""
    if secondary_date <= reference_date:
        raise ValueError(
            f"secondary date {secondary_date} must be after reference date {reference_date} "
            "in a coherence pair"
        )
    return f"{reference_date:%Y%m%d}_{secondary_date:%Y%m%d}.tif"


def parse_raster_file_name(name: str) -> Pair:
    """The pair a stored raster holds, read back from its name (a path is fine)."""
    match = _RASTER_FILE_NAME.match(posixpath.basename(name))
    if match is None:
        raise ValueError(f"raster file name {name!r} is not of the form YYYYMMDD_YYYYMMDD.tif")
    return parse_compact_date(match.group(1)), parse_compact_date(match.group(2))


def parse_compact_date(text: str) -> date:
    """``20230703`` as a date: how raster names and CDSE's result names write one."""
    return datetime.strptime(text, "%Y%m%d").date()
