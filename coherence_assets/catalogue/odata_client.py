"""Client of CDSE's OData ``Bursts`` catalogue: which acquisitions a burst has in a date range.

It follows ``@odata.nextLink`` to the end (CDSE pages at most 1000 records), and retries
429, 5xx, time-outs and answers that are not JSON with backoff (:mod:`coherence_assets.http_session`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import requests

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.http_session import MalformedAnswerError, get_json, retrying_session

PAGE_SIZE = 1000  # CDSE's maximum $top
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class CatalogueError(RuntimeError):
    """The catalogue could not be read; the message names the URL and what to try."""


@dataclass(frozen=True)
class BurstAcquisition:
    """One burst record: a burst of one subswath and polarisation, acquired at ``start``."""

    record_id: str
    burst_id: int
    subswath: str
    relative_orbit: int
    polarisation: str
    start: dt.datetime
    parent_product_name: str
    platform: str
    orbit_direction: str = ""  # ASCENDING or DESCENDING, as CDSE writes it; empty if the record lacks it
    footprint: dict[str, Any] | None = None  # GeoJSON geometry (EPSG:4326) of the record's GeoFootprint

    @property
    def date(self) -> dt.date:
        return self.start.date()


def _odata_timestamp(moment: dt.datetime) -> str:
    return moment.strftime(TIMESTAMP_FORMAT)[:-4] + "Z"  # milliseconds, as CDSE's examples write them


def bursts_filter(burst: BurstKey, polarisation: str, start: dt.datetime, end: dt.datetime) -> str:
    """The ``$filter`` expression for one burst's records between ``start`` and ``end`` (inclusive)."""
    return (
        f"ContentDate/Start ge {_odata_timestamp(start)} and ContentDate/Start le {_odata_timestamp(end)}"
        f" and PolarisationChannels eq '{polarisation}' and BurstId eq {burst.burst_id}"
        f" and SwathIdentifier eq '{burst.subswath}' and RelativeOrbitNumber eq {burst.relative_orbit}"
    )


def area_filter(area_wkt: str, start: dt.datetime, end: dt.datetime) -> str:
    """The ``$filter`` for every burst record whose footprint meets ``area_wkt`` (EPSG:4326) in [start, end].

    CDSE's documented geographic query: ``OData.CSC.Intersects(area=geography'SRID=4326;POLYGON((...))')``.
    """
    return (
        f"OData.CSC.Intersects(area=geography'SRID=4326;{area_wkt}')"
        f" and ContentDate/Start ge {_odata_timestamp(start)} and ContentDate/Start le {_odata_timestamp(end)}"
    )


def _parse_record(record: dict[str, Any]) -> BurstAcquisition:
    return BurstAcquisition(
        record_id=str(record["Id"]),
        burst_id=int(record["BurstId"]),
        subswath=str(record["SwathIdentifier"]),
        relative_orbit=int(record["RelativeOrbitNumber"]),
        polarisation=str(record["PolarisationChannels"]),
        start=dt.datetime.fromisoformat(str(record["ContentDate"]["Start"]).replace("Z", "+00:00")),
        parent_product_name=str(record["ParentProductName"]),
        platform=str(record.get("PlatformSerialIdentifier", "")),
        orbit_direction=str(record.get("OrbitDirection", "")),
        footprint=record.get("GeoFootprint"),
    )


class BurstCatalogueClient:
    """Reads burst records from an OData ``Bursts`` endpoint such as CDSE's."""

    def __init__(self, base_url: str, session: requests.Session | None = None, timeout_seconds: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.session = session or retrying_session()
        self.timeout_seconds = timeout_seconds

    @property
    def bursts_url(self) -> str:
        return f"{self.base_url}/Bursts"

    def search_query(self, burst: BurstKey, polarisation: str, start: dt.datetime, end: dt.datetime) -> str:
        """The query :meth:`search` sends, as a person reads it (not URL-encoded), for error messages."""
        return f"{self.bursts_url}?$filter={bursts_filter(burst, polarisation, start, end)}"

    def _get_page(self, url: str, params: dict[str, str] | None) -> dict[str, Any]:
        """One page of records; every failure becomes a :class:`CatalogueError` naming the URL."""
        shown_url = requests.Request("GET", url, params=params).prepare().url
        try:
            response, page = get_json(self.session, url, params=params, timeout=self.timeout_seconds)
        except MalformedAnswerError as error:
            raise CatalogueError(
                f"catalogue {shown_url} kept sending malformed answers (not JSON) after retries: {error}; "
                "try again later or check COHERENCE_CATALOGUE_URL"
            ) from error
        except requests.exceptions.RetryError as error:
            raise CatalogueError(
                f"catalogue {shown_url} kept failing after retries ({error}); it may be overloaded: "
                "try again later or check COHERENCE_CATALOGUE_URL"
            ) from error
        except requests.exceptions.RequestException as error:
            raise CatalogueError(
                f"catalogue {shown_url} did not answer ({type(error).__name__}: {error}); "
                "check COHERENCE_CATALOGUE_URL and the network"
            ) from error
        if response.status_code != 200:
            raise CatalogueError(
                f"catalogue {shown_url} answered HTTP {response.status_code}: {response.text[:500]}"
            )
        if not isinstance(page, dict) or not isinstance(page.get("value"), list):
            raise CatalogueError(f"catalogue {shown_url} sent JSON without a 'value' list of records")
        return page

    def search(
        self, burst: BurstKey, polarisation: str, start: dt.datetime, end: dt.datetime
    ) -> list[BurstAcquisition]:
        """Every record of one burst in [start, end], over all pages, ordered by acquisition time."""
        return self._search(bursts_filter(burst, polarisation, start, end))

    def search_area(self, area_wkt: str, start: dt.datetime, end: dt.datetime) -> list[BurstAcquisition]:
        """Every burst record whose footprint meets ``area_wkt`` (EPSG:4326) in [start, end], over all pages."""
        return self._search(area_filter(area_wkt, start, end))

    def _search(self, odata_filter: str) -> list[BurstAcquisition]:
        params: dict[str, str] | None = {
            "$filter": odata_filter,
            "$orderby": "ContentDate/Start asc",
            "$top": str(PAGE_SIZE),
        }
        url = self.bursts_url
        acquisitions: list[BurstAcquisition] = []
        while url:
            page = self._get_page(url, params)
            try:
                acquisitions.extend(_parse_record(record) for record in page["value"])
            except (KeyError, TypeError, ValueError) as error:
                raise CatalogueError(
                    f"catalogue {url} sent a burst record without a usable {error}: "
                    "is COHERENCE_CATALOGUE_URL an OData Bursts endpoint?"
                ) from error
            url, params = page.get("@odata.nextLink"), None  # the next link carries every parameter
        return sorted(acquisitions, key=lambda acquisition: acquisition.start)
