"""The ``burst_catalogue`` step without Dagster: the user's burst map, validated and stored as GeoParquet.

A burst map that fails validation raises before anything is written, so the stored catalogue
stays the last good one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import geopandas as gpd

from coherence_assets.bursts.burst_map import burst_file_version, load_burst_catalogue, orbit_warnings
from coherence_assets.storage import DataStore


@dataclass(frozen=True)
class StoredBurstCatalogue:
    """The catalogue as stored, where from and where to, and the source's content digest (its data version)."""

    catalogue: gpd.GeoDataFrame
    source: str
    path: str
    version: str

    @property
    def burst_keys(self) -> list[str]:
        return list(self.catalogue["burst"])

    @property
    def orbit_warnings(self) -> list[str]:
        return orbit_warnings(self.catalogue)


def store_burst_catalogue(store: DataStore, source: str) -> StoredBurstCatalogue:
    """Load and validate the burst map at ``source`` and write it to the catalogue's path in one rename."""
    catalogue = load_burst_catalogue(source)
    buffer = io.BytesIO()
    catalogue.to_parquet(buffer, index=False)
    path = store.burst_catalogue_path()
    store.write_bytes_atomically(path, buffer.getvalue())
    return StoredBurstCatalogue(catalogue, source, path, burst_file_version(source))


def stored_burst_keys(path: str) -> list[str]:
    """The burst keys of the catalogue stored at ``path`` (a path or fsspec URL): its ``burst`` column alone."""
    import fsspec
    import pandas as pd

    fs, fs_path = fsspec.core.url_to_fs(path)
    return list(pd.read_parquet(io.BytesIO(fs.cat_file(fs_path)), columns=["burst"])["burst"])
