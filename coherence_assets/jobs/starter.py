"""Starting created jobs only while the backend has room, without ever waiting inside a call.

CDSE runs at most 2 batch jobs of a user at once, queues further started jobs, and accepts
about one start per 5 s (429 otherwise). Jobs are started while fewer than
``max_running_jobs + queued_ahead`` of them are queued or running, and never sooner than
``min_seconds_between_starts`` after the previous start: a start that must wait is left to a
later sensor tick (the last start time travels in the sensor's cursor), so no tick sleeps.

The spacing is counted from when the previous start's *answer* arrived. The backend counts it
between the starts it *received*; a request can take long to arrive (a busy gateway) and the next
one little, so two starts sent 5 s apart can be received less than 5 s apart (429). The answer
comes after the reception, so a start sent 5 s after it is received at least 5 s after it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import openeo
from openeo.rest import OpenEoApiError

from coherence_assets.jobs.ledger import QUEUED, RUNNING
from coherence_assets.jobs.limits import BackendLimits

log = logging.getLogger(__name__)

OCCUPYING_SLOTS = frozenset({QUEUED, RUNNING})


@dataclass
class StartOutcome:
    started: list[str] = field(default_factory=list)
    rate_limited: bool = False
    free_slots_left: int = 0
    last_start_at: float | None = None


def free_slots(backend_jobs: dict[str, dict[str, Any]], limits: BackendLimits) -> int:
    busy = sum(job["status"] in OCCUPYING_SLOTS for job in backend_jobs.values())
    return max(0, limits.max_running_jobs + limits.queued_ahead - busy)


def start_jobs(
    connection: openeo.Connection,
    candidates: Iterable[str],
    backend_jobs: dict[str, dict[str, Any]],
    limits: BackendLimits,
    last_start_at: float | None = None,
    clock: Callable[[], float] = time.time,
) -> StartOutcome:
    """Start ``candidates`` (created jobs, oldest first) while slots are free and the spacing allows.

    ``last_start_at`` (epoch seconds) is the previous start known to the caller, e.g. from the
    sensor's cursor, so that spacing holds across ticks too. Returns at once: a start that is
    not yet due is left for the next call.
    """
    outcome = StartOutcome(free_slots_left=free_slots(backend_jobs, limits), last_start_at=last_start_at)
    for job_id in candidates:
        if outcome.free_slots_left <= 0:
            break
        if (
            outcome.last_start_at is not None
            and clock() < outcome.last_start_at + limits.min_seconds_between_starts
        ):
            break
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
        outcome.last_start_at = clock()  # after the answer, hence after the backend received it
        outcome.started.append(job_id)
        outcome.free_slots_left -= 1
    return outcome
