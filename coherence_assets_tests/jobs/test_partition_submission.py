"""The coherence_job step without Dagster: the embedded backend over HTTP, a ledger on disk, a real lease."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import re
import shutil
from multiprocessing.synchronize import Barrier

import openeo
import pytest

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.jobs.job_store import JobStore
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.pairs.window_pairs import pairs_for_window
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.jobs.conftest import BURST, WINDOW, submit
from coherence_assets_tests.jobs.test_history_cost import counted_job_reads
from coherence_assets_tests.s3_server import S3Server

JOB_LISTING = re.compile(r"^GET /jobs(\?| )")  # a page of the account's jobs, not one job by id


def window_pairs(backend: LiveBackend, start: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The 12-day pairs of BURST in the quarter from ``start``, from the backend's catalogue."""
    end = (start + dt.timedelta(days=92)).replace(day=1) - dt.timedelta(days=1)
    catalogue = BurstCatalogueClient(backend.catalogue_url)
    table = pairs_for_window(catalogue, BurstKey.parse(BURST), "VV", start, end, [12]).pairs
    return [(row.reference_date, row.secondary_date) for row in table.itertuples()]


def test_every_pair_is_submitted_once_and_a_backfill_run_leaves_starting_to_the_sensor(
    backend: LiveBackend, tmp_path
):
    pairs = window_pairs(backend, dt.date(2023, 7, 1))
    store = DataStore(str(tmp_path / "data"))

    in_backfill = submit(store, backend, pairs, start_jobs_now=False)
    again = submit(store, backend, pairs, start_jobs_now=True)

    submitted = [pair for record in in_backfill.records for pair in record.pairs]
    assert sorted(submitted) == sorted(pairs) and len(submitted) == len(set(submitted))
    assert in_backfill.started == []
    assert again.records == [] and again.plan.covered_pairs == set(pairs)
    ledger = JobStore(store).ledger(BURST, WINDOW, backend.url)
    backend_jobs = list_all_jobs(openeo.connect(backend.url).authenticate_basic("local", "local"))
    assert {record.job_id for record in ledger.jobs} == set(backend_jobs)
    assert all(backend_jobs[record.job_id]["status"] == "created" for record in ledger.jobs)


def test_an_emptied_data_folder_adopts_the_backends_jobs_and_lists_the_history_once(
    backend: LiveBackend, tmp_path
):
    pairs, autumn = window_pairs(backend, dt.date(2023, 7, 1)), window_pairs(backend, dt.date(2023, 10, 1))
    store = DataStore(str(tmp_path / "data"))
    first = submit(store, backend, pairs, start_jobs_now=False)
    shutil.rmtree(tmp_path / "data")  # a lifecycle rule emptied the bucket, or a new folder for the project

    with counted_job_reads(JOB_LISTING) as listings:
        rerun = submit(store, backend, pairs, start_jobs_now=False)
    with counted_job_reads(JOB_LISTING) as later_listings:
        again = submit(store, backend, pairs, start_jobs_now=False)  # a run with a ledger
        other = submit(store, backend, autumn, start_jobs_now=False, window="2023-10-01")  # a new partition

    assert first.records and rerun.records == [] and again.records == []
    assert rerun.plan.covered_pairs == set(pairs)
    adopted = JobStore(store).ledger(BURST, WINDOW, backend.url)
    assert {record.job_id for record in adopted.jobs} == {record.job_id for record in first.records}
    backend_jobs = list_all_jobs(openeo.connect(backend.url).authenticate_basic("local", "local"))
    assert len(backend_jobs) == len(first.records) + len(other.records), "a job was paid for twice"
    assert listings.count == 1, "the history is listed once, in one page here"
    assert later_listings.count == 0, "a run with a ledger, or a new partition, listed the history"
    assert not store.fs.exists(store.adoptable_jobs_path(BURST, WINDOW)), "the note outlived its adoption"


def submit_in_a_process(
    store_url: str, backend: LiveBackend, pairs: list, barrier: Barrier, results: multiprocessing.Queue
) -> None:
    """A coherence_job run of BURST x WINDOW in its own process, started with the others at once."""
    barrier.wait()
    try:
        submission = submit(DataStore(store_url), backend, pairs, start_jobs_now=False)
    except Exception as error:  # what the test counts
        results.put(("failed", f"{type(error).__name__}: {error}"))
        return
    results.put(("submitted", [record.job_id for record in submission.records]))


@pytest.mark.slow
def test_two_concurrent_runs_of_one_partition_on_s3_both_succeed_and_submit_each_pair_once(
    backend: LiveBackend, s3_env: S3Server
):
    pairs = window_pairs(backend, dt.date(2023, 7, 1))
    store = DataStore(f"s3://{s3_env.new_bucket()}/data")
    context = multiprocessing.get_context("spawn")  # not fork: s3fs runs an event-loop thread
    barrier, results = context.Barrier(2), context.Queue()
    runs = [
        context.Process(target=submit_in_a_process, args=(store.url, backend, pairs, barrier, results))
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    outcomes = sorted((results.get(timeout=120) for _ in runs), key=lambda outcome: len(outcome[1]))
    for run in runs:
        run.join(timeout=30)

    assert [status for status, _ in outcomes] == ["submitted", "submitted"], outcomes
    (waited, submitted) = (job_ids for _, job_ids in outcomes)
    assert waited == [] and submitted, "the run that waited found every pair covered"
    ledger = JobStore(store).ledger(BURST, WINDOW, backend.url)
    ledger_pairs = [pair for record in ledger.jobs for pair in record.pairs]
    assert sorted(ledger_pairs) == sorted(pairs), "a pair is missing or in two jobs"
    backend_jobs = list_all_jobs(openeo.connect(backend.url).authenticate_basic("local", "local"))
    assert sorted(backend_jobs) == sorted(submitted)
