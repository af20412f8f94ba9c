"""The coherence_rasters step without Dagster: a real job on the embedded backend over HTTP, its
rasters downloaded into a real folder, and the every-pair-has-a-raster verdict."""

from __future__ import annotations

import datetime as dt
import time

import openeo

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.jobs.batching import PairBatch
from coherence_assets.jobs.ledger import CANCELED, ERROR, FINISHED, Ledger
from coherence_assets.jobs.processes import CoherenceRequest
from coherence_assets.jobs.submission import create_job, enter_job
from coherence_assets.pairs.window_pairs import pairs_for_window
from coherence_assets.rasters.asset_matching import raster_file_name
from coherence_assets.rasters.partition_download import check_rasters, download_partition_rasters
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend

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
    record = enter_job(ledger, BURST, CoherenceRequest(), PairBatch(12, tuple(job_pairs)))
    create_job(connection, CoherenceRequest(), record)
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
