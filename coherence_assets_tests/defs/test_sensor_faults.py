"""The job sensor heals what breaks during an unattended backfill, driven as the daemon drives it.

Each test runs the real chain (embedded backend over HTTP with faults switched on, an on-disk
Dagster instance, sensor ticks whose runs are launched like the daemon's) and checks what a
user cares about: one finished job per pair, a valid raster per pair, the cube complete, or
one clear line saying what is stuck.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
import requests

from coherence_assets.cube.stacking import open_coherence_cube
from coherence_assets.jobs.ledger import LOST, RESOLVED, JobProgress, JobRecord
from coherence_assets.jobs.ledger_index import read_done_index
from coherence_assets.jobs.tick import TickCursor
from coherence_assets.jobs.tick_run import stuck_now
from coherence_assets.pairs.pair import Pair, format_pair
from coherence_assets.pairs.pair_table import read_pairs
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.raster_files.validation import validate_coherence_raster
from coherence_assets.rasters.asset_matching import ResultAssetRef, match_assets_to_pairs
from coherence_assets.rasters.job_results import job_result_assets
from coherence_assets_tests.defs.conftest import (
    BURST,
    PARTITION,
    WINDOW,
    Chain,
    RestartableBackend,
    failure_text,
)

pytestmark = pytest.mark.slow  # each drives the whole chain over HTTP: 8 to 20 s

FAST_RETRIES = {
    "download_retry_seconds": 0,
    "max_download_attempts": 3,
    "resubmit_retry_seconds": 0,
    "lost_after_ticks": 2,
}


def drive(chain: Chain, cursor: str | None = None, timeout: float = 120.0) -> str | None:
    """Tick and launch what the ticks request until the partition is done; the last cursor."""
    deadline = time.monotonic() + timeout
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


def one_job(
    restartable_backend: Callable[..., RestartableBackend],
    make_chain: Callable[..., Chain],
    job_seconds_per_pair: float,
    statuses: frozenset[str],
) -> tuple[RestartableBackend, Chain, JobRecord]:
    """A chain on a backend that can be restarted, with the partition's one job submitted and in ``statuses``."""
    backend = restartable_backend(job_seconds_per_pair=job_seconds_per_pair)
    chain = make_chain(backend.live, openeo=FAST_RETRIES)
    chain.refresh_bursts()
    chain.submit()
    (job,) = chain.ledger().jobs
    chain.wait_for_jobs([job.job_id], statuses=statuses)
    return backend, chain, job


def restart_without_state(backend: RestartableBackend) -> None:
    """Same port, no jobs, and the old login refused (403 TokenInvalid): a redeployed backend."""
    backend.stop()
    backend.data_dir = backend.data_dir.with_name("backend-without-state")
    backend.start()


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


def test_downloads_cut_off_every_time_end_in_one_short_stuck_line_that_goes_once_a_manual_run_brings_every_raster(
    chain_with: Callable[..., Chain],
):
    """Issue 17, case 3: work that recovered no longer reads as stuck, and no line carries a signed URL."""
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
    (line,) = stuck_now(chain.store)
    assert line.startswith(PARTITION) and "downloads of job" in line and "failed 2 time(s)" in line
    assert_one_line_without_url(line)
    assert "re-materialise coherence_rasters" in line
    assert chain.tick(cursor).run_requests == []  # nothing more is tried on its own
    chain.backend.clear_faults()  # the cause is fixed

    manual = chain.run("download_coherence_rasters", PARTITION)  # what the stuck line says to do

    assert manual.success
    assert stuck_now(chain.store) == []  # at once, before any tick
    after = chain.tick(cursor)
    assert after.run_requests == []
    assert all(not entry.stuck for entry in read_done_index(chain.store).values())
    assert stuck_now(chain.store) == []
    assert not list(rasters_folder(chain).glob("*.part"))
    assert_healed(chain)
    assert list(chain.backend_jobs()) == [job.job_id]  # nothing computed again


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

    drive(chain)

    statuses = [run.status for run in download_runs(chain)]
    assert statuses == [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.SUCCESS]
    assert last_raster_check(chain).passed
    assert_every_pair_has_one_valid_raster_and_one_finished_job(chain)
    assert stuck_now(chain.store) == []
    assert chain.run("stack_coherence_cube", BURST).success
    cube = open_coherence_cube(chain.store.fs, chain.store.coherence_cube_path(BURST))
    assert sorted(str(day)[:10] for day in cube["time"].values) == sorted(
        reference.isoformat() for reference, _ in job.pairs
    )


def test_jobs_lost_by_a_backend_restarted_without_state_are_resubmitted_and_computed_once(
    restartable_backend: Callable[..., RestartableBackend], make_chain: Callable[..., Chain]
):
    backend, chain, lost = one_job(restartable_backend, make_chain, 0.5, frozenset({"running"}))
    restart_without_state(backend)

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


def rasters_folder(chain: Chain) -> Path:
    return chain.data_dir / "coherence_rasters" / BURST / WINDOW


def assert_healed(chain: Chain) -> None:
    """What a user cares about after a bad day: every pair of the partition has exactly one valid raster,
    no partial download is left behind, the cube holds each pair once, nothing is stuck."""
    pairs = read_pairs(chain.store, BURST, WINDOW)
    folder = rasters_folder(chain)
    assert sorted(path.name for path in folder.iterdir()) == sorted(raster_file_name(*pair) for pair in pairs)
    for pair in pairs:
        validate_coherence_raster(chain.store.fs, str(folder / raster_file_name(*pair)))
    check = last_raster_check(chain)
    assert check.passed, check.description
    assert_one_line_without_url(check.description)
    assert chain.run("stack_coherence_cube", BURST).success
    cube = open_coherence_cube(chain.store.fs, chain.store.coherence_cube_path(BURST))
    assert sorted(str(day)[:10] for day in cube["time"].values) == sorted(ref.isoformat() for ref, _ in pairs)


def computed_pairs(chain: Chain) -> list[Pair]:
    """The pairs of every job the backend finished, with repeats: a pair computed twice shows twice."""
    ledger = chain.ledger()
    statuses = {job_id: job["status"] for job_id, job in chain.backend_jobs().items()}
    return [pair for job in ledger.jobs if statuses.get(job.job_id or "") == "finished" for pair in job.pairs]


def result_assets(chain: Chain, job_id: str, pairs: list[Pair]) -> dict[Pair, ResultAssetRef]:
    return match_assets_to_pairs(job_result_assets(chain.openeo_backend.connect(), job_id), pairs).matched


def test_a_job_lost_while_its_download_is_pending_is_resubmitted_for_its_pairs_without_a_raster_only(
    restartable_backend: Callable[..., RestartableBackend], make_chain: Callable[..., Chain]
):
    """Issue 17, case 1: the backend comes back without its state while a finished job's download is due."""
    backend, chain, lost = one_job(restartable_backend, make_chain, 0.1, frozenset({"finished"}))
    # the first download run brings the pairs of August and September; July's are cut short (.part files)
    july = [pair for pair in lost.pairs if pair[0].month == 7]
    backend.live.add_fault(kind="truncate_download", path="S1_coh_2images_202307", truncate_after_bytes=1000)
    first = chain.tick()
    (failed,) = chain.launch(first)
    assert not failed.success
    assert sorted(path.name for path in rasters_folder(chain).glob("*.part")) == sorted(
        f"{raster_file_name(*pair)}.part" for pair in july
    )
    restart_without_state(backend)

    drive(chain, first.cursor)

    old, *new = chain.ledger().jobs
    assert (old.job_id, old.status) == (lost.job_id, LOST)
    assert [(job.replaces, job.attempt) for job in new] == [(lost.job_id, 2)]
    assert new[0].pairs == july  # the pairs that had a raster are not computed again
    assert sorted(computed_pairs(chain)) == sorted(july)
    assert not list(rasters_folder(chain).glob("*.part"))
    assert_healed(chain)
    assert stuck_now(chain.store) == []
    observed = chain.instance.fetch_observations(dg.AssetKey("coherence_job"), limit=50).records
    outcomes = [record.asset_observation.metadata["outcome"].value for record in observed]
    assert any("lost" in outcome for outcome in outcomes)
    for outcome in outcomes:
        assert_one_line_without_url(outcome)


def test_corrupt_rasters_found_by_the_sensor_or_the_download_run_are_removed_and_fetched_again_in_one_run(
    chain_with: Callable[..., Chain],
):
    """Issue 17, case 2: a crash's leftovers under the final names, truncated or garbage of the right size."""
    chain = chain_with(**FAST_RETRIES)
    chain.refresh_bursts()
    chain.submit()
    (job,) = chain.ledger().jobs
    chain.wait_for_jobs([job.job_id])
    assets = result_assets(chain, job.job_id, job.pairs)
    folder = rasters_folder(chain)
    folder.mkdir(parents=True)
    truncated, garbage, late_garbage = job.pairs[:3]
    content = requests.get(assets[truncated].href, timeout=30).content
    (folder / raster_file_name(*truncated)).write_bytes(content[: len(content) // 2])
    (folder / raster_file_name(*garbage)).write_bytes(os.urandom(assets[garbage].size or len(content)))

    first = chain.tick()  # the sensor finds the two bad files and requests the download
    # a bad file of the right size appears before the run starts: the run itself must not trust it
    (folder / raster_file_name(*late_garbage)).write_bytes(
        os.urandom(assets[late_garbage].size or len(content))
    )
    (download,) = chain.launch(first)
    assert download.success, failure_text(download)
    drive(chain, first.cursor)

    assert [run.status for run in download_runs(chain)] == [dg.DagsterRunStatus.SUCCESS]
    assert sorted(computed_pairs(chain)) == sorted(job.pairs)  # one job, nothing computed again
    assert not list(folder.glob("*.part"))
    assert_healed(chain)
    assert stuck_now(chain.store) == []


@pytest.mark.stand_in
def test_two_dagster_instances_on_one_data_folder_both_go_quiet_when_the_work_is_done(
    chain: Chain, tmp_path: Path
):
    """Issue 15 item 6 / issue 17 case 5: the instance that did not close the partition forgets it."""
    chain.refresh_bursts()
    chain.submit()
    (job,) = chain.ledger().jobs
    chain.wait_for_jobs([job.job_id])
    first = chain.tick()  # this instance requests the download, but its run never starts (a busy queue)
    assert [request.run_key for request in first.run_requests] == [f"rasters-{job.job_id}-1"]
    (tmp_path / "other_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "other_home")) as other_instance:
        other = Chain(chain.defs, other_instance, chain.backend, chain.data_dir, chain.bursts_file)
        other.refresh_bursts()  # its own partitions, from the shared data folder's burst file
        other_cursor = drive(other)

        this = chain.tick(first.cursor)
        again = chain.tick(this.cursor)

        assert this.run_requests == [] and again.run_requests == []
        for cursor in (this.cursor, other_cursor):
            assert TickCursor.from_json(cursor).unseen == {}
        assert chain.ledger().jobs[0].progress == JobProgress(handled=RESOLVED)  # nothing awaited
        assert other.tick(other_cursor).run_requests == []
        assert len(download_runs(other)) == 1 and download_runs(chain) == []
        chain.instance, other.instance = (
            other_instance,
            chain.instance,
        )  # the check and cube of the closing instance
        assert_healed(chain)
        assert sorted(computed_pairs(chain)) == sorted(job.pairs)
