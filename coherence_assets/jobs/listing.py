"""The backend's job listing, all pages: one listing serves every job the project tracks.

Polling each job separately costs one request per job and tick; CDSE pages ``GET /jobs``
with ``limit`` and a ``next`` link, and the seed notebook lost every job past page one.
"""

from __future__ import annotations

from typing import Any

import openeo

PAGE_SIZE = 100


def list_all_jobs(connection: openeo.Connection, page_size: int = PAGE_SIZE) -> dict[str, dict[str, Any]]:
    """Every job of the user by id, following ``next`` links to the last page."""
    jobs: dict[str, dict[str, Any]] = {}
    response = connection.get("/jobs", params={"limit": page_size}, expected_status=200).json()
    while True:
        for job in response.get("jobs", []):
            jobs[job["id"]] = job
        next_url = next(
            (link["href"] for link in response.get("links", []) if link.get("rel") == "next"), None
        )
        if not next_url:
            return jobs
        response = connection.get(next_url, expected_status=200).json()
