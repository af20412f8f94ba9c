"""How the embedded backend runs jobs: concurrency limit, failures and restarts."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import shapely

from coherence_assets.settings import packaged_demo_bursts_file
from coherence_assets_tests.embedded_openeo.api_client import ApiClient, apex_process, api_client
from embedded_openeo.acquisitions import AcquisitionArchive
from embedded_openeo.burst_registry import BurstRegistry
from embedded_openeo.job_runner import RESTART_MESSAGE
from embedded_openeo.pair_planning import NO_PAIRS_MESSAGE

# --- running ----------------------------------------------------------------------------------------


def _start(api: ApiClient, **arguments: Any) -> str:
    job_id = api.create_job(apex_process(**arguments))
    assert api.post(f"/jobs/{job_id}/results").status_code == 202
    return job_id


def test_at_most_max_running_jobs_run_while_the_others_stay_queued(tmp_path: Path) -> None:
    with api_client(tmp_path, max_running_jobs=2, job_seconds_per_pair=0.15) as api:
        job_ids = [_start(api) for _ in range(4)]
        seen_queued, max_running = False, 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            statuses = [job["status"] for job in api.get("/jobs").json()["jobs"]]
            max_running = max(max_running, statuses.count("running"))
            seen_queued |= "queued" in statuses
            if statuses.count("finished") == len(job_ids):
                break
            time.sleep(0.02)
        assert max_running == 2 and seen_queued
        assert all(api.status(job_id) == "finished" for job_id in job_ids)


def test_an_injected_job_failure_ends_in_error_with_error_logs(tmp_path: Path) -> None:
    with api_client(tmp_path) as api:
        rule = {"kind": "job_error", "times": 1, "message": "SNAP ran out of memory"}
        requests.post(f"{api.url}/_faults", json=rule)
        job_id = _start(api)
        assert api.wait_for(job_id, ("finished", "error"))["status"] == "error"
        errors = api.get(f"/jobs/{job_id}/logs", params={"level": "error"}).json()["logs"]
        assert [entry["message"] for entry in errors] == ["SNAP ran out of memory"]
        assert errors[0]["level"] == "error"


def test_an_extent_without_pairs_fails_the_job_with_not_enough_bursts(tmp_path: Path) -> None:
    with api_client(tmp_path) as api:
        job_id = _start(api, temporal_extent=["2023-07-01", "2023-07-10"])
        assert api.wait_for(job_id, ("finished", "error"))["status"] == "error"
        errors = api.get(f"/jobs/{job_id}/logs", params={"level": "error"}).json()["logs"]
        assert errors[-1]["message"].startswith(
            f"{NO_PAIRS_MESSAGE} for the given parameters: {{'burst_id': 30343"
        )


def _duplicated_date(burst_id: int, subswath: str, baseline: int) -> date:
    """A 2023 date on which the archive holds the burst twice and which has a partner ``baseline`` days later."""
    archive = AcquisitionArchive(BurstRegistry.from_file(Path(packaged_demo_bursts_file())))
    records = archive.records(
        burst_id, subswath, "VV", datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 12, 31, tzinfo=UTC)
    )
    days = [datetime.fromisoformat(record["ContentDate"]["Start"]).date() for record in records]
    return next(day for day in days if days.count(day) == 2 and day + timedelta(days=baseline) in days)


def test_duplicate_catalogue_records_compute_twice_but_deliver_one_file_per_pair(tmp_path: Path) -> None:
    day = _duplicated_date(30343, "IW2", 12)
    with api_client(tmp_path) as api:
        extent = [str(day), str(day + timedelta(days=12))]
        job_id = _start(api, temporal_extent=extent)
        assert api.wait_for(job_id, ("finished", "error"))["status"] == "finished"
        assets = api.get(f"/jobs/{job_id}/results").json()["assets"]
        assert len(assets) == 1 and next(iter(assets)).startswith(f"S1_coh_2images_{day:%Y%m%d}T")
        warnings = api.get(f"/jobs/{job_id}/logs", params={"level": "warning"}).json()["logs"]
        assert len(warnings) == 1 and "duplicate catalogue record" in warnings[0]["message"]


def test_a_restarted_backend_lists_every_job_and_reruns_the_interrupted_ones(tmp_path: Path) -> None:
    with api_client(tmp_path, max_running_jobs=1, job_seconds_per_pair=0.4) as api:
        created = api.create_job(title="never started")
        interrupted = _start(api)
        waiting = _start(api)
        api.wait_for(interrupted, ("running",))
        assert api.status(waiting) == "queued"
    with api_client(tmp_path, max_running_jobs=1) as api:
        assert {job["id"] for job in api.get("/jobs").json()["jobs"]} == {created, interrupted, waiting}
        assert api.status(created) == "created"
        for job_id in (interrupted, waiting):
            assert api.wait_for(job_id, ("finished", "error"))["status"] == "finished"
        messages = [entry["message"] for entry in api.get(f"/jobs/{interrupted}/logs").json()["logs"]]
        assert RESTART_MESSAGE in messages
        assert len(api.get(f"/jobs/{interrupted}/results").json()["assets"]) == 3


def test_deleting_running_jobs_logs_no_traceback_and_leaves_no_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleted at several moments of their run (mid-write included); each worker stops quietly."""
    caplog.set_level(logging.INFO)
    # a pause after each pair keeps a job running long enough to be seen running and deleted, also on
    # a quiet machine where one pair takes a few hundredths of a second; the first delays still hit
    # the first pair's write
    with api_client(tmp_path, scene_shape=(256, 512), max_running_jobs=5, job_seconds_per_pair=0.25) as api:
        job_ids = []
        # each job is started just before it is deleted: started all at once, the later ones could
        # finish on a loaded machine before their turn and never be deleted while running
        for delay in (0.0, 0.02, 0.05, 0.1, 0.2):
            job_ids.append(job_id := _start(api))
            api.wait_for(job_id, ("running",))
            time.sleep(delay)
            assert api.session.delete(f"{api.url}/jobs/{job_id}").status_code == 204
        deadline = time.monotonic() + 30
        while any(job_id in str(path) for path in tmp_path.rglob("*") for job_id in job_ids):
            assert time.monotonic() < deadline, "a deleted job's files are still there"
            time.sleep(0.1)
        assert all(api.get(f"/jobs/{job_id}").status_code == 404 for job_id in job_ids)
        assert api.get("/jobs").json()["jobs"] == []
    noisy = [record for record in caplog.records if record.exc_info or record.levelno >= logging.WARNING]
    assert noisy == [], [record.getMessage() for record in noisy]


def test_a_job_by_area_with_null_burst_and_sub_swath_and_date_time_extent_runs_on_the_lowest_burst_found(
    tmp_path: Path,
) -> None:
    """The UDP's other way in: spatial_extent instead of burst_id, as the CWL's get_bursts.py resolves it."""
    with api_client(tmp_path) as api:
        job_id = _start(
            api,
            burst_id=None,
            sub_swath=None,
            spatial_extent={"west": 10.55, "south": 46.48, "east": 10.6, "north": 46.5},
            temporal_extent=["2023-07-01T00:00:00Z", "2023-07-27T23:59:59Z"],
        )
        assert api.wait_for(job_id, ("finished", "error"))["status"] == "finished"
        messages = [entry["message"] for entry in api.get(f"/jobs/{job_id}/logs").json()["logs"]]
        (computing,) = [message for message in messages if message.startswith("Computing")]
        found = BurstRegistry.from_file(Path(packaged_demo_bursts_file())).bursts_intersecting(
            shapely.box(10.55, 46.48, 10.6, 46.5)
        )
        lowest = min(burst_id for burst_id, _ in found)
        assert f"_{lowest:06d}_" in computing
        assert len(api.get(f"/jobs/{job_id}/results").json()["assets"]) == 2


def test_a_baseline_that_is_not_a_multiple_of_6_fails_the_job_as_the_cwl_does(tmp_path: Path) -> None:
    with api_client(tmp_path) as api:
        job_id = _start(api, temporal_baseline=7)
        assert api.wait_for(job_id, ("finished", "error"))["status"] == "error"
        errors = api.get(f"/jobs/{job_id}/logs", params={"level": "error"}).json()["logs"]
        assert "'temporal_baseline': 7" in errors[-1]["message"]
        assert errors[-1]["message"].startswith(NO_PAIRS_MESSAGE)
