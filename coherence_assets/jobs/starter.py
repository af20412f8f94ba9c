"""Starting created jobs only while the backend has room.

CDSE runs at most 2 batch jobs of a user at once and accepts about one start per 5 s
(429 otherwise). Jobs started beyond that only wait in the backend's queue, where they
block a backfill's other partitions, so jobs stay ``created`` until a slot is free.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import openeo
from openeo.rest import OpenEoApiError

log = logging.getLogger(__name__)

OCCUPYING_SLOTS = frozenset({"queued", "running"})


@dataclass(frozen=True)
class BackendLimits:
    """A backend's concurrency and start-rate limits (CDSE's by default)."""

    max_running_jobs: int = 2
    min_seconds_between_starts: float = 5.0


@dataclass
class StartOutcome:
    started: list[str] = field(default_factory=list)
    rate_limited: bool = False
    free_slots_left: int = 0
    last_start_at: float | None = None


def free_slots(backend_jobs: dict[str, dict[str, Any]], limits: BackendLimits) -> int:
    return max(
        0, limits.max_running_jobs - sum(job["status"] in OCCUPYING_SLOTS for job in backend_jobs.values())
    )


def start_jobs(
    connection: openeo.Connection,
    candidates: Iterable[str],
    backend_jobs: dict[str, dict[str, Any]],
    limits: BackendLimits,
    last_start_at: float | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> StartOutcome:
    """Start ``candidates`` (created jobs, oldest first) while slots are free, spacing starts as the limits say.

    ``last_start_at`` (epoch seconds) is the previous start known to the caller, e.g. from the
    sensor's cursor, so that spacing holds across ticks too.
    """
    outcome = StartOutcome(free_slots_left=free_slots(backend_jobs, limits), last_start_at=last_start_at)
    for job_id in candidates:
        if outcome.free_slots_left <= 0:
            break
        if outcome.last_start_at is not None:
            sleep(max(0.0, outcome.last_start_at + limits.min_seconds_between_starts - clock()))
        try:
            connection.job(job_id).start()
        except OpenEoApiError as error:
            if error.http_status_code == 429:
                log.info(
                    "backend refused to start job %s now (429: %s); it stays created", job_id, error.message
                )
                outcome.rate_limited = True
                break
            raise
        log.info("started job %s", job_id)
        outcome.last_start_at = clock()
        outcome.started.append(job_id)
        outcome.free_slots_left -= 1
    return outcome
