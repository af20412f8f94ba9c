"""The backend's job listing, read only as far as the caller's own jobs.

Polling each job separately costs one request per job and tick; CDSE pages ``GET /jobs``
with ``limit`` and a ``next`` link, newest first, and the seed notebook lost every job past
page one. An account holds thousands of jobs after a year (other clients', and our own past
ones), so nothing here reads every page: the sensor reads pages only until it has seen every
job it still waits for, describing directly the few awaited jobs older than the first page;
a run that knows its jobs describes them by id (:func:`describe_jobs`); a run that looks for
a job it entered but never recorded reads only the pages of jobs created since it entered it
(:func:`list_jobs_created_since`). Only rebuilding a corrupt ledger, which knows nothing,
reads every page (:func:`list_all_jobs`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the tick's plan reads JobListing without the openEO client (see defs.sensors)
    import openeo

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


def _pages(
    connection: openeo.Connection, listing: JobListing, page_size: int
) -> Iterator[list[dict[str, Any]]]:
    """The listing's pages, newest first, each entered in ``listing`` (and counted) before it is yielded.

    ``listing.complete`` is true once the last page was yielded.
    """
    next_url: str | None = "/jobs"
    params: dict[str, Any] | None = {"limit": page_size}
    while next_url:
        response = connection.get(next_url, params=params, expected_status=200).json()
        listing.requests += 1
        params = None  # the next link carries its own query
        jobs = response.get("jobs", [])
        listing.jobs.update((job["id"], job) for job in jobs)
        next_url = next(
            (link["href"] for link in response.get("links", []) if link.get("rel") == "next"), None
        )
        listing.complete = next_url is None
        yield jobs


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
    for _ in _pages(connection, listing, page_size):
        if missing is None:
            continue
        missing -= listing.jobs.keys()
        if not missing:
            break
        if not listing.complete and len(missing) <= describe_at_most:
            _describe(connection, missing, listing)
            break
    return listing


def _describe(connection: openeo.Connection, job_ids: Iterable[str], listing: JobListing) -> None:
    from openeo.rest import OpenEoApiError

    for job_id in sorted(job_ids):
        listing.requests += 1
        try:
            listing.jobs[job_id] = connection.job(job_id).describe()
        except OpenEoApiError as error:
            if error.http_status_code != 404:
                raise
            listing.unknown.add(job_id)


def describe_jobs(connection: openeo.Connection, job_ids: Iterable[str]) -> JobListing:
    """Each job by id (``GET /jobs/{id}``): one request per job, whatever the account's history.

    A job the backend does not know (404) is left out of ``jobs`` and named in ``unknown``.
    """
    listing = JobListing()
    _describe(connection, set(job_ids), listing)
    return listing


def list_jobs_created_since(
    connection: openeo.Connection, since: dt.datetime | None, page_size: int = PAGE_SIZE
) -> JobListing:
    """The first page, then further pages while they still reach back to jobs created at or after ``since``.

    ``since=None`` reads the first page only. A page whose oldest job has no readable ``created``
    does not prove that the rest is older, so the next page is read too.
    """
    listing = JobListing()
    for jobs in _pages(connection, listing, page_size):
        oldest = _created(jobs[-1]) if jobs else None
        if since is None or (oldest is not None and oldest < since):
            break
    return listing


def _created(job: dict[str, Any]) -> dt.datetime | None:
    try:
        created = dt.datetime.fromisoformat(job["created"])
    except (KeyError, TypeError, ValueError):
        return None
    return created if created.tzinfo else created.replace(tzinfo=dt.UTC)


def list_all_jobs(connection: openeo.Connection, page_size: int = PAGE_SIZE) -> dict[str, dict[str, Any]]:
    """Every job of the user by id, following ``next`` links to the last page: the account's whole history."""
    return list_jobs_until_seen(connection, None, page_size).jobs
