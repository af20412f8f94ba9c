"""Starting jobs within a backend's limits, against the embedded backend."""

import openeo

from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.jobs.starter import BackendLimits, start_jobs
from coherence_assets_tests.embedded_backend.api_client import ApiClient


class FakeClock:
    """Time that only moves when the code under test sleeps, so spacing is checked without waiting."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_starts_fill_free_slots_only_and_keep_spacing_across_calls(backend):
    api = ApiClient(backend.url)
    job_ids = [api.create_job(title=f"job {index}") for index in range(3)]
    connection = openeo.connect(backend.url).authenticate_basic("local", "local")
    clock = FakeClock(now=1000.0)
    limits = BackendLimits(max_running_jobs=2, min_seconds_between_starts=5.0)

    outcome = start_jobs(
        connection,
        job_ids,
        list_all_jobs(connection),
        limits,
        last_start_at=998.0,
        clock=clock,
        sleep=clock.sleep,
    )

    assert outcome.started == job_ids[:2]
    assert clock.sleeps == [3.0, 5.0]  # 3 s left of the previous tick's spacing, then one full spacing
    assert outcome.last_start_at == 1008.0
    assert {api.status(job_id) for job_id in job_ids[:2]} <= {"queued", "running", "finished"}
    assert api.status(job_ids[2]) == "created"


def test_no_free_slot_starts_nothing(backend):
    api = ApiClient(backend.url)
    job_id = api.create_job()
    connection = openeo.connect(backend.url).authenticate_basic("local", "local")
    busy = {"a": {"status": "running"}, "b": {"status": "queued"}, job_id: {"status": "created"}}

    outcome = start_jobs(connection, [job_id], busy, BackendLimits(2, 0.0))

    assert outcome.started == [] and outcome.free_slots_left == 0
    assert api.status(job_id) == "created"
