"""The shipped production deployment: ``deploy/dagster.yaml`` on a real PostgreSQL server, with
``dagster-webserver`` and ``dagster-daemon`` as separate processes, driven through GraphQL, and the
data folder on an object store (``s3://`` on moto's S3 server), so that every run process sees the
same data as run pods do.

Two backfills of the same partition are launched back to back, as two users of a shared
deployment might: the run queue must run one run per partition at a time, the sensors must carry
the chain on to the rasters, and everything the deployment records must land in PostgreSQL.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import openeo
import pandas as pd
import pytest
import yaml

from coherence_assets.jobs.ledger_index import read_all_ledgers
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend, start_backend
from coherence_assets_tests.dagster_dev import running_dagster_deployment
from coherence_assets_tests.postgres_server import PostgresServer, postgres_bin_dir, running_postgres
from coherence_assets_tests.s3_server import S3Server
from coherence_assets_tests.test_end_to_end import chain_environment

pytestmark = [pytest.mark.e2e, pytest.mark.system_program("postgresql"), pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
DEPLOYED_INSTANCE_YAML = REPO / "deploy" / "dagster.yaml"
BURST = "t015_030343_iw2"
WINDOW = "2023-07-01"
PARTITION = f"{BURST}|{WINDOW}"
# Two backfill runs, a download run and a stack run, one after the other, each a few
# processes that import the project.
CHAIN_TIMEOUT_SECONDS = 420
ONE_RUN_PER_PARTITION = {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}

RUNS_SQL = """
SELECT runs.run_id, runs.pipeline_name, runs.status, runs.start_time, runs.end_time,
       partition_tag.value, backfill_tag.value, step_tag.value
FROM runs
LEFT JOIN run_tags AS partition_tag ON partition_tag.run_id = runs.run_id
    AND partition_tag.key IN ('dagster/partition', 'dagster/asset_partition_range_start')
LEFT JOIN run_tags AS backfill_tag ON backfill_tag.run_id = runs.run_id AND backfill_tag.key = 'dagster/backfill'
LEFT JOIN run_tags AS step_tag ON step_tag.run_id = runs.run_id AND step_tag.key = 'coherence/step'
"""


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    if postgres_bin_dir() is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
            "apt-get install postgresql (.ci/run installs it)"
        )
    with running_postgres(tmp_path) as server:
        yield server


@pytest.fixture
def live_backend(tmp_path: Path) -> Iterator[LiveBackend]:
    yield from start_backend(tmp_path / "backend", max_running_jobs=2, job_seconds_per_pair=0.5)


def every_pair_has_a_raster(store: DataStore) -> bool:
    """Asked of the store each time: the runs in other processes write these files."""
    table = store.read_bytes_if_present(store.insar_pairs_path(BURST, WINDOW))
    if table is None:
        return False
    pairs = pd.read_parquet(io.BytesIO(table))
    expected = {
        f"{pd.Timestamp(reference):%Y%m%d}_{pd.Timestamp(secondary):%Y%m%d}.tif"
        for reference, secondary in zip(pairs["reference_date"], pairs["secondary_date"], strict=True)
    }
    present = set(store.list_names(store.coherence_rasters_dir(BURST, WINDOW)))
    return bool(expected) and expected <= present


def test_two_backfills_on_the_production_deployment_run_one_run_per_partition_and_land_in_postgresql(
    tmp_path: Path, postgres: PostgresServer, live_backend: LiveBackend, s3_env: S3Server
) -> None:
    data_dir = f"s3://{s3_env.new_bucket()}/data"  # the daemon's and the runs' processes reach it by AWS_*
    store = DataStore(data_dir)
    home = tmp_path / "dagster_home"
    with running_dagster_deployment(
        REPO / "workspace.yaml",
        home,
        DEPLOYED_INSTANCE_YAML.read_text(),
        {**chain_environment(live_backend, data_dir), **postgres.dagster_environment()},
    ) as dagster:
        run_queue = dagster.instance_info()["runQueueConfig"]
        dagster.run_job_to_end("refresh_burst_catalogue", 90)
        dagster.wait_for_burst_partitions([BURST], 120)
        backfill_ids = [
            dagster.launch_asset_backfill(["insar_pairs", "coherence_job"], [PARTITION]) for _ in range(2)
        ]
        dagster.wait_until_settled(
            backfill_ids,
            lambda: every_pair_has_a_raster(store),
            CHAIN_TIMEOUT_SECONDS,
            "both backfills done and a raster for every pair",
        )
        graphql_run_ids = {run["runId"] for run in dagster.runs()}
        leftovers = dagster.stop()

    assert ONE_RUN_PER_PARTITION in yaml.safe_load(run_queue["tagConcurrencyLimitsYaml"])
    assert not (home / "history").exists(), "runs went to SQLite under DAGSTER_HOME, not to PostgreSQL"
    connection = postgres.connect()
    try:
        with connection.cursor() as cursor:
            cursor.execute(RUNS_SQL)
            rows = cursor.fetchall()
    finally:
        connection.close()
    assert {row[0] for row in rows} == graphql_run_ids
    failed = [row for row in rows if row[2] != "SUCCESS"]
    assert not failed, f"runs that did not succeed: {failed}"

    backfill_runs = [row for row in rows if row[5] == PARTITION and row[6] in backfill_ids]
    # each backfill: one run for both assets (insar_pairs and coherence_job share one step)
    assert len(backfill_runs) == len(backfill_ids), f"expected one run per backfill: {backfill_runs}"
    spans = sorted((row[3], row[4], row[1]) for row in rows if row[5] == PARTITION)
    overlapping = [(a, b) for a, b in pairwise(spans) if b[0] < a[1]]
    assert not overlapping, f"runs of one partition overlapped in time: {overlapping}"

    downloads = [row for row in rows if row[1] == "download_coherence_rasters"]
    assert downloads and all(row[7] == "download" for row in downloads), (
        "downloads lack the tag the queue caps"
    )
    assert leftovers == [], f"processes still running after the deployment stopped: {leftovers}"

    ledger_job_ids = [job.job_id for ledger in read_all_ledgers(store) for job in ledger.jobs]
    backend_jobs = list_all_jobs(openeo.connect(live_backend.url).authenticate_basic("local", "local"))
    assert sorted(backend_jobs) == sorted(ledger_job_ids), "the second backfill created jobs again"
