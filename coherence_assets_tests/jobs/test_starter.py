"""Starting jobs within a backend's limits, against the embedded backend."""

import openeo

from coherence_assets.jobs.limits import BackendLimits
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.jobs.starter import start_jobs
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
