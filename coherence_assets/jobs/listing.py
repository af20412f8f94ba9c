"""The backend's job listing: one listing serves every job the project tracks.

Polling each job separately costs one request per job and tick; CDSE pages ``GET /jobs``
with ``limit`` and a ``next`` link, newest first, and the seed notebook lost every job past
page one. The sensor reads pages only until it has seen every job it still waits for, so a
tick's cost follows the active work, not the account's history; when only a few awaited jobs
are older than the first page, it describes those directly instead of paging back to them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import openeo
from openeo.rest import OpenEoApiError

PAGE_SIZE = 100
DESCRIBE_AT_MOST = 3  # awaited jobs missing from page one: cheaper described than paged to


@dataclass
class JobListing:
    """Jobs by id from the first pages of the listing.

    ``complete`` says the last page was read: only then is a job missing from ``jobs``
    really not listed by the backend; ``unknown`` holds awaited jobs the backend, asked
    directly, says it does not know (404).
    """

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False
    requests: int = 0
    unknown: set[str] = field(default_factory=set)

    def proves_absent(self, job_id: str) -> bool:
        return job_id not in self.jobs and (self.complete or job_id in self.unknown)


def list_jobs_until_seen(
    connection: openeo.Connection,
    awaited: Collection[str] | None = None,
    page_size: int = PAGE_SIZE,
    describe_at_most: int = DESCRIBE_AT_MOST,
) -> JobListing:
    """Follow ``next`` links until every ``awaited`` job was seen (all pages when ``awaited`` is None).

    After the first page, at most ``describe_at_most`` awaited jobs still missing are described
    one by one (``GET /jobs/{id}``) rather than paged to.
    """
    listing = JobListing()
    missing = None if awaited is None else set(awaited)
    next_url: str | None = "/jobs"
    params: dict[str, Any] | None = {"limit": page_size}
    while next_url:
        response = connection.get(next_url, params=params, expected_status=200).json()
        listing.requests += 1
        params = None  # the next link carries its own query
        for job in response.get("jobs", []):
            listing.jobs[job["id"]] = job
        next_url = next(
            (link["href"] for link in response.get("links", []) if link.get("rel") == "next"), None
        )
        if missing is not None:
            missing -= listing.jobs.keys()
            if not missing:
                break
            if next_url and len(missing) <= describe_at_most:
                _describe(connection, missing, listing)
                break
    listing.complete = next_url is None
    return listing


def _describe(connection: openeo.Connection, job_ids: set[str], listing: JobListing) -> None:
    for job_id in sorted(job_ids):
        listing.requests += 1
        try:
            listing.jobs[job_id] = connection.job(job_id).describe()
        except OpenEoApiError as error:
            if error.http_status_code != 404:
                raise
            listing.unknown.add(job_id)


def list_all_jobs(connection: openeo.Connection, page_size: int = PAGE_SIZE) -> dict[str, dict[str, Any]]:
    """Every job of the user by id, following ``next`` links to the last page."""
    return list_jobs_until_seen(connection, None, page_size).jobs
