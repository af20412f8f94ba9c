"""The coherence_rasters step without Dagster: a real job on the embedded backend over HTTP, its
rasters downloaded into a real folder, and the every-pair-has-a-raster verdict."""

from __future__ import annotations

import datetime as dt
import time

import openeo
import pytest

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.jobs.batching import PairBatch
from coherence_assets.jobs.ledger import CANCELED, ERROR, FINISHED, Ledger
from coherence_assets.jobs.processes import CoherenceRequest
from coherence_assets.jobs.submission import create_job, enter_job
from coherence_assets.pairs.window_pairs import pairs_for_window
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.rasters.partition_download import (
    check_rasters,
    download_and_check_partition,
    download_partition_rasters,
)
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend
from embedded_openeo.github_api import MAIN_COMMIT

BURST = BurstKey.parse("t015_030343_iw2")
WINDOW = "2023-07-01"


def wait_until_finished(connection: openeo.Connection, job_id: str, timeout_seconds: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while (status := connection.job(job_id).status()) != FINISHED:
        assert status not in (ERROR, CANCELED), f"job {job_id} ended {status}"
        assert time.monotonic() < deadline, f"job {job_id} still {status} after {timeout_seconds} s"
        time.sleep(0.5)


def test_a_finished_jobs_pairs_each_get_one_valid_raster_and_a_pair_without_a_job_is_named(
    backend: LiveBackend, tmp_path
):
    catalogue = BurstCatalogueClient(backend.catalogue_url)
    all_pairs = pairs_for_window(
        catalogue, BURST, "VV", dt.date(2023, 7, 1), dt.date(2023, 9, 30), [12]
    ).pairs
    pairs = [(row.reference_date, row.secondary_date) for row in all_pairs.itertuples()][:4]
    assert len(pairs) == 4, "the embedded backend's catalogue should give this window at least four pairs"
    job_pairs, pair_without_job = pairs[:3], pairs[3]
    connection = openeo.connect(backend.url).authenticate_basic("local", "local")
    ledger = Ledger(str(BURST), WINDOW, backend.url)
    record = enter_job(
        ledger, BURST, CoherenceRequest(apex_commit=MAIN_COMMIT), PairBatch(12, tuple(job_pairs))
    )
    create_job(connection, CoherenceRequest(apex_commit=MAIN_COMMIT), record)
    store = DataStore(str(tmp_path / "data"))

    before_start = download_partition_rasters(connection, store, ledger, pairs)
    assert before_start.summaries == {} and before_start.waiting == job_pairs
    check = check_rasters(ledger.burst, WINDOW, pairs, set(before_start.summaries), before_start.in_flight)
    assert check.missing == [pair_without_job] and not check.passed

    connection.job(record.job_id).start()
    wait_until_finished(connection, record.job_id)
    rasters = download_partition_rasters(connection, store, ledger, pairs)

    assert set(rasters.summaries) == set(job_pairs)
    assert all(0.0 < summary.mean_coherence <= 1.0 for summary in rasters.summaries.values())
    assert sorted(store.fs.ls(rasters.folder, detail=False)) == sorted(
        f"{rasters.folder}/{raster_file_name(*pair)}" for pair in job_pairs
    )
    check = check_rasters(ledger.burst, WINDOW, job_pairs, set(rasters.summaries), rasters.in_flight)
    assert check.passed and check.missing == [] and check.waiting == []
    again = download_partition_rasters(connection, store, ledger, pairs)
    assert [outcome.action for outcome in again.outcomes] == ["skipped"] * len(job_pairs)


def test_a_broken_download_still_gives_the_verdict_naming_its_cause_and_hands_back_the_error(
    backend: LiveBackend, tmp_path
):
    """The step reads its inputs from the data dir as the asset does; the rerun after the fault completes."""
    catalogue = BurstCatalogueClient(backend.catalogue_url)
    table = pairs_for_window(
        catalogue, BURST, "VV", dt.date(2023, 7, 1), dt.date(2023, 9, 30), [12]
    ).pairs.head(3)
    pairs = [(row.reference_date, row.secondary_date) for row in table.itertuples()]
    store = DataStore(str(tmp_path / "data"))
    store.fs.makedirs(store.path("insar_pairs", str(BURST)), exist_ok=True)
    table.to_parquet(store.insar_pairs_path(str(BURST), WINDOW), index=False)

    def connect() -> openeo.Connection:
        return openeo.connect(backend.url).authenticate_basic("local", "local")

    with pytest.raises(FileNotFoundError, match="materialise coherence_job for"):
        download_and_check_partition(store, connect, str(BURST), WINDOW, backend_url=backend.url)

    connection = connect()
    ledger = Ledger(str(BURST), WINDOW, backend.url)
    record = enter_job(ledger, BURST, CoherenceRequest(apex_commit=MAIN_COMMIT), PairBatch(12, tuple(pairs)))
    create_job(connection, CoherenceRequest(apex_commit=MAIN_COMMIT), record)
    store.write_json(store.coherence_job_path(str(BURST), WINDOW), ledger.to_json())
    connection.job(record.job_id).start()
    wait_until_finished(connection, record.job_id)
    cut_pair = pairs[0]
    backend.add_fault(
        kind="truncate_download",
        path=f"S1_coh_2images_{cut_pair[0]:%Y%m%d}T",
        truncate_after_bytes=1000,
        times=3,
    )

    broken = download_and_check_partition(store, connect, str(BURST), WINDOW, backend_url=backend.url)

    assert broken.rasters is None and broken.error is not None
    assert not broken.check.passed
    assert broken.check.missing == [cut_pair]  # the other pairs' downloads completed
    assert broken.check.cause.startswith(type(broken.error).__name__) and "cut short" in broken.check.cause
    assert broken.check.cause in broken.check.description

    backend.clear_faults()
    complete = download_and_check_partition(store, connect, str(BURST), WINDOW, backend_url=backend.url)

    assert complete.error is None and complete.check.passed
    assert set(complete.rasters.summaries) == set(pairs)
