"""A backend's job limits, and CDSE's: their one home (kept free of heavy imports for the CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from coherence_assets.cdse_facts import CDSE_MAX_RUNNING_JOBS, CDSE_MIN_SECONDS_BETWEEN_STARTS


@dataclass(frozen=True)
class BackendLimits:
    """A backend's concurrency and start-rate limits (CDSE's: ``CDSE_LIMITS``).

    ``queued_ahead``: jobs started beyond the running ones, to wait in the backend's own queue.
    A job started only when the sensor sees a free slot leaves that slot idle for up to a tick
    interval after each job ends (utilisation 0.80 with 30 s ticks); a queued job takes the slot
    the moment a running one ends, whatever the tick interval. As many as there are slots, so
    that even all running jobs ending within one tick find a job waiting; no more, so that a
    partition submitted later does not wait behind a long queue.
    """

    max_running_jobs: int
    min_seconds_between_starts: float
    queued_ahead: int


# CDSE's openEO limits (cdse_facts), and two more jobs queued ahead, one per slot (see BackendLimits).
CDSE_LIMITS = BackendLimits(
    max_running_jobs=CDSE_MAX_RUNNING_JOBS,
    min_seconds_between_starts=CDSE_MIN_SECONDS_BETWEEN_STARTS,
    queued_ahead=CDSE_MAX_RUNNING_JOBS,
)
