"""The job sensor's tick without Dagster: the embedded backend over HTTP, ledgers and rasters on disk."""

from __future__ import annotations

import datetime as dt
import time

import openeo
import pytest
import requests

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.jobs.batching import PairBatch
from coherence_assets.jobs.job_store import JobStore
from coherence_assets.jobs.ledger import RESOLVED, JobProgress, JobRecord, Ledger, RunTries
from coherence_assets.jobs.ledger_index import DonePartition, TrackedJob, read_done_index, scan_ledgers
from coherence_assets.jobs.limits import BackendLimits
from coherence_assets.jobs.listing import JobListing
from coherence_assets.jobs.processes import CoherenceRequest
from coherence_assets.jobs.stuck import StuckKind, StuckReason
from coherence_assets.jobs.submission import create_job, enter_job
from coherence_assets.jobs.tick import DEFAULT_TICK_POLICY, TickCursor, TickPlan, plan_tick
from coherence_assets.jobs.tick_run import (
    BackendUnreachableError,
    MissingRasters,
    TickRun,
    apply_plan,
    run_tick,
    stuck_now,
)
from coherence_assets.pairs.window_pairs import pairs_for_window
from coherence_assets.partition_keys import partition_key
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.rasters.asset_matching import match_assets_to_pairs
from coherence_assets.rasters.job_results import job_result_assets
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend
from embedded_openeo.github_api import MAIN_COMMIT

BURST = BurstKey.parse("t015_030343_iw2")
WINDOW = "2023-07-01"
PARTITION = partition_key(str(BURST), WINDOW)
LIMITS = BackendLimits(max_running_jobs=2, min_seconds_between_starts=0.0, queued_ahead=0)


class Backend:
    """Connections to the live backend, counted: a tick with nothing to ask must not even log in."""

    def __init__(self, live: LiveBackend) -> None:
        self.live = live
        self.connections = 0

    def connect(self) -> openeo.Connection:
        self.connections += 1
        return openeo.connect(self.live.url).authenticate_basic("local", "local")


def tick(store: DataStore, backend: Backend, cursor: TickCursor) -> TickRun | None:
    return run_tick(
        store,
        cursor,
        backend.connect,
        DEFAULT_TICK_POLICY,
        LIMITS,
        dt.timedelta(minutes=5),
        downloading=set(),
        resubmitting=frozenset(),
    )


def submit_one_job(store: DataStore, backend: Backend) -> tuple[str, list]:
    """A ledger with one created (not started) job for the window's first two pairs, as coherence_job leaves it."""
    table = pairs_for_window(
        BurstCatalogueClient(backend.live.catalogue_url),
        BURST,
        "VV",
        dt.date(2023, 7, 1),
        dt.date(2023, 9, 30),
        [12],
    ).pairs
    pairs = [(row.reference_date, row.secondary_date) for row in table.itertuples()][:2]
    ledger = Ledger(str(BURST), WINDOW, backend.live.url)
    record = enter_job(ledger, BURST, CoherenceRequest(apex_commit=MAIN_COMMIT), PairBatch(12, tuple(pairs)))
    create_job(backend.connect(), CoherenceRequest(apex_commit=MAIN_COMMIT), record)
    store.write_json(store.coherence_job_path(str(BURST), WINDOW), ledger.to_json())
    assert record.job_id is not None
    return record.job_id, pairs


def wait_until_ended(backend: Backend, job_id: str, timeout: float = 60.0) -> str:
    job = backend.connect().job(job_id)
    deadline = time.monotonic() + timeout
    while (status := job.status()) in {"queued", "running"}:
        assert time.monotonic() < deadline, f"job {job_id} is still {status}"
        time.sleep(0.2)
    return status


def download_rasters(store: DataStore, backend: Backend, job_id: str, pairs: list) -> None:
    """The job's GeoTIFFs under their final names, as a download run leaves them."""
    matches = match_assets_to_pairs(job_result_assets(backend.connect(), job_id), pairs)
    assert sorted(matches.matched) == sorted(pairs)
    folder = store.coherence_rasters_dir(str(BURST), WINDOW)
    store.fs.makedirs(folder, exist_ok=True)
    for pair, asset in matches.matched.items():
        response = requests.get(asset.href, timeout=30)
        response.raise_for_status()
        store.fs.pipe_file(f"{folder}/{raster_file_name(*pair)}", response.content)


@pytest.fixture
def store(tmp_path) -> DataStore:
    return DataStore(str(tmp_path / "data"))


def test_without_a_ledger_the_tick_does_nothing_and_never_connects(store: DataStore, backend: LiveBackend):
    counted = Backend(backend)

    assert tick(store, counted, TickCursor()) is None
    assert counted.connections == 0


def test_a_job_is_started_downloaded_once_and_its_partition_then_costs_no_request_and_no_ledger_read(
    store: DataStore, backend: LiveBackend
):
    counted = Backend(backend)
    job_id, pairs = submit_one_job(store, counted)

    first = tick(store, counted, TickCursor())
    assert wait_until_ended(counted, job_id) == "finished"
    finished = tick(store, counted, first.plan.cursor)
    download_rasters(store, counted, job_id, pairs)
    downloaded = tick(store, counted, finished.plan.cursor)
    connections = counted.connections
    after = tick(store, counted, downloaded.plan.cursor)

    assert [job.record.job_id for job in first.started] == [job_id]
    assert first.requests == 2  # one listing page, one start
    assert first.plan.cursor.last_start_at is not None
    assert [(request.job.record.job_id, request.attempt) for request in finished.plan.downloads] == [
        (job_id, 1)
    ]
    assert downloaded.plan.downloads == [] and downloaded.plan.done_partitions == {PARTITION: []}
    assert [entry.partition_key for entry in read_done_index(store).values()] == [PARTITION]
    assert scan_ledgers(store).read_count == 0
    assert after.requests == 0 and counted.connections == connections
    assert after.plan.cursor.unseen == {}
    (record,) = JobStore(store).readable_ledger(str(BURST), WINDOW).jobs
    assert record.progress == JobProgress(handled=RESOLVED)  # the ledger says it: acted on, rasters in


def test_a_failed_job_is_resubmitted_with_its_error_logs_fetched_once(store: DataStore, backend: LiveBackend):
    counted = Backend(backend)
    backend.add_fault(kind="job_error", times=1, message="SNAP ran out of memory")
    job_id, _ = submit_one_job(store, counted)

    first = tick(store, counted, TickCursor())
    assert wait_until_ended(counted, job_id) == "error"
    failed = tick(store, counted, first.plan.cursor)
    again = tick(store, counted, failed.plan.cursor)

    assert [job.record.job_id for job in failed.plan.to_resubmit] == [job_id]
    assert "SNAP ran out of memory" in [entry.get("message") for entry in failed.error_logs[job_id]]
    assert failed.requests == 2  # one listing page, one request for the error logs
    assert again.plan.to_resubmit == [] and again.error_logs == {}  # asked once, not every tick


def test_a_backend_that_does_not_answer_the_listing_changes_nothing(
    store: DataStore, backend: LiveBackend, instant_retries: None
):
    counted = Backend(backend)
    job_id, _ = submit_one_job(store, counted)
    ledger_path = store.coherence_job_path(str(BURST), WINDOW)
    ledger_before = store.read_bytes(ledger_path)
    backend.add_fault(path="^/jobs$", status=503)

    with pytest.raises(BackendUnreachableError, match="503"):
        tick(store, counted, TickCursor())

    backend.clear_faults()
    assert store.read_bytes(ledger_path) == ledger_before
    assert not store.fs.exists(store.coherence_job_index_path())
    assert counted.connect().job(job_id).status() == "created"  # not started


def test_the_raster_check_only_decides_and_the_tick_removes_the_invalid_file_after_planning(store: DataStore):
    pair = (dt.date(2023, 7, 5), dt.date(2023, 7, 17))
    record = JobRecord("s-1", "title", "p", 12, [pair], {}, job_id="j-1", status="finished")
    job = TrackedJob(str(BURST), WINDOW, record, replaced=False)
    garbage = f"{store.coherence_rasters_dir(str(BURST), WINDOW)}/{raster_file_name(*pair)}"
    store.fs.makedirs(garbage.rsplit("/", 1)[0], exist_ok=True)
    store.fs.pipe_file(garbage, b"not a GeoTIFF")
    check = MissingRasters(store)
    assert check(job) == [pair] and check(job) == [pair]  # missing, asked twice
    assert store.fs.exists(garbage) and list(check.invalid) == [garbage]  # decided, nothing changed
    check.remove_invalid()
    assert not store.fs.exists(garbage) and check.invalid == {}


def test_a_partition_active_again_keeps_its_stuck_reason_in_its_marker_not_in_the_cursor(
    store: DataStore, backend: LiveBackend
):
    counted = Backend(backend)
    job_id, pairs = submit_one_job(store, counted)  # a job of the partition's new run, still to start
    stuck = StuckReason(StuckKind.FAILED, "j-before", 2, tuple(pairs))
    ledger = JobStore(store).readable_ledger(str(BURST), WINDOW)
    assert ledger is not None  # the ledger of an earlier version keeps the job that failed before
    ledger.jobs.insert(
        0, JobRecord("s-0", "before", "p", 12, pairs, {}, 2, job_id="j-before", status="error")
    )
    store.write_json(store.coherence_job_path(str(BURST), WINDOW), ledger.to_json())
    store.write_json(
        store.coherence_job_done_path(str(BURST), WINDOW),
        DonePartition(PARTITION, (stuck,), ("j-before",)).to_json(),
    )
    with JobStore(store).hold(str(BURST), WINDOW, "test") as held:
        held.mark_active()  # as a new coherence_job run does: the done record moves into the marker

    run = tick(store, counted, TickCursor())

    assert [job.record.job_id for job in run.started] == [job_id]
    assert "j-before" not in run.plan.cursor.to_json()  # neither resolved nor stuck: the marker holds it
    assert stuck_now(store) == [f"{PARTITION}: {stuck.line()}"]


def test_the_plan_is_written_by_its_own_step_which_waits_for_a_held_ledger_and_keeps_what_the_run_entered(
    store: DataStore,
):
    pair = (dt.date(2023, 7, 5), dt.date(2023, 7, 17))
    path = store.coherence_job_path(str(BURST), WINDOW)
    record = JobRecord("s-1", "title", "p", 12, [pair], {}, job_id="j-1", status="created")
    store.write_json(path, Ledger(str(BURST), WINDOW, "http://backend", [record]).to_json())
    jobs = JobStore(store)
    scanned = jobs.readable_ledger(str(BURST), WINDOW)  # as the tick read it
    finished = JobListing({"j-1": {"id": "j-1", "status": "finished"}}, complete=False)

    def decide(busy: frozenset[str]) -> TickPlan:
        return plan_tick(
            [scanned],
            finished,
            TickCursor(),
            DEFAULT_TICK_POLICY,
            100.0,
            lambda job: [pair],
            set(),
            busy=busy,
        )

    assert [request.attempt for request in decide(frozenset()).downloads] == [1]
    assert jobs.readable_ledger(str(BURST), WINDOW).jobs[0].progress == JobProgress()  # only decided
    with jobs.hold(str(BURST), WINDOW, "coherence_job run") as held:  # a run holds it, enters a job
        entered = held.read_existing()
        entered.jobs.append(JobRecord("s-2", "new", "p", 12, [pair], {}, job_id="j-2", status="created"))
        held.write(entered)
        while_held = apply_plan(jobs, decide)
        assert jobs.readable_ledger(str(BURST), WINDOW).jobs[0].progress == JobProgress()
    applied = apply_plan(jobs, decide)

    assert while_held.downloads == [] and while_held.changed == []  # decided again, next tick
    assert [request.attempt for request in applied.downloads] == [1]
    first, second = jobs.readable_ledger(str(BURST), WINDOW).jobs
    assert (first.progress.handled, first.progress.downloads) == (RESOLVED, RunTries(1, 100.0))
    assert second.job_id == "j-2" and second.progress == JobProgress()  # the run's record is kept
