"""Result files of a job and the STAC documents that describe them, with signed links as CDSE gives.

Each output GeoTIFF is one STAC item whose id is the file name; the collection of ``GET
/jobs/{id}/results`` links the items and, as openEO API 1.x still requires, repeats every asset at
collection level. Asset, item and canonical links carry a signature (itsdangerous) and an expiry instead of
needing the ``Authorization`` header, like CDSE's pre-signed URLs.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from itsdangerous import Signer
from rasterio.warp import transform_bounds
from shapely.geometry import mapping

from coherence_assets.cdse_facts import SENTINEL1_SAR_COHERENCE
from embedded_openeo.config import ResultNaming
from embedded_openeo.pair_planning import PlannedPair
from embedded_openeo.processes import CoherenceComputation
from embedded_openeo.synthetic_scene import SceneGrid

GEOTIFF_MEDIA_TYPE = "image/tiff; application=geotiff"
# What CDSE's openEO backend (openeo-python-driver's views.py) serves for results that carry item
# metadata, as the s1-workflows image does since its STAC 1.1.0 update (2026-06-17): STAC 1.1.0 with the
# file extension v2.1.0 and projection v1.2.0 (``proj:epsg`` and ``proj:code`` both).
STAC_VERSION = "1.1.0"
STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.2.0/schema.json",
]
SIGNED_URL_SECONDS = 24 * 3600


def names_outputs_by_pair(request: CoherenceComputation, naming: ResultNaming) -> bool:
    """The APEx process names files by both acquisitions; the older ones, and every process under
    the ``openeo_date`` naming of APEx's benchmark, by the reference date."""
    return naming == "process" and request.process_id == SENTINEL1_SAR_COHERENCE


def output_file_name(
    request: CoherenceComputation, pair: PlannedPair, naming: ResultNaming = "process"
) -> str:
    """``S1_coh_2images_<ref>_<sec>.tif`` when named by pair, else ``openEO_<ref date>Z.tif``."""
    if names_outputs_by_pair(request, naming):
        return f"S1_coh_2images_{pair.reference_start:%Y%m%dT%H%M%S}_{pair.secondary_start:%Y%m%dT%H%M%S}.tif"
    return f"openEO_{pair.reference_start:%Y-%m-%d}Z.tif"


def write_coherence_geotiff(path: Path, coherence: np.ndarray, grid: SceneGrid, band_name: str) -> int:
    """Write a float32, NaN no-data, deflate-compressed tiled GeoTIFF atomically; return its size in bytes."""
    partial = path.with_name(f".{path.name}.partial")
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": "float32",
        "crs": f"EPSG:{grid.crs_epsg}",
        "transform": grid.transform,
        "nodata": np.nan,
        "compress": "deflate",
        "predictor": 3,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(partial, "w", **profile) as dataset:
        dataset.write(coherence.astype(np.float32, copy=False), 1)
        dataset.set_band_description(1, band_name)
    os.replace(partial, path)
    return path.stat().st_size


@dataclass(frozen=True)
class ResultItem:
    """What the store keeps about one output file; STAC documents are built from it on request."""

    file_name: str
    reference_datetime: str
    secondary_datetime: str | None
    epsg: int
    shape: tuple[int, int]
    proj_bbox: tuple[float, float, float, float]
    bbox: tuple[float, float, float, float]
    geometry: dict[str, Any]
    file_size: int
    band_name: str = "coh_VV"

    @classmethod
    def describe(
        cls,
        request: CoherenceComputation,
        pair: PlannedPair,
        file_name: str,
        grid: SceneGrid,
        footprint_lonlat: shapely.Polygon,
        file_size: int,
        naming: ResultNaming = "process",
    ) -> ResultItem:
        left, top = grid.transform @ (0, 0)
        right, bottom = grid.transform @ (grid.width, grid.height)
        proj_bbox = (min(left, right), min(top, bottom), max(left, right), max(top, bottom))
        if names_outputs_by_pair(request, naming):
            reference, secondary = _rfc3339(pair.reference_start), _rfc3339(pair.secondary_start)
        else:
            # Files named by the reference date come with items that carry it alone, at midnight.
            reference, secondary = f"{pair.reference_start:%Y-%m-%d}T00:00:00Z", None
        return cls(
            file_name=file_name,
            reference_datetime=reference,
            secondary_datetime=secondary,
            epsg=grid.crs_epsg,
            shape=grid.shape,
            proj_bbox=proj_bbox,
            bbox=transform_bounds(f"EPSG:{grid.crs_epsg}", "EPSG:4326", *proj_bbox),
            geometry=mapping(footprint_lonlat),
            file_size=file_size,
            band_name=f"coh_{request.polarization}",
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultItem:
        return cls(**data)


def _rfc3339(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S.%f}Z"


class UrlSigner:
    """Signs and checks the unauthenticated result URLs: an itsdangerous signature over job, user,
    resource and expiry. The expiry stays a query parameter of its own, as in CDSE's links, so that
    an expired link is told apart (410) from a forged one (403)."""

    def __init__(self, secret: str) -> None:
        self._signer = Signer(secret, salt="result-url", digest_method=hashlib.sha256)

    @staticmethod
    def _message(job_id: str, user_id: str, resource: str, expires: int) -> bytes:
        return f"{job_id}\n{user_id}\n{resource}\n{expires}".encode()

    def signature(self, job_id: str, user_id: str, resource: str, expires: int) -> str:
        return self._signer.get_signature(self._message(job_id, user_id, resource, expires)).decode()

    def is_valid(self, job_id: str, user_id: str, resource: str, expires: int, signature: str) -> bool:
        return self._signer.verify_signature(self._message(job_id, user_id, resource, expires), signature)


def encode_user(user_id: str) -> str:
    return base64.urlsafe_b64encode(user_id.encode()).decode().rstrip("=")


def decode_user(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()


class ResultLinks:
    """The URLs of one job's results under the API root, signed for the job's owner."""

    def __init__(self, root_url: str, signer: UrlSigner, job_id: str, user_id: str) -> None:
        self._root = root_url.rstrip("/")
        self._signer = signer
        self._job_id = job_id
        self._user_id = user_id
        self._expires = int(time.time()) + SIGNED_URL_SECONDS

    def _signed(self, kind: str, resource: str) -> str:
        signature = self._signer.signature(self._job_id, self._user_id, f"{kind}/{resource}", self._expires)
        path = f"{self._root}/jobs/{self._job_id}/results/{kind}/{encode_user(self._user_id)}/{signature}"
        return f"{path}/{resource}?expires={self._expires}" if resource else f"{path}?expires={self._expires}"

    def self_href(self) -> str:
        return f"{self._root}/jobs/{self._job_id}/results"

    def canonical_href(self) -> str:
        return self._signed("collection", "")

    def item_href(self, item_id: str) -> str:
        return self._signed("items", item_id)

    def asset_href(self, file_name: str) -> str:
        return self._signed("assets", file_name)


def _asset(item: ResultItem, links: ResultLinks) -> dict[str, Any]:
    return {
        "href": links.asset_href(item.file_name),
        "type": GEOTIFF_MEDIA_TYPE,
        "roles": ["data"],
        "title": item.file_name,
        "file:size": item.file_size,
        "proj:epsg": item.epsg,
        "proj:code": f"EPSG:{item.epsg}",
        "proj:shape": list(item.shape),
        "proj:bbox": list(item.proj_bbox),
        # STAC 1.1 common band metadata, as CDSE lists an asset's bands
        "bands": [{"name": item.band_name, "data_type": "float32", "nodata": "nan"}],
    }


def stac_item(job_id: str, item: ResultItem, links: ResultLinks) -> dict[str, Any]:
    """One output as a STAC item: ``datetime`` is the reference acquisition, and for the APEx
    process ``sar:datetime_secondary`` the secondary one."""
    properties: dict[str, Any] = {
        "datetime": item.reference_datetime,
        "proj:epsg": item.epsg,
        "proj:code": f"EPSG:{item.epsg}",
    }
    if item.secondary_datetime is not None:
        properties["sar:datetime_secondary"] = item.secondary_datetime
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": STAC_EXTENSIONS,
        "id": item.file_name,
        "collection": job_id,
        "geometry": item.geometry,
        "bbox": list(item.bbox),
        "properties": properties,
        "assets": {item.file_name: _asset(item, links)},
        "links": [
            {"rel": "self", "href": links.item_href(item.file_name), "type": "application/geo+json"},
            {"rel": "collection", "href": links.canonical_href(), "type": "application/json"},
        ],
    }


def stac_collection(
    job_id: str, title: str | None, status: str, items: list[ResultItem], links: ResultLinks
) -> dict[str, Any]:
    """The job's results as a STAC 1.1 collection: item links plus every asset at collection level."""
    if items:
        west, south, east, north = (
            min(i.bbox[0] for i in items),
            min(i.bbox[1] for i in items),
            max(i.bbox[2] for i in items),
            max(i.bbox[3] for i in items),
        )
        spatial = [[west, south, east, north]]
        times = [i.reference_datetime for i in items] + [i.secondary_datetime or "" for i in items]
        interval = [[min(i.reference_datetime for i in items), max(times)]]
    else:
        spatial, interval = [[-180.0, -90.0, 180.0, 90.0]], [[None, None]]
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": STAC_EXTENSIONS,
        "id": job_id,
        "title": title or f"Results of {job_id}",
        "description": f"Results for batch job {job_id}",
        "license": "proprietary",
        "extent": {"spatial": {"bbox": spatial}, "temporal": {"interval": interval}},
        "summaries": {},
        "openeo:status": status,
        "assets": {item.file_name: _asset(item, links) for item in items},
        "links": [
            {"rel": "self", "href": links.self_href(), "type": "application/json"},
            {"rel": "canonical", "href": links.canonical_href(), "type": "application/json"},
            *(
                {"rel": "item", "href": links.item_href(item.file_name), "type": "application/geo+json"}
                for item in items
            ),
        ],
    }
