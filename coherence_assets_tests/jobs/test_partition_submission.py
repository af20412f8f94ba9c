"""The coherence_job step without Dagster: the embedded backend over HTTP, a ledger on disk, a real lease."""

from __future__ import annotations

import datetime as dt

import openeo

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.jobs.ledger import read_ledger
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.pairs.window_pairs import pairs_for_window
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.jobs.conftest import BURST, WINDOW, submit


def test_every_pair_is_submitted_once_and_a_backfill_run_leaves_starting_to_the_sensor(
    backend: LiveBackend, tmp_path
):
    catalogue = BurstCatalogueClient(backend.catalogue_url)
    table = pairs_for_window(
        catalogue, BurstKey.parse(BURST), "VV", dt.date(2023, 7, 1), dt.date(2023, 9, 30), [12]
    ).pairs
    pairs = [(row.reference_date, row.secondary_date) for row in table.itertuples()]
    store = DataStore(str(tmp_path / "data"))

    in_backfill = submit(store, backend, pairs, start_jobs_now=False)
    again = submit(store, backend, pairs, start_jobs_now=True)

    submitted = [pair for record in in_backfill.records for pair in record.pairs]
    assert sorted(submitted) == sorted(pairs) and len(submitted) == len(set(submitted))
    assert in_backfill.started == []
    assert again.records == [] and again.plan.covered_pairs == set(pairs)
    ledger = read_ledger(store, BURST, WINDOW, backend.url)
    backend_jobs = list_all_jobs(openeo.connect(backend.url).authenticate_basic("local", "local"))
    assert {record.job_id for record in ledger.jobs} == set(backend_jobs)
    assert all(backend_jobs[record.job_id]["status"] == "created" for record in ledger.jobs)
