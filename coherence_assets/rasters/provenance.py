"""Where every coherence raster came from, written into it as GeoTIFF metadata when it is downloaded.

One set of facts per pair (:class:`PairProvenance`): the two acquisitions (catalogue times, parent
products, platform, orbit), the processing (openEO process, its namespace pinned to a commit,
polarisation, coherence window, job and backend) and this project's version. They are written
from the pair table and the job ledger, so that every later output reads them from the rasters
themselves (``gdalinfo`` shows them too): the cube's and tables' attributes
(``coherence_assets.cube.provenance``) and the STAC items' ``sat:``, ``processing:`` and
``platform`` fields.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from importlib.metadata import version
from typing import Any

import pandas as pd
import rasterio

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.jobs.ledger import Ledger
from coherence_assets.jobs.processes import commit_of_namespace
from coherence_assets.pairs.pair import Pair
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.raster_files.validation import open_coherence_raster
from coherence_assets.rasters.download import DownloadOutcome
from coherence_assets.storage import DataStore

module_log = logging.getLogger(__name__)

PROJECT = "coherence-assets"
PROJECT_LICENSE = "Apache-2.0"
PROJECT_LICENSE_URL = "https://www.apache.org/licenses/LICENSE-2.0"
# The inputs' terms: the legal notice on the use of Copernicus Sentinel data and service information
SENTINEL_DATA_LICENSE_URL = (
    "https://sentinels.copernicus.eu/documents/247904/690755/Sentinel_Data_Legal_Notice"
)
CONSTELLATION = "sentinel-1"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def software() -> str:
    """``coherence-assets <version>``: what downloaded, stacked and described the outputs."""
    return f"{PROJECT} {version(PROJECT)}"


def platform_of_product(product: str) -> str:
    """STAC's platform name (``sentinel-1a``) from a Sentinel-1 product name (``S1A_IW_SLC__...``)."""
    return f"sentinel-1{product[2].lower()}" if product.startswith("S1") and len(product) > 2 else ""


@dataclass(frozen=True)
class PairProvenance:
    """Everything one coherence raster owes its existence to; field names are its GeoTIFF tag names."""

    burst: str
    reference_time: dt.datetime | None
    secondary_time: dt.datetime | None
    reference_product: str
    secondary_product: str
    orbit_direction: str  # ascending or descending, as STAC's sat:orbit_state writes it
    process: str
    process_namespace: str  # empty for a backend's own process
    polarisation: str
    coherence_window_rg: int
    coherence_window_az: int
    openeo_job_id: str
    openeo_backend: str
    software: str

    @property
    def relative_orbit(self) -> int:
        return BurstKey.parse(self.burst).relative_orbit

    @property
    def platforms(self) -> list[str]:
        """The satellites of the two acquisitions (one, or two for a pair such as S1A with S1C)."""
        names = [platform_of_product(product) for product in (self.reference_product, self.secondary_product)]
        return sorted({name for name in names if name})

    @property
    def process_commit(self) -> str | None:
        return commit_of_namespace(self.process_namespace)

    def tags(self) -> dict[str, str]:
        """GeoTIFF metadata items (GDAL's default domain), strings as TIFF stores them."""
        return {
            name: value.strftime(_TIME_FORMAT) if isinstance(value, dt.datetime) else str(value)
            for name, value in asdict(self).items()
            if value is not None
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> PairProvenance | None:
        """The provenance a raster's tags hold; ``None`` for a raster downloaded before they were written."""
        if "process" not in tags:
            return None
        values: dict[str, Any] = {}
        for field in fields(cls):
            text = tags.get(field.name)
            if field.name.endswith("_time"):
                values[field.name] = (
                    dt.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=dt.UTC) if text else None
                )
            elif field.name.startswith("coherence_window"):
                values[field.name] = int(text or 0)
            else:
                values[field.name] = text or ""
        return cls(**values)

    def lineage(self) -> str:
        """One sentence for STAC's ``processing:lineage``: inputs, process, parameters, where and by whom."""
        namespace = f" ({self.process_namespace})" if self.process_namespace else ""
        return (
            f"Coherence of Sentinel-1 IW SLC bursts {self.reference_product} and {self.secondary_product}, "
            f"{self.polarisation}, estimated over a {self.coherence_window_rg} x {self.coherence_window_az} "
            f"(range x azimuth) window by the openEO process {self.process}{namespace} in job "
            f"{self.openeo_job_id} on {self.openeo_backend}; downloaded by {self.software}"
        )


def pair_provenances(store: DataStore, ledger: Ledger) -> dict[Pair, PairProvenance]:
    """The provenance of every pair of the partition's jobs, from its pair table and ledger.

    A pair table written before it kept times and orbit (or none at all) leaves those facts empty.
    """
    path = store.insar_pairs_path(ledger.burst, ledger.window)
    table = pd.read_parquet(io.BytesIO(store.read_bytes(path))) if store.fs.exists(path) else pd.DataFrame()
    rows = {(row["reference_date"], row["secondary_date"]): row for row in table.to_dict("records")}
    provenances: dict[Pair, PairProvenance] = {}
    for job in ledger.jobs:  # oldest first: a pair's latest job wins
        for pair in job.pairs:
            row = rows.get(pair, {})
            provenances[pair] = PairProvenance(
                burst=ledger.burst,
                reference_time=_utc(row.get("reference_time")),
                secondary_time=_utc(row.get("secondary_time")),
                reference_product=str(row.get("reference_product", "")),
                secondary_product=str(row.get("secondary_product", "")),
                orbit_direction=str(row.get("orbit_direction", "")).lower(),
                process=job.process,
                process_namespace=job.namespace or "",
                polarisation=str(job.arguments.get("polarization", "")),
                coherence_window_rg=int(job.arguments.get("coherence_window_rg", 0)),
                coherence_window_az=int(job.arguments.get("coherence_window_az", 0)),
                openeo_job_id=job.job_id or "",
                openeo_backend=ledger.backend_url,
                software=software(),
            )
    return provenances


def write_raster_provenance(
    store: DataStore,
    ledger: Ledger,
    outcomes: Iterable[DownloadOutcome],
    log: logging.Logger | logging.LoggerAdapter = module_log,
) -> None:
    """Write the provenance into each raster this download pass fetched (a skipped one has it already).

    The file is rewritten whole and replaced atomically (a reader never sees it half-tagged), also
    on an object store, where GDAL cannot update in place.
    """
    fetched = [outcome.target_path for outcome in outcomes if outcome.action != "skipped"]
    if not fetched:
        return
    by_name = {
        raster_file_name(*pair): provenance for pair, provenance in pair_provenances(store, ledger).items()
    }
    for path in fetched:
        provenance = by_name.get(os.path.basename(path))
        if provenance is None:
            log.warning(f"{path}: no job of the ledger computes this pair; its provenance is not written")
            continue
        store.write_bytes_atomically(path, tagged_geotiff(store.read_bytes(path), provenance.tags()))


def tagged_geotiff(data: bytes, tags: Mapping[str, str]) -> bytes:
    """The GeoTIFF ``data`` with ``tags`` added to its metadata, pixels untouched."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "raster.tif")
        with open(path, "wb") as stream:
            stream.write(data)
        with rasterio.open(path, "r+") as dataset:
            dataset.update_tags(**tags)
        with open(path, "rb") as stream:
            return stream.read()


def read_raster_provenance(store: DataStore, path: str) -> PairProvenance | None:
    with open_coherence_raster(store.fs, path) as source:
        return PairProvenance.from_tags(source.tags())


def _utc(value: Any) -> dt.datetime | None:
    """A pair-table time as an aware UTC datetime; ``None`` for tables written before times were kept."""
    return None if value is None or pd.isna(value) else pd.Timestamp(value).tz_convert("UTC").to_pydatetime()
