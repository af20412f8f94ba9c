"""The backend's job listing: one listing serves every job the project tracks.

Polling each job separately costs one request per job and tick; CDSE pages ``GET /jobs``
with ``limit`` and a ``next`` link, newest first, and the seed notebook lost every job past
page one. The sensor reads pages only until it has seen every job it still waits for, so a
tick's cost follows the active work, not the account's history.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import openeo

PAGE_SIZE = 100


@dataclass
class JobListing:
    """Jobs by id from the first pages of the listing.

    ``complete`` says the last page was read: only then is a job missing from ``jobs``
    really not listed by the backend.
    """

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    complete: bool = False
    requests: int = 0


def list_jobs_until_seen(
    connection: openeo.Connection, awaited: Collection[str] | None = None, page_size: int = PAGE_SIZE
) -> JobListing:
    """Follow ``next`` links until every ``awaited`` job was listed (all pages when ``awaited`` is None)."""
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
    listing.complete = next_url is None
    return listing


def list_all_jobs(connection: openeo.Connection, page_size: int = PAGE_SIZE) -> dict[str, dict[str, Any]]:
    """Every job of the user by id, following ``next`` links to the last page."""
    return list_jobs_until_seen(connection, None, page_size).jobs
