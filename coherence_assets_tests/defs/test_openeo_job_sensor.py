"""``openeo_job_sensor``: starts jobs within the backend's limits, requests downloads and resubmissions once."""

from collections.abc import Callable

import dagster as dg
import pytest

from coherence_assets.defs.sensor_ticks import SensorTick
from coherence_assets.defs.sensors import CUBE_SENSOR
from coherence_assets.jobs.ledger import ERROR, RESOLVED, JobProgress
from coherence_assets.jobs.ledger_index import scan_ledgers
from coherence_assets.jobs.tick import TickCursor
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.defs.conftest import (
    BURST,
    PARTITION,
    Chain,
    RestartableBackend,
)

INJECTED_ERROR = "Injected: SNAP ran out of memory while computing coherence"
EARLIER_WINDOWS = ("2023-01-01", "2023-04-01")


def observations(data: SensorTick) -> list[dg.AssetObservation]:
    return [event for event in data.asset_events if isinstance(event, dg.AssetObservation)]


def request_keys(data: SensorTick) -> list[tuple[str, str | None, str]]:
    return [(request.job_name, request.run_key, request.partition_key) for request in data.run_requests]


def submitted_job_id(chain: Chain, partition: str = PARTITION) -> str:
    (job_id,) = [job.job_id for job in chain.ledger(partition).jobs if job.job_id]
    return job_id


def submit_one_job(chain: Chain) -> str:
    """Refresh the bursts and submit PARTITION, whose pairs fit one job; that job's id."""
    chain.refresh_bursts()
    chain.submit()
    return submitted_job_id(chain)


def test_the_sensor_skips_with_a_reason_before_any_job_was_submitted(chain: Chain):
    data = chain.tick()

    assert not data.run_requests
    assert "materialise coherence_job first" in data.skip_message


def test_created_jobs_are_started_only_while_fewer_than_max_running_jobs_are_busy(
    restartable_backend: Callable[..., RestartableBackend], make_chain: Callable[..., Chain]
):
    """Three partitions, two slots: the third job stays created until a slot frees up."""
    backend = restartable_backend(job_seconds_per_pair=5)  # jobs stay running during the test
    chain = make_chain(backend.live, openeo={"jobs_queued_ahead": 0})
    chain.refresh_bursts()
    partitions = [f"{BURST}|{window}" for window in (*EARLIER_WINDOWS, "2023-07-01")]
    for partition in partitions:
        chain.submit(partition)
    first, second, third = (submitted_job_id(chain, partition) for partition in partitions)
    chain.wait_for_jobs([first, second], statuses=frozenset({"running"}))
    assert chain.backend_jobs()[third]["status"] == "created"

    data = chain.tick()

    assert not data.run_requests
    assert chain.backend_jobs()[third]["status"] == "created"

    chain.openeo_backend.connect().job(first).stop()
    chain.wait_for_jobs([first], statuses=frozenset({"canceled"}))
    later = chain.tick(data.cursor)

    assert chain.backend_jobs()[third]["status"] in {"queued", "running"}
    started = [event for event in observations(later) if event.metadata["status"].value == "queued"]
    assert [(event.partition, event.metadata["job_id"].value) for event in started] == [
        (partitions[2], third)
    ]
    assert "started by openeo_job_sensor" in started[0].metadata["outcome"].value


@pytest.mark.stand_in
def test_a_finished_job_gets_one_download_run_keyed_by_its_job_id_and_its_partition_tells_the_story(
    chain: Chain,
):
    job_id = submit_one_job(chain)
    chain.wait_for_jobs([job_id])

    data = chain.tick()

    assert request_keys(data) == [("download_coherence_rasters", f"rasters-{job_id}-1", PARTITION)]
    assert chain.ledger().jobs[0].progress.downloads.attempts == 1  # the job's ledger record counts them
    (finished,) = observations(data)
    assert (finished.partition, finished.metadata["status"].value) == (PARTITION, "finished")
    assert "downloads of its" in finished.metadata["outcome"].value
    (download,) = chain.launch(data)
    assert download.success
    (check,) = download.get_asset_check_evaluations()
    assert check.partition == PARTITION  # the check's execution names its partition in the UI

    after = chain.tick(data.cursor)
    chain.launch(after)

    assert TickCursor.from_json(after.cursor).unseen == {}  # the partition is done: forgotten
    assert chain.ledger().jobs[0].progress == JobProgress(handled=RESOLVED)
    (latest,) = chain.instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("coherence_job"), asset_partitions=[PARTITION]), limit=1
    ).records
    assert latest.asset_observation.metadata["job_id"].value == job_id
    assert latest.asset_observation.metadata["outcome"].value.startswith("downloaded: each of its")


@pytest.mark.stand_in
def test_a_sensor_restart_between_ticks_requests_nothing_twice(chain: Chain):
    """A new context with the saved cursor asks for nothing; one with a lost cursor is stopped by run keys."""
    job_id = submit_one_job(chain)
    chain.wait_for_jobs([job_id])
    first = chain.tick()
    chain.launch(first)

    after_restart = chain.tick(first.cursor)
    lost_cursor = chain.tick(None)

    assert not after_restart.run_requests
    assert not lost_cursor.run_requests  # every pair has its raster: nothing to download again
    assert len(chain.runs_with_key(f"rasters-{job_id}-1")) == 1
    assert len(chain.instance.get_runs(filters=dg.RunsFilter(job_name="download_coherence_rasters"))) == 1


def test_an_erroring_job_is_recorded_with_its_error_logs_and_resubmitted_once(
    chain: Chain, backend: LiveBackend
):
    backend.add_fault(kind="job_error", times=1, message=INJECTED_ERROR)
    failed = submit_one_job(chain)
    assert chain.wait_for_jobs([failed]) == {failed: ERROR}

    data = chain.tick()

    assert request_keys(data) == [("resubmit_coherence_jobs", f"resubmit-{failed}", PARTITION)]
    (observation,) = observations(data)
    assert observation.asset_key == dg.AssetKey("coherence_job")
    assert observation.partition == PARTITION
    assert observation.metadata["job_id"].value == failed
    assert INJECTED_ERROR in observation.metadata["error_logs"].value
    assert "resubmitting (attempt 2)" in observation.metadata["outcome"].value

    (resubmission,) = chain.launch(data)

    assert resubmission.success
    original, retry = chain.ledger().jobs
    assert (original.job_id, original.status) == (failed, ERROR)
    assert (retry.attempt, retry.replaces, retry.pairs) == (2, failed, original.pairs)
    assert chain.wait_for_jobs([retry.job_id]) == {retry.job_id: "finished"}
    recorded = chain.instance.fetch_observations(dg.AssetKey("coherence_job"), limit=10).records
    assert [record.asset_observation.metadata["job_id"].value for record in recorded] == [failed]

    later = chain.tick(data.cursor)

    assert request_keys(later) == [("download_coherence_rasters", f"rasters-{retry.job_id}-1", PARTITION)]
    (download,) = chain.launch(later)
    (check,) = download.get_asset_check_evaluations()
    assert check.passed, check.description


def test_a_job_that_fails_at_max_attempts_is_given_up_and_the_raster_check_names_its_pairs(
    chain: Chain, backend: LiveBackend
):
    backend.add_fault(kind="job_error", times=2, message=INJECTED_ERROR)
    chain.refresh_bursts()
    chain.submit()
    chain.wait_for_ledger_jobs()
    first = chain.tick()
    chain.launch(first)
    retry = chain.ledger().jobs[1]
    assert chain.wait_for_jobs([retry.job_id]) == {retry.job_id: ERROR}

    data = chain.tick(first.cursor)

    assert request_keys(data) == [("download_coherence_rasters", f"given-up-{retry.job_id}", PARTITION)]
    (observation,) = observations(data)
    assert "given up after 2 attempt(s)" in observation.metadata["outcome"].value
    (download,) = chain.launch(data)
    assert download.success
    (check,) = download.get_asset_check_evaluations()
    assert not check.passed
    assert f"{len(retry.pairs)} pair(s) have no raster" in check.description
    for reference, secondary in retry.pairs:
        assert f"{reference.isoformat()}/{secondary.isoformat()}" in check.metadata["missing_pairs"].value
    assert chain.tick(data.cursor).run_requests == []
    assert len(chain.backend_jobs()) == 2


def test_a_canceled_job_is_reported_and_not_resubmitted(
    restartable_backend: Callable[..., RestartableBackend], make_chain: Callable[..., Chain]
):
    backend = restartable_backend(job_seconds_per_pair=5)
    chain = make_chain(backend.live)
    job_id = submit_one_job(chain)
    chain.wait_for_jobs([job_id], statuses=frozenset({"running"}))
    chain.openeo_backend.connect().job(job_id).stop()
    chain.wait_for_jobs([job_id], statuses=frozenset({"canceled"}))

    data = chain.tick()

    assert not data.run_requests
    (observation,) = observations(data)
    assert observation.metadata["status"].value == "canceled"
    assert "not resubmitted" in observation.metadata["outcome"].value
    assert chain.tick(data.cursor).asset_events == []
    assert list(chain.backend_jobs()) == [job_id]


def test_a_backend_answering_503_makes_the_tick_skip_with_the_reason_and_keep_the_cursor(
    chain: Chain, backend: LiveBackend, instant_retries: None
):
    chain.refresh_bursts()
    chain.submit()
    chain.wait_for_ledger_jobs()
    cursor = TickCursor(unseen={"an-earlier-job": 1}, last_start_at=1.0).to_json()
    backend.add_fault(path="^/jobs$", status=503)

    data = chain.tick(cursor)

    assert not data.run_requests
    assert f"openEO backend {backend.url} did not answer" in data.skip_message
    assert "503" in data.skip_message
    assert data.cursor in (None, cursor)


@pytest.mark.slow
def test_a_backend_restart_mid_job_loses_nothing_and_duplicates_nothing(
    restartable_backend: Callable[..., RestartableBackend],
    make_chain: Callable[..., Chain],
    instant_retries: None,
):
    backend = restartable_backend(job_seconds_per_pair=0.3)
    chain = make_chain(backend.live)
    job_id = submit_one_job(chain)
    chain.wait_for_jobs([job_id], statuses=frozenset({"running"}))

    backend.stop()
    down = chain.tick()
    backend.start()

    assert "did not answer" in down.skip_message
    assert not down.run_requests
    assert chain.wait_for_jobs([job_id]) == {job_id: "finished"}
    logs = chain.openeo_backend.connect().job(job_id).logs()
    assert "BackendRestarted" in {entry.get("code") for entry in logs}  # the job was cut off and rerun
    data = chain.tick(down.cursor)
    assert request_keys(data) == [("download_coherence_rasters", f"rasters-{job_id}-1", PARTITION)]
    (download,) = chain.launch(data)
    (check,) = download.get_asset_check_evaluations()
    assert check.passed, check.description
    assert list(chain.backend_jobs()) == [job_id]
    assert len(chain.ledger().jobs) == 1


def test_the_cursor_keeps_the_last_start_so_spacing_holds_across_ticks():
    cursor = TickCursor({"j-1": 2}, 1234.5)

    assert TickCursor.from_json(cursor.to_json()) == cursor
    assert TickCursor.from_json(None) == TickCursor()
    earlier = '{"handled": ["j-1"], "downloads": {"j-1": [1, 2.0]}, "last_start_at": 5.0}'
    assert TickCursor.from_json(earlier) == TickCursor(last_start_at=5.0)  # the rest is in the ledgers


@pytest.mark.stand_in
def test_the_connection_is_reused_between_ticks_and_dropped_after_a_failure(chain: Chain):
    backend = chain.openeo_backend

    first = backend.connect()
    assert backend.connect() is first
    backend.forget_connection()
    assert backend.connect() is not first


@pytest.mark.stand_in
@pytest.mark.slow
def test_a_done_partition_is_not_read_again_until_its_ledger_is_rewritten_and_then_costs_nothing(
    chain: Chain,
):
    job_id = submit_one_job(chain)
    chain.wait_for_jobs([job_id])
    first = chain.tick()
    chain.launch(first)
    done = chain.tick(first.cursor)

    assert scan_ledgers(chain.store).read_count == 0
    assert TickCursor.from_json(done.cursor).unseen == {}

    chain.submit()  # the daily schedule's refresh: the ledger is rewritten, nothing new to submit
    rewritten = chain.tick(done.cursor)

    assert scan_ledgers(chain.store).read_count == 0
    assert not rewritten.run_requests and not rewritten.asset_events
    assert list(chain.backend_jobs()) == [job_id]


@pytest.mark.slow
def test_a_partition_whose_pairs_were_given_up_starts_no_cube_run(
    backend: LiveBackend, make_chain: Callable[..., Chain]
):
    chain = make_chain(backend, max_attempts=1)
    backend.add_fault(kind="job_error", times=1, message=INJECTED_ERROR)
    chain.refresh_bursts()
    chain.submit()
    chain.wait_for_ledger_jobs()
    data = chain.tick()
    (given_up,) = chain.launch(data)
    assert given_up.success and request_keys(data)[0][1].startswith("given-up-")

    cube_tick = chain.tick(sensor_name=CUBE_SENSOR)

    assert not cube_tick.run_requests
