"""The whole chain under ``dagster dev``: a GraphQL backfill, the daemon, both sensors, two cubes.

The embedded backend runs in this process and is reached over HTTP with OIDC client
credentials, exactly as CDSE would be; nothing of the chain runs in the test process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openeo
import pandas as pd
import pytest

from coherence_assets.cube.stacking import open_coherence_cube
from coherence_assets.jobs.ledger_index import read_all_ledgers
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.settings import packaged_demo_bursts_file
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend, start_backend
from coherence_assets_tests.dagster_dev import running_dagster_dev
from embedded_openeo.github_api import MAIN_COMMIT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parents[1]
BURSTS = ("t015_030343_iw2", "t168_359507_iw2")
WINDOWS = ("2023-07-01", "2023-10-01")
CHAIN_TIMEOUT_SECONDS = 210
# Fast queue and threaded sensors so the test does not wait on default intervals. One run per
# partition key at a time: two stack runs of the same burst must never write its cube at once.
INSTANCE_YAML = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: dagster/partition
        value:
          applyLimitPerUniqueValue: true
        limit: 1
sensors:
  use_threads: true
  num_workers: 2
telemetry:
  enabled: false
"""


@pytest.fixture
def live_backend(tmp_path: Path) -> Iterator[LiveBackend]:
    # Jobs of several seconds keep both slots busy while the backfill submits, so jobs the runs
    # could not start stay created until openeo_job_sensor starts them (else they never finish).
    yield from start_backend(tmp_path / "backend", max_running_jobs=2, job_seconds_per_pair=1.0)


def chain_environment(backend: LiveBackend, data_dir: Path | str) -> dict[str, str]:
    """The environment of a CDSE deployment, pointed at the embedded backend."""
    return {
        **os.environ,
        "COHERENCE_DATA_DIR": str(data_dir),
        "COHERENCE_BURSTS_FILE": packaged_demo_bursts_file(),
        "OPENEO_BACKEND_URL": backend.url,
        "COHERENCE_CATALOGUE_URL": backend.catalogue_url,
        "OPENEO_AUTH_METHOD": "client_credentials",
        "OPENEO_AUTH_CLIENT_ID": "coherence-assets",
        "OPENEO_AUTH_CLIENT_SECRET": "local-secret",
        "OPENEO_AUTH_PROVIDER_ID": "local",
        "COHERENCE_SENSOR_INTERVAL_SECONDS": "5",
        # a deployment pins the APEx process's commit (no machine here reaches GitHub)
        "COHERENCE_APEX_COMMIT": MAIN_COMMIT,
    }


def read_pair_tables(store: DataStore, burst: str) -> pd.DataFrame | None:
    """The burst's pairs of all test windows, by reference date; None until every table exists."""
    paths = [store.insar_pairs_path(burst, window) for window in WINDOWS]
    if not all(store.fs.exists(path) for path in paths):
        return None
    tables = []
    for path in paths:
        with store.fs.open(path, "rb") as stream:
            tables.append(pd.read_parquet(stream))
    pairs = pd.concat(tables).sort_values("reference_date").reset_index(drop=True)
    for column in ("reference_date", "secondary_date"):
        pairs[column] = pd.to_datetime(pairs[column]).dt.date
    return pairs


def cube_holds_all_pairs(store: DataStore, burst: str) -> bool:
    pairs = read_pair_tables(store, burst)
    if pairs is None or not store.fs.exists(store.coherence_cube_path(burst)):
        return False
    try:
        cube = open_coherence_cube(store.fs, store.coherence_cube_path(burst))
    except (OSError, ValueError, KeyError):  # a stack run is writing it right now
        return False
    return cube.sizes.get("time") == len(pairs)


def assert_cube_matches_pair_tables(store: DataStore, burst: str) -> None:
    pairs = read_pair_tables(store, burst)
    assert pairs is not None and len(pairs) > 0
    cube = open_coherence_cube(store.fs, store.coherence_cube_path(burst))
    coherence = cube["coherence"]
    assert coherence.dims == ("time", "y", "x")
    assert list(pd.to_datetime(cube["time"].values).date) == list(pairs["reference_date"])
    assert list(pd.to_datetime(cube["secondary_time"].values).date) == list(pairs["secondary_date"])
    assert set(cube["temporal_baseline"].values.tolist()) == {12}
    epsg = cube.rio.crs.to_epsg()
    assert epsg is not None and 32601 <= epsg <= 32660, f"{burst}: CRS {cube.rio.crs} is not UTM north"
    values = coherence.values
    valid = values[np.isfinite(values)]
    assert valid.size > 0
    assert valid.min() >= 0.0 and valid.max() <= 1.0
    assert 0.1 < valid.mean() < 0.95, f"{burst}: implausible mean coherence {valid.mean():.3f}"
    assert not (values == 0).any(), f"{burst}: exact zeros in the cube (no-data must stay NaN)"


def assert_one_backend_job_per_ledger_entry(store: DataStore, backend: LiveBackend) -> None:
    ledgers = read_all_ledgers(store)
    assert {(ledger.burst, ledger.window) for ledger in ledgers} == {
        (burst, window) for burst in BURSTS for window in WINDOWS
    }
    ledger_job_ids = [job.job_id for ledger in ledgers for job in ledger.jobs]
    connection = openeo.connect(backend.url).authenticate_basic("local", "local")
    backend_jobs = list_all_jobs(connection)
    assert sorted(backend_jobs) == sorted(ledger_job_ids), "a job was created twice or never recorded"
    titles = [job.get("title") for job in backend_jobs.values()]
    assert len(set(titles)) == len(titles), f"twin submissions on the backend: {titles}"
    assert {job["status"] for job in backend_jobs.values()} == {"finished"}


def test_backfill_through_dagster_dev_stacks_both_windows_of_both_bursts(
    tmp_path: Path, live_backend: LiveBackend
) -> None:
    data_dir = tmp_path / "data"
    store = DataStore(str(data_dir))
    with running_dagster_dev(
        REPO / "workspace.yaml",
        tmp_path / "dagster_home",
        INSTANCE_YAML,
        chain_environment(live_backend, data_dir),
    ) as dev:
        assert dev.run_job_to_end("refresh_burst_catalogue", 90) == "SUCCESS", dev.diagnostics()
        dev.wait_for_burst_partitions(BURSTS, 120)

        backfill_id = dev.launch_asset_backfill(
            ["insar_pairs", "coherence_job"],
            [f"{burst}|{window}" for burst in BURSTS for window in WINDOWS],
        )
        dev.wait_until_settled(
            [backfill_id],
            lambda: all(cube_holds_all_pairs(store, burst) for burst in BURSTS),
            CHAIN_TIMEOUT_SECONDS,
            "both cubes holding both windows",
        )
        runs = dev.runs()
        backfill_status = dev.backfill_status(backfill_id)
        leftovers = dev.stop()

    failed = [run for run in runs if run["status"] != "SUCCESS"]
    assert not failed, f"runs that did not succeed: {failed}"
    assert backfill_status in {"COMPLETED", "COMPLETED_SUCCESS"}
    download_runs = [run for run in runs if run["jobName"] == "download_coherence_rasters"]
    assert len(download_runs) == len(BURSTS) * len(WINDOWS)
    assert leftovers == [], f"processes still running after dagster dev stopped: {leftovers}"
    for burst in BURSTS:
        assert_cube_matches_pair_tables(store, burst)
    assert_one_backend_job_per_ledger_entry(store, live_backend)
