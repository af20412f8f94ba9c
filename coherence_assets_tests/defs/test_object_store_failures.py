"""An object store that is missing its bucket or stops answering: one line, nothing created, nothing paid twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator
from pathlib import Path

import dagster as dg
import pytest
import xarray as xr

from coherence_assets.cube.stacking import find_pair_rasters
from coherence_assets.demo import failure_cause
from coherence_assets.raster_files.validation import validate_coherence_raster
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.defs.conftest import (
    BURST,
    PARTITION,
    WINDOW,
    Chain,
    chain_definitions,
    chain_resources,
    write_burst_file,
)
from coherence_assets_tests.s3_server import S3Server
from coherence_assets_tests.test_cli import assert_one_line_error, closed_port, run_cli

pytestmark = pytest.mark.slow

# botocore's own retries of a refused connection take seconds per request; the tests need not wait them out
NO_RETRIES = {"AWS_MAX_ATTEMPTS": "1"}


def s3_chain(backend: LiveBackend, instance: dg.DagsterInstance, data_dir: str, folder: Path) -> Chain:
    """The chain on ``data_dir`` (``s3://...``); a failed download is requested again at the next tick."""
    bursts_file = write_burst_file(folder / "bursts.geojson", [BURST])
    resources = chain_resources(
        backend,
        data_dir,  # type: ignore[arg-type]
        bursts_file=bursts_file,
        openeo={"download_retry_seconds": 0},
    )
    return Chain(
        defs=chain_definitions(resources),
        instance=instance,
        backend=backend,
        data_dir=data_dir,  # type: ignore[arg-type]
        bursts_file=bursts_file,
    )


def test_the_demo_names_a_missing_bucket_in_one_line_and_creates_none(s3_env: S3Server, tmp_path: Path):
    completed = run_cli(
        "demo",
        cwd=tmp_path,
        env={"DAGSTER_HOME": str(tmp_path / "home"), "COHERENCE_DATA_DIR": "s3://no-such-bucket/data"},
    )

    assert_one_line_error(
        completed, "bucket no-such-bucket", "does not exist", "create it or correct the name"
    )
    assert "no-such-bucket" not in s3_env.bucket_names()


def test_the_demo_says_in_one_line_that_the_object_store_does_not_answer(s3_env: S3Server, tmp_path: Path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    completed = run_cli(
        "demo",
        cwd=tmp_path,
        env={
            "DAGSTER_HOME": str(tmp_path / "home"),
            "COHERENCE_DATA_DIR": "s3://some-bucket/data",
            "AWS_ENDPOINT_URL": endpoint,
            **NO_RETRIES,
        },
    )

    assert_one_line_error(completed, f"the object store at {endpoint} does not answer", "AWS_ENDPOINT_URL")


def test_a_run_on_a_missing_bucket_fails_at_its_start_in_one_line_and_submits_nothing(
    s3_env: S3Server, backend: LiveBackend, dagster_instance: dg.DagsterInstance, tmp_path: Path
):
    # the burst partitions exist in the instance (from a data folder that does exist)
    s3_chain(backend, dagster_instance, f"s3://{s3_env.new_bucket()}/data", tmp_path).refresh_bursts()
    typo = s3_chain(backend, dagster_instance, "s3://no-such-bucket/data", tmp_path)

    result = typo.submit(raise_on_error=False)

    assert not result.success
    line = failure_cause(result)  # as the demo prints it
    assert "bucket no-such-bucket" in line and "does not exist" in line and "\n" not in line
    assert "no-such-bucket" not in s3_env.bucket_names()
    assert typo.backend_jobs() == {}


@pytest.fixture
def own_s3_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """An S3 server of this test alone, which it may stop and start again (objects kept)."""
    import s3fs

    server = S3Server()
    server.start()
    for name, value in {**server.environment(), **NO_RETRIES}.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()
    yield server
    server.stop()


def submitted_s3_chain(
    server: S3Server, backend: LiveBackend, instance: dg.DagsterInstance, folder: Path
) -> Chain:
    """The chain on a fresh bucket of ``server``, its partition submitted and its jobs in the ledger."""
    chain = s3_chain(backend, instance, f"s3://{server.new_bucket()}/data", folder)
    chain.refresh_bursts()
    chain.submit()
    chain.wait_for_ledger_jobs()
    return chain


def ticks_download(chain: Chain, cursor: str | None, ticks: int = 5) -> bool:
    """Tick from ``cursor`` and launch what each tick requests until a download run succeeds."""
    for _ in range(ticks):
        tick = chain.tick(cursor)
        cursor = tick.cursor
        if any(result.success for result in chain.launch(tick)):
            return True
    return False


def assert_each_pair_once_with_a_valid_raster(chain: Chain, jobs_before: Collection[str]) -> Counter:
    """No job submitted again, no pair computed twice, and one valid raster per pair; the ledger's pairs."""
    ledger_pairs = Counter(pair for job in chain.ledger(PARTITION).jobs for pair in job.pairs)
    assert chain.backend_jobs().keys() == set(jobs_before), "a job was submitted again"
    assert set(ledger_pairs.values()) == {1}, "a pair was computed twice"
    store = chain.store
    rasters = find_pair_rasters(store.fs, store.coherence_rasters_root(BURST))
    assert len(rasters) == len(ledger_pairs)
    for raster in rasters:
        validate_coherence_raster(store.fs, raster.path)
    return ledger_pairs


def stop_after_first_raster(server: S3Server, store: DataStore, timeout: float = 60.0) -> None:
    rasters_dir = store.coherence_rasters_dir(BURST, WINDOW)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store.fs.invalidate_cache()
        if any(path.endswith(".tif") for path in store.fs.find(rasters_dir)):
            break
        time.sleep(0.05)
    server.stop()


def test_a_store_stopped_mid_download_fails_the_run_in_one_line_and_the_rerun_loses_and_repays_nothing(
    own_s3_server: S3Server,
    backend: LiveBackend,
    dagster_instance: dg.DagsterInstance,
    tmp_path: Path,
    instant_retries: None,
):
    chain = submitted_s3_chain(own_s3_server, backend, dagster_instance, tmp_path)
    jobs_before = chain.backend_jobs().keys()
    requested = chain.tick()
    assert requested.run_requests, "no download requested"
    # downloads are slow, and the store goes away once the download run has stored its first raster
    backend.add_fault(path="/results/assets/", delay_seconds=1.0)
    threading.Thread(target=stop_after_first_raster, args=(own_s3_server, chain.store), daemon=True).start()

    (failed,) = chain.launch(requested)

    assert not failed.success
    line = failure_cause(failed)
    assert f"the object store at {own_s3_server.endpoint_url} does not answer" in line, line
    assert "AWS_ENDPOINT_URL" in line and "\n" not in line
    own_s3_server.start()
    backend.clear_faults()
    assert ticks_download(chain, requested.cursor), (
        "the sensor did not download again once the store was back"
    )
    assert chain.run("stack_coherence_cube", BURST).success
    ledger_pairs = assert_each_pair_once_with_a_valid_raster(chain, jobs_before)
    store = chain.store
    cube = xr.open_zarr(store.fs.unstrip_protocol(store.coherence_cube_path(BURST)))
    assert cube.sizes["time"] == len(ledger_pairs)


def test_a_tick_while_the_store_is_down_skips_in_one_line_and_the_next_ones_carry_on_once_it_is_back(
    own_s3_server: S3Server,
    backend: LiveBackend,
    dagster_instance: dg.DagsterInstance,
    tmp_path: Path,
    instant_retries: None,
):
    chain = submitted_s3_chain(own_s3_server, backend, dagster_instance, tmp_path)
    started = chain.tick()
    job_ids = list(chain.backend_jobs())
    own_s3_server.stop()

    down = chain.tick(started.cursor)

    assert down.skip_message is not None and "\n" not in down.skip_message, down.skip_message
    assert f"the object store at {own_s3_server.endpoint_url} does not answer" in down.skip_message
    assert "next tick tries again" in down.skip_message
    assert not down.run_requests and down.cursor in (None, started.cursor)
    own_s3_server.start()
    chain.wait_for_jobs(job_ids)
    assert ticks_download(chain, started.cursor), (
        "the sensor did not request the downloads once the store was back"
    )
    assert_each_pair_once_with_a_valid_raster(chain, set(job_ids))
