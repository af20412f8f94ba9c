"""What a burst's cube and the tables made from it say of their origin, read from its rasters' own
metadata (``coherence_assets.rasters.provenance``): CF global attributes on the cube, Parquet
key-value metadata on the tables.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from coherence_assets.cube.stacking import PairRaster, find_pair_rasters
from coherence_assets.rasters.provenance import (
    CONSTELLATION,
    PROJECT_LICENSE,
    PROJECT_LICENSE_URL,
    SENTINEL_DATA_LICENSE_URL,
    read_raster_provenance,
    software,
)
from coherence_assets.storage import DataStore

APEX_PROCESS_PAGE = "https://algorithm-catalogue.apex.esa.int/apps/sentinel1_sar_coherence"
# the global attributes cube_attributes writes, in its order; tables made from the cube carry them too
PROVENANCE_ATTRIBUTES = (
    "source",
    "history",
    "references",
    "license",
    "process",
    "process_namespace",
    "coherence_window_rg",
    "coherence_window_az",
    "polarisation",
    "platform",
    "constellation",
    "orbit_direction",
    "relative_orbit",
    "parent_products",
    "pairs_without_provenance",
)


def burst_attributes(store: DataStore, burst: str) -> dict[str, str | int]:
    """:func:`cube_attributes` of every raster of ``burst``: what its cube and tables say of their origin."""
    return cube_attributes(store, find_pair_rasters(store.fs, store.coherence_rasters_root(burst)))


def parquet_with_provenance(frame: pd.DataFrame, attributes: Mapping[str, Any]) -> bytes:
    """``frame`` as Parquet whose key-value metadata holds the provenance among a cube's ``attributes``
    (beside pandas' own), so a table made from the cube says where it came from (pyarrow reads it back)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    provenance = {
        key.encode(): str(attributes[key]).encode() for key in PROVENANCE_ATTRIBUTES if key in attributes
    }
    buffer = io.BytesIO()
    pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **provenance}), buffer)
    return buffer.getvalue()


def cube_attributes(store: DataStore, rasters: Iterable[PairRaster]) -> dict[str, str | int]:
    """CF global attributes (``source``, ``history``, ``references``, ``license``) and the facts of
    every pair, for the cube of ``rasters`` and the tables made from it.

    A fact that differs between pairs (two platforms, say) is listed with its values; a raster
    without provenance (downloaded before it was written) is counted, never guessed.
    """
    rasters = list(rasters)
    known = [(raster, read_raster_provenance(store, raster.path)) for raster in rasters]
    provenances = [provenance for _, provenance in known if provenance is not None]
    dates = sorted(raster.reference_date for raster in rasters)
    first_year, last_year = dates[0].year, max(raster.secondary_date for raster in rasters).year
    years = str(first_year) if first_year == last_year else f"{first_year}-{last_year}"
    processes = _values(f"{p.process} at {p.process_namespace or 'the backend'}" for p in provenances)
    namespaces = _values(p.process_namespace for p in provenances)
    history = (
        f"{dates[0]} to {dates[-1]}: coherence of {len(rasters)} Sentinel-1 pair(s) computed by the openEO "
        f"process {processes or 'unknown'} on {_values(p.openeo_backend for p in provenances) or 'unknown'}; "
        f"downloaded, stacked and described by {software()}"
    )
    return {
        "source": f"Sentinel-1 IW SLC bursts (Copernicus); coherence from openEO, stacked by {software()}",
        "history": history,
        "references": " ".join(filter(None, [namespaces, APEX_PROCESS_PAGE])),
        "license": f"{PROJECT_LICENSE} ({PROJECT_LICENSE_URL}); contains modified Copernicus Sentinel data "
        f"{years} ({SENTINEL_DATA_LICENSE_URL})",
        "process": _values(p.process for p in provenances),
        "process_namespace": namespaces,
        "coherence_window_rg": _number_or_values(p.coherence_window_rg for p in provenances),
        "coherence_window_az": _number_or_values(p.coherence_window_az for p in provenances),
        "polarisation": _values(p.polarisation for p in provenances),
        "platform": _values(name for p in provenances for name in p.platforms),
        "constellation": CONSTELLATION,
        "orbit_direction": _values(p.orbit_direction for p in provenances),
        "relative_orbit": _number_or_values(p.relative_orbit for p in provenances),
        "parent_products": _values(
            product for p in provenances for product in (p.reference_product, p.secondary_product)
        ),
        "pairs_without_provenance": len(rasters) - len(provenances),
    }


def _values(values: Iterable[str]) -> str:
    """Distinct non-empty values, sorted, space-separated (CF's way of listing in one attribute)."""
    return " ".join(sorted({value for value in values if value}))


def _number_or_values(values: Iterable[int]) -> int | str:
    """The number when all pairs agree (a CF reader gets an integer), else the distinct values."""
    distinct = sorted(set(values))
    return distinct[0] if len(distinct) == 1 else " ".join(map(str, distinct))  # "" when no pair is known
