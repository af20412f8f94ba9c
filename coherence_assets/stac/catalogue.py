"""The static STAC catalogue under ``COHERENCE_DATA_DIR/stac``, so STAC tools find our outputs.

Layout (every href relative, so the data folder can move or be served as it is)::

    stac/catalog.json                          root catalogue, one child per burst
    stac/<burst>/collection.json               the burst: the Zarr cube and the AOI table as assets
    stac/<burst>/<item id>/<item id>.json      one item per coherence raster (pair)

Each burst's collection is rewritten whole by its own run; the root catalogue is rebuilt from
the collections present, so runs of different bursts never need each other's state.

An item says what its raster's own metadata says (:mod:`coherence_assets.rasters.provenance`,
written at download): ``datetime`` is the reference acquisition's time from the catalogue,
``start_datetime`` and ``end_datetime`` the two acquisitions', and ``platform``, ``sat:`` and
``processing:`` fields tell the satellites, the orbit and the process (pinned to a commit) that made it.
"""

from __future__ import annotations

import logging
import posixpath
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import pystac
import rasterio.warp
import shapely
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.sar import FrequencyBand, Polarization, SarExtension
from pystac.extensions.sat import OrbitState, SatExtension
from pystac.stac_io import DefaultStacIO
from pystac.utils import make_relative_href
from rasterio.crs import CRS
from shapely.geometry import mapping

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.cube.stacking import PairRaster, find_pair_rasters
from coherence_assets.raster_files.validation import open_coherence_raster
from coherence_assets.rasters.provenance import (
    CONSTELLATION,
    PROJECT,
    PROJECT_LICENSE,
    PROJECT_LICENSE_URL,
    SENTINEL_DATA_LICENSE_URL,
    PairProvenance,
    platform_of_product,
)
from coherence_assets.storage import DataStore

module_log = logging.getLogger(__name__)

CATALOG_ID = "coherence-assets"
ZARR_MEDIA_TYPE = "application/vnd+zarr"
PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
# Sentinel-1's C-band centre frequency, GHz
SENTINEL1_CENTER_FREQUENCY = 5.405
# Fields of our own, prefixed as STAC asks of fields outside any extension.
BURST_FIELD = "coherence:burst"
SECONDARY_DATE_FIELD = "coherence:secondary_date"
BASELINE_FIELD = "coherence:temporal_baseline_days"
REFERENCE_PRODUCT_FIELD = "coherence:reference_product"
SECONDARY_PRODUCT_FIELD = "coherence:secondary_product"
# The processing extension (pystac has no class for it), at its latest version
PROCESSING_EXTENSION = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
# STAC 1.1 band metadata of the coherence asset: NaN marks no data, coherence is dimensionless
COHERENCE_BAND = {"name": "coherence", "nodata": "nan", "data_type": "float32", "unit": "1"}
MAX_ROOT_CATALOG_WRITES = 3
_POLARISATION_IN_BAND = re.compile(r"(VV|VH|HH|HV)\b")


class FsspecStacIO(DefaultStacIO):
    """pystac's reads and writes through the data store, so an ``s3://`` folder works like a local one.

    Writes are atomic (temporary sibling, then rename): STAC clients never read half a document.
    """

    def __init__(self, store: DataStore) -> None:
        super().__init__()
        self.store = store

    def read_text_from_href(self, href: str) -> str:
        return self.store.read_bytes(href).decode()  # as it is now, not through a stale cached ETag

    def write_text_to_href(self, href: str, txt: str) -> None:
        self.store.write_bytes_atomically(href, txt.encode())


@dataclass(frozen=True)
class StacSummary:
    catalog_path: str
    collection_path: str
    item_count: int
    items_without_polarisation: list[str]
    items_without_provenance: list[str]  # rasters downloaded before provenance was written into them


def write_burst_stac(
    store: DataStore, burst: str, *, log: logging.Logger | logging.LoggerAdapter = module_log
) -> StacSummary:
    """Rewrite ``burst``'s collection from its rasters, cube and AOI table, then the root catalogue."""
    rasters = find_pair_rasters(store.fs, store.coherence_rasters_root(burst))
    catalog = _root_catalog(_absolute(store, store.stac_catalog_path()))
    collection = _burst_collection(store, burst, rasters)
    catalog.add_child(collection)
    collection_dir = store.stac_collection_dir(burst)
    collection.normalize_hrefs(_absolute(store, collection_dir))
    collection.make_all_asset_hrefs_relative()  # the items' assets; the collection's own below
    for asset in collection.assets.values():
        asset.href = make_relative_href(asset.href, collection.get_self_href())
    stac_io = FsspecStacIO(store)
    if store.fs.exists(collection_dir):
        store.fs.rm(collection_dir, recursive=True)  # items of pairs that are gone must not linger
    collection.save(pystac.CatalogType.SELF_CONTAINED, stac_io=stac_io)
    _write_root_catalog(store, catalog, stac_io)
    summary = StacSummary(
        catalog_path=catalog.get_self_href(),
        collection_path=collection.get_self_href(),
        item_count=len(rasters),
        items_without_polarisation=sorted(
            item.id for item in collection.get_items() if "sar:polarizations" not in item.properties
        ),
        items_without_provenance=sorted(
            item.id for item in collection.get_items() if "processing:lineage" not in item.properties
        ),
    )
    log.info(f"{burst}: STAC collection with {summary.item_count} item(s) at {summary.collection_path}")
    if summary.items_without_provenance:
        log.warning(
            f"{burst}: rasters {', '.join(summary.items_without_provenance)} carry no provenance (downloaded before "
            "it was written into them): their items are dated at midnight and lack platform, sat: and processing: "
            "fields; delete them and materialise coherence_rasters again to fetch them with it"
        )
    if summary.items_without_polarisation:
        log.warning(
            f"{burst}: neither the raster's metadata nor its band name gives the polarisation of "
            f"{', '.join(summary.items_without_polarisation)}; those items carry no sar: fields"
        )
    return summary


def _root_catalog(catalog_path: str) -> pystac.Catalog:
    catalog = pystac.Catalog(
        id=CATALOG_ID,
        description="Sentinel-1 InSAR coherence computed by coherence-assets: one collection per burst",
        title="coherence-assets outputs",
        catalog_type=pystac.CatalogType.SELF_CONTAINED,
    )
    catalog.set_self_href(catalog_path)
    return catalog


def _write_root_catalog(store: DataStore, catalog: pystac.Catalog, stac_io: FsspecStacIO) -> None:
    """The root catalogue with a child link per collection on disk, this run's included.

    Runs of other bursts may add their collection meanwhile; writing until the listing holds
    still keeps a concurrent run's child from being overwritten by an older listing.
    """
    written: list[str] = []
    for _ in range(MAX_ROOT_CATALOG_WRITES):
        collections = sorted(store.fs.glob(posixpath.join(store.stac_root(), "*", "collection.json")))
        if collections == written:
            return
        catalog.clear_children()
        for path in collections:
            catalog.add_link(
                pystac.Link(
                    pystac.RelType.CHILD,
                    _absolute(store, path),
                    media_type=pystac.MediaType.JSON,
                    title=posixpath.basename(posixpath.dirname(path)),
                )
            )
        catalog.save_object(include_self_link=False, stac_io=stac_io)
        written = collections


def _burst_collection(store: DataStore, burst: str, rasters: list[PairRaster]) -> pystac.Collection:
    items = [_raster_item(store, burst, raster) for raster in rasters]
    extent = pystac.Extent(
        pystac.SpatialExtent([list(shapely.union_all([shapely.box(*item.bbox) for item in items]).bounds)])
        if items
        else pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]),
        pystac.TemporalExtent(
            [
                [
                    min(item.common_metadata.start_datetime for item in items),
                    max(item.common_metadata.end_datetime for item in items),
                ]
            ]
            if items
            else [[None, None]]
        ),
    )
    collection = pystac.Collection(
        id=burst,
        description=f"Sentinel-1 InSAR coherence of burst {burst}: one item per pair, and the Zarr cube of all pairs",
        extent=extent,
        title=f"coherence {burst}",
        license=PROJECT_LICENSE,
    )
    collection.add_links(
        [
            pystac.Link(
                "license", PROJECT_LICENSE_URL, media_type="text/html", title=f"{PROJECT}: {PROJECT_LICENSE}"
            ),
            pystac.Link(
                "license",
                SENTINEL_DATA_LICENSE_URL,
                media_type="application/pdf",
                title="Inputs: legal notice on the use of Copernicus Sentinel data",
            ),
        ]
    )
    collection.add_items(items)
    _add_data_asset_if_written(
        collection,
        store,
        "cube",
        store.coherence_cube_path(burst),
        "coherence cube (time, y, x) of every pair; group 'timeseries' holds the time-chunked copy",
        ZARR_MEDIA_TYPE,
    )
    _add_data_asset_if_written(
        collection,
        store,
        "aoi_series",
        store.coherence_aoi_series_path(burst),
        "coherence statistics per area of interest and pair",
        PARQUET_MEDIA_TYPE,
    )
    return collection


def _add_data_asset_if_written(
    collection: pystac.Collection, store: DataStore, key: str, path: str, title: str, media_type: str
) -> None:
    """Link a burst-level product from the collection once its asset has written it, not before."""
    if store.fs.exists(path):
        collection.add_asset(
            key, pystac.Asset(_absolute(store, path), title=title, media_type=media_type, roles=["data"])
        )


def _raster_item(store: DataStore, burst: str, raster: PairRaster) -> pystac.Item:
    with open_coherence_raster(store.fs, raster.path) as source:
        crs, transform, shape = source.crs, source.transform, (source.height, source.width)
        bounds = source.bounds
        band_description = source.descriptions[0] or ""
        provenance = PairProvenance.from_tags(source.tags())
    footprint = rasterio.warp.transform_geom(crs, CRS.from_epsg(4326), mapping(shapely.box(*bounds)))
    reference = (provenance and provenance.reference_time) or _midnight(raster.reference_date)
    secondary = (provenance and provenance.secondary_time) or _midnight(raster.secondary_date)
    item = pystac.Item(
        id=_item_id(burst, raster),
        geometry=footprint,
        bbox=list(shapely.geometry.shape(footprint).bounds),
        datetime=reference,
        start_datetime=reference,
        end_datetime=secondary,
        properties={
            BURST_FIELD: burst,
            SECONDARY_DATE_FIELD: raster.secondary_date.isoformat(),
            BASELINE_FIELD: (raster.secondary_date - raster.reference_date).days,
        },
    )
    item.add_asset(
        "coherence",
        pystac.Asset(
            _absolute(store, raster.path),
            title=f"coherence {raster.reference_date} / {raster.secondary_date}",
            media_type=pystac.MediaType.GEOTIFF,
            roles=["data"],
            extra_fields={"bands": [COHERENCE_BAND]},
        ),
    )
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    projection.apply(
        epsg=crs.to_epsg(),
        wkt2=None if crs.to_epsg() else crs.to_wkt(),
        shape=list(shape),
        transform=list(transform)[:6],
        bbox=list(bounds),
    )
    polarisation = (provenance and provenance.polarisation) or _polarisation_of_band(band_description)
    if polarisation:
        SarExtension.ext(item, add_if_missing=True).apply(
            instrument_mode=BurstKey.parse(burst).subswath[:2],
            frequency_band=FrequencyBand.C,
            polarizations=[Polarization(polarisation)],
            product_type="COH",
            center_frequency=SENTINEL1_CENTER_FREQUENCY,
        )
    if provenance is not None:
        _describe_acquisitions_and_processing(item, provenance)
    return item


def _describe_acquisitions_and_processing(item: pystac.Item, provenance: PairProvenance) -> None:
    """``platform``, ``constellation``, ``sat:`` and ``processing:`` fields, and the parent products."""
    # STAC's platform is one name: the reference acquisition's, whose time is the item's datetime
    item.common_metadata.platform = platform_of_product(provenance.reference_product) or None
    item.common_metadata.constellation = CONSTELLATION
    if provenance.orbit_direction in {OrbitState.ASCENDING, OrbitState.DESCENDING}:
        SatExtension.ext(item, add_if_missing=True).apply(
            orbit_state=OrbitState(provenance.orbit_direction), relative_orbit=provenance.relative_orbit
        )
    else:
        SatExtension.ext(item, add_if_missing=True).apply(relative_orbit=provenance.relative_orbit)
    item.properties[REFERENCE_PRODUCT_FIELD] = provenance.reference_product
    item.properties[SECONDARY_PRODUCT_FIELD] = provenance.secondary_product
    item.stac_extensions.append(PROCESSING_EXTENSION)
    item.properties["processing:lineage"] = provenance.lineage()
    # name -> version: the pinned commit is the process's version, the package's the downloader's
    item.properties["processing:software"] = {
        provenance.process: provenance.process_commit or "the backend's own",
        PROJECT: provenance.software.removeprefix(f"{PROJECT} "),
    }


def _polarisation_of_band(description: str) -> str | None:
    """The polarisation a band description names (``coh_VV``), for rasters without provenance."""
    match = _POLARISATION_IN_BAND.search(description.upper())
    return match.group(1) if match else None


def _item_id(burst: str, raster: PairRaster) -> str:
    return f"{burst}_{raster.reference_date:%Y%m%d}_{raster.secondary_date:%Y%m%d}"


def _midnight(day: date) -> datetime:
    """A date as an instant, for rasters without the acquisition times in their metadata."""
    return datetime.combine(day, time(), tzinfo=UTC)


def _absolute(store: DataStore, path: str) -> str:
    """A path of the store as pystac needs it to compute relative hrefs (a URL off the local disk)."""
    return store.fs.unstrip_protocol(path) if "://" in store.url else path
