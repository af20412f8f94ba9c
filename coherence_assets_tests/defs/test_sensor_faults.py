"""The job sensor heals what breaks during an unattended backfill, driven as the daemon drives it.

Each test runs the real chain (embedded backend over HTTP with faults switched on, an on-disk
Dagster instance, sensor ticks whose runs are launched like the daemon's) and checks what a
user cares about: one finished job per pair, a valid raster per pair, the cube complete, or
one clear line saying what is stuck.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import dagster as dg
import pytest

from coherence_assets.cube.stacking import open_coherence_cube
from coherence_assets.jobs.ledger import LOST
from coherence_assets.jobs.ledger_index import read_done_index
from coherence_assets.jobs.tick import TickCursor
from coherence_assets.jobs.tick_run import stuck_now
from coherence_assets.pairs.pair import format_pair
from coherence_assets.rasters.asset_matching import raster_file_name
from coherence_assets.rasters.validation import validate_coherence_raster
from coherence_assets_tests.defs.conftest import BURST, PARTITION, WINDOW, Chain, RestartableBackend

FAST_RETRIES = {"download_retry_seconds": 0, "max_download_attempts": 3, "lost_after_ticks": 2}


def drive(chain: Chain, timeout: float = 120.0) -> str | None:
    """Tick and launch what the ticks request until the partition is done; the last cursor."""
    cursor, deadline = None, time.monotonic() + timeout
    while not any(entry.partition_key == PARTITION for entry in read_done_index(chain.store).values()):
        assert time.monotonic() < deadline, f"{PARTITION} not done within {timeout} s"
        data = chain.tick(cursor)
        cursor = data.cursor if data.cursor is not None else cursor
        chain.launch(data)
        time.sleep(0.2)
    return cursor


def download_runs(chain: Chain) -> list[dg.DagsterRun]:
    runs = chain.instance.get_runs(filters=dg.RunsFilter(job_name="download_coherence_rasters"))
    return sorted(runs, key=lambda run: run.tags["dagster/run_key"])


def last_raster_check(chain: Chain) -> dg.AssetCheckEvaluation:
    record = chain.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("coherence_rasters"), "every_pair_has_a_raster")]
    )
    (execution,) = record.values()
    return execution.event.dagster_event.event_specific_data


def assert_one_line_without_url(line: str) -> None:
    """A line a user reads: one line of reasonable length, naming no result URL (signed, a credential)."""
    assert "\n" not in line and len(line) < 600, line
    assert "/results/assets/" not in line and "expires=" not in line and "http" not in line, line


def assert_every_pair_has_one_valid_raster_and_one_finished_job(chain: Chain) -> None:
    ledger = chain.ledger()
    finished = [
        job for job in ledger.jobs if chain.backend_jobs().get(job.job_id, {}).get("status") == "finished"
    ]
    pairs = [pair for job in finished for pair in job.pairs]
    assert len(pairs) == len(set(pairs)), "a pair was computed twice"
    folder = chain.store.coherence_rasters_dir(BURST, WINDOW)
    for pair in pairs:
        validate_coherence_raster(chain.store.fs, f"{folder}/{raster_file_name(*pair)}")
    assert sorted(pairs) == sorted(pair for job in ledger.jobs for pair in job.pairs if job.replaces is None)


@pytest.mark.slow
def test_downloads_cut_off_every_time_end_in_a_failing_check_naming_the_pairs_and_one_stuck_line(
    chain_with: Callable[..., Chain],
):
    chain = chain_with(**{**FAST_RETRIES, "max_download_attempts": 2})
    chain.backend.add_fault(kind="truncate_download", path="/results/assets/", truncate_after_bytes=100)
    chain.refresh_bursts()
    chain.submit()
    (job,) = chain.ledger().jobs

    cursor = drive(chain)

    runs = download_runs(chain)
    assert [run.tags["dagster/run_key"] for run in runs] == [
        f"rasters-{job.job_id}-1",
        f"rasters-{job.job_id}-2",
    ]
    assert all(run.status == dg.DagsterRunStatus.FAILURE for run in runs)
    check = last_raster_check(chain)
    assert not check.passed
    assert PARTITION in check.description and "cut short" in check.description
    assert_one_line_without_url(check.description)
    for pair in job.pairs:
        assert format_pair(pair) in check.metadata["missing_pairs"].value
    (line,) = stuck_now(chain.store, TickCursor.from_json(cursor))
    assert line.startswith(PARTITION) and "downloads of job" in line and "failed 2 time(s)" in line
    assert_one_line_without_url(line)
    assert chain.tick(cursor).run_requests == []  # nothing more is tried on its own
    assert list(chain.backend_jobs()) == [job.job_id]


@pytest.mark.slow
def test_downloads_cut_off_in_two_runs_complete_in_the_third_without_a_manual_step(
    chain_with: Callable[..., Chain],
):
    chain = chain_with(**FAST_RETRIES)
    chain.refresh_bursts()
    chain.submit()
    (job,) = chain.ledger().jobs
    # every attempt of every asset of two runs (download_asset tries 3 times per run) is cut
    chain.backend.add_fault(
        kind="truncate_download", path="/results/assets/", truncate_after_bytes=100, times=6 * len(job.pairs)
    )

    cursor = drive(chain)

    statuses = [run.status for run in download_runs(chain)]
    assert statuses == [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS]
    assert last_raster_check(chain).passed
    assert_every_pair_has_one_valid_raster_and_one_finished_job(chain)
    assert stuck_now(chain.store, TickCursor.from_json(cursor)) == []
    assert chain.run("stack_coherence_cube", BURST).success
    cube = open_coherence_cube(chain.store.fs, chain.store.coherence_cube_path(BURST))
    assert sorted(str(day)[:10] for day in cube["time"].values) == sorted(
        reference.isoformat() for reference, _ in job.pairs
    )


@pytest.mark.slow
def test_jobs_lost_by_a_backend_restarted_without_state_are_resubmitted_and_computed_once(
    restartable_backend: Callable[..., RestartableBackend], make_chain: Callable[..., Chain]
):
    backend = restartable_backend(job_seconds_per_pair=0.5)
    chain = make_chain(backend.live, openeo=FAST_RETRIES)
    chain.refresh_bursts()
    chain.submit()
    (lost,) = chain.ledger().jobs
    chain.wait_for_jobs([lost.job_id], statuses=frozenset({"running"}))
    backend.stop()
    backend.data_dir = backend.data_dir.with_name("backend-without-state")
    backend.start()  # same port, no jobs, and the old login refused (403 TokenInvalid)

    drive(chain)

    old, new = chain.ledger().jobs
    assert (old.job_id, old.status) == (lost.job_id, LOST)
    assert (new.replaces, new.attempt, new.pairs) == (lost.job_id, 2, lost.pairs)
    assert {job_id: job["status"] for job_id, job in chain.backend_jobs().items()} == {new.job_id: "finished"}
    assert_every_pair_has_one_valid_raster_and_one_finished_job(chain)
    assert last_raster_check(chain).passed
    observed = chain.instance.fetch_observations(dg.AssetKey("coherence_job"), limit=20).records
    statuses = {record.asset_observation.metadata["status"].value for record in observed}
    assert "lost" in statuses
