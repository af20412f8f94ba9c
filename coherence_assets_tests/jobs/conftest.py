"""Helpers of the job tests: logging in to the live backend, and the coherence_job step over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import openeo

from coherence_assets.jobs.limits import BackendLimits
from coherence_assets.jobs.partition_submission import PartitionSubmission, SubmissionRun, submit_partition
from coherence_assets.jobs.processes import CoherenceRequest
from coherence_assets.pairs.pair import Pair
from coherence_assets.settings import LOCAL_GITHUB_API_PATH
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend

BURST = "t015_030343_iw2"
WINDOW = "2023-07-01"
LIMITS = BackendLimits(max_running_jobs=2, min_seconds_between_starts=0.0, queued_ahead=0)


def connector(backend: LiveBackend) -> Callable[[], openeo.Connection]:
    """A fresh login to the live backend as its user, as the openeo_backend resource makes one."""
    return lambda: openeo.connect(backend.url).authenticate_basic("local", "local")


def submit(
    store: DataStore, backend: LiveBackend, pairs: list[Pair], start_jobs_now: bool, window: str = WINDOW
) -> PartitionSubmission:
    """The coherence_job step for BURST and ``window``."""
    run = SubmissionRun(
        store,
        connector(backend),
        backend_url=backend.url,
        limits=LIMITS,
        make_request=lambda: CoherenceRequest(github_api_url=backend.url + LOCAL_GITHUB_API_PATH),
        max_attempts=2,
        holder="test",
        start_jobs_now=start_jobs_now,
    )
    return submit_partition(run, BURST, window, pairs)
