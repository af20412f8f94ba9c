"""The result assets of a finished openEO job, with the pair dates its STAC items give them.

CDSE's ``sentinel1_sar_coherence`` results link one STAC item per pair (``datetime`` and
``sar:datetime_secondary``); the older processes list their assets on the collection only,
named after the reference date. Items are read first, the collection's assets are the fallback.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import openeo

from coherence_assets.rasters.asset_matching import ResultAssetRef, asset_refs_from_stac


# Our own walk (one level: collection -> items): the openeo client's JobResults.get_assets() reads
# the collection's assets only, without the items' pair dates, and its downloader fetches whole
# results to disk. pystac would only parse what we read as plain dicts (two dates; each asset's
# href, type, size), and its Collection refuses one without the license or extent we never read;
# items are fetched through the logged-in connection either way. A relative href resolves against
# the self link, as STAC says.
def item_links(collection: dict[str, Any]) -> list[str]:
    base = next((link["href"] for link in collection.get("links", []) if link.get("rel") == "self"), "")
    return [urljoin(base, link["href"]) for link in collection.get("links", []) if link.get("rel") == "item"]


def job_result_assets(connection: openeo.Connection, job_id: str) -> list[ResultAssetRef]:
    """Every asset of the job's results, dated from its STAC item where the backend links items."""
    collection = connection.job(job_id).get_results().get_metadata()
    links = item_links(collection)
    if not links:
        return asset_refs_from_stac(collection)
    assets: list[ResultAssetRef] = []
    for href in links:
        assets.extend(asset_refs_from_stac(connection.get(href, expected_status=200).json()))
    return assets
