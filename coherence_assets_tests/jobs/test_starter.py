"""Starting jobs within a backend's limits, against the embedded backend."""

import time
from collections.abc import Iterator
from pathlib import Path

import openeo
import pytest

from coherence_assets.jobs.limits import BackendLimits
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.jobs.starter import start_jobs
from coherence_assets_tests.conftest import LiveBackend, start_backend
from coherence_assets_tests.embedded_openeo.api_client import ApiClient


def test_a_start_not_yet_due_is_left_for_a_later_call_instead_of_waiting(backend):
    api = ApiClient(backend.url)
    job_ids = [api.create_job(title=f"job {index}") for index in range(3)]
    connection = openeo.connect(backend.url).authenticate_basic("local", "local")
    limits = BackendLimits(max_running_jobs=2, min_seconds_between_starts=5.0, queued_ahead=0)

    too_soon = start_jobs(connection, job_ids, list_all_jobs(connection), limits, 998.0, clock=lambda: 1000.0)
    due = start_jobs(connection, job_ids, list_all_jobs(connection), limits, 998.0, clock=lambda: 1003.0)

    assert too_soon.started == [] and too_soon.last_start_at == 998.0
    assert due.started == job_ids[:1]  # the next start is due 5 s after this one: a later tick's
    assert due.last_start_at == 1003.0
    assert api.status(job_ids[1]) == api.status(job_ids[2]) == "created"


def test_with_no_spacing_every_free_slot_and_one_queued_ahead_are_filled_at_once(backend):
    api = ApiClient(backend.url)
    job_ids = [api.create_job(title=f"job {index}") for index in range(4)]
    connection = openeo.connect(backend.url).authenticate_basic("local", "local")

    outcome = start_jobs(
        connection, job_ids, list_all_jobs(connection), BackendLimits(2, 0.0, queued_ahead=1)
    )

    assert outcome.started == job_ids[:3]
    assert api.status(job_ids[3]) == "created"


def test_no_free_slot_starts_nothing(backend):
    api = ApiClient(backend.url)
    job_id = api.create_job()
    connection = openeo.connect(backend.url).authenticate_basic("local", "local")
    busy = {"a": {"status": "running"}, "b": {"status": "queued"}, job_id: {"status": "created"}}

    outcome = start_jobs(connection, [job_id], busy, BackendLimits(2, 0.0, queued_ahead=0))

    assert outcome.started == [] and outcome.free_slots_left == 0
    assert api.status(job_id) == "created"


SPACING_SECONDS = 2.0


@pytest.fixture
def spaced_backend(tmp_path: Path) -> Iterator[LiveBackend]:
    """A backend that answers 429 to starts received less than ``SPACING_SECONDS`` apart."""
    yield from start_backend(tmp_path / "backend", min_seconds_between_starts=SPACING_SECONDS)


def test_a_slow_start_is_followed_by_the_next_one_only_after_the_spacing_counted_from_its_reception(
    spaced_backend: LiveBackend,
):
    # The backend counts the spacing between the starts it receives: a first start held up on
    # its way (a busy gateway) must not make the next one, sent a spacing after the first was
    # sent, arrive too soon.
    live, spacing, delay = spaced_backend, SPACING_SECONDS, 1.5
    api = ApiClient(live.url)
    first, second = api.create_job(title="first"), api.create_job(title="second")
    connection = openeo.connect(live.url).authenticate_basic("local", "local")
    limits = BackendLimits(max_running_jobs=2, min_seconds_between_starts=spacing, queued_ahead=0)
    live.add_fault(path=r"^/jobs/[^/]+/results$", method="POST", delay_seconds=delay, times=1)

    outcomes = [start_jobs(connection, [first], {}, limits)]
    deadline = time.monotonic() + 3 * (spacing + delay)
    while second not in outcomes[-1].started and time.monotonic() < deadline:
        time.sleep(0.05)  # ticks as often as one likes: a start not yet due is left for later
        outcomes.append(start_jobs(connection, [second], {}, limits, outcomes[-1].last_start_at))

    assert [outcome.rate_limited for outcome in outcomes] == [False] * len(outcomes)
    assert outcomes[0].started == [first] and outcomes[-1].started == [second]
    assert api.status(first) != "created" and api.status(second) != "created"
