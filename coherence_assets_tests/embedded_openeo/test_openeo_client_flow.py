"""The real ``openeo`` client against the embedded backend: the notebook flow, client credentials, the job manager."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openeo
import pandas as pd
import pytest
import rasterio
from openeo.extra.job_management import MultiBackendJobManager
from openeo.rest.job import BatchJob

from coherence_assets.cdse_facts import APEX_NAMESPACE
from coherence_assets_tests.embedded_openeo.api_client import APEX_ARGUMENTS, fast_config
from embedded_openeo.server import running_backend


@pytest.fixture(scope="module")
def backend_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_backend(fast_config(tmp_path_factory.mktemp("backend"))) as url:
        yield url


def _wait(job: BatchJob, timeout: float = 30.0) -> str:
    """Poll the status as a notebook would (``start_and_wait`` sleeps far too long for a test)."""
    deadline = time.monotonic() + timeout
    while (status := job.status()) not in ("finished", "error", "canceled"):
        assert time.monotonic() < deadline, f"{job.job_id} still {status}"
        time.sleep(0.1)
    return status


def test_notebook_flow_with_basic_auth_downloads_one_geotiff_per_pair(
    backend_url: str, tmp_path: Path
) -> None:
    connection = openeo.connect(backend_url).authenticate_basic("local", "local")
    cube = connection.datacube_from_process(
        "sentinel1_sar_coherence", namespace=APEX_NAMESPACE, **APEX_ARGUMENTS
    )
    job = cube.create_job(title="sentinel1_sar_coherence notebook", auto_add_save_result=False)
    job.start()
    assert _wait(job) == "finished"
    assert any(entry["message"].startswith("Job finished") for entry in job.logs())
    downloaded = job.get_results().download_files(tmp_path)
    tifs = sorted(path for path in downloaded if path.suffix == ".tif")
    assert [path.name for path in tifs] == [
        "S1_coh_2images_20230703T171543_20230715T171543.tif",
        "S1_coh_2images_20230715T171543_20230727T171543.tif",
        "S1_coh_2images_20230727T171543_20230808T171543.tif",
    ]
    with rasterio.open(tifs[0]) as dataset:
        coherence = dataset.read(1)
        assert dataset.dtypes == ("float32",) and np.isnan(dataset.nodata)
        assert dataset.crs.to_epsg() == 32632 and dataset.res == (20.0, 20.0)
        assert dataset.compression.name.lower() == "deflate"
    assert np.nanmin(coherence) >= 0 and np.nanmax(coherence) <= 1


def test_the_client_default_save_result_after_the_apex_process_changes_nothing(backend_url: str) -> None:
    connection = openeo.connect(backend_url).authenticate_basic("local", "local")
    cube = connection.datacube_from_process(
        "sentinel1_sar_coherence", namespace=APEX_NAMESPACE, **APEX_ARGUMENTS
    )
    job = cube.create_job()  # adds save_result(format="GTiff"), as the APEx example does
    job.start()
    assert _wait(job) == "finished"
    assert len(job.get_results().get_assets()) == 3


def test_older_processes_name_outputs_by_reference_date(backend_url: str, tmp_path: Path) -> None:
    connection = openeo.connect(backend_url).authenticate_basic("local", "local")
    cube = connection.datacube_from_process(
        "sar_coherence_parallel",
        InSAR_pairs=[["2023-07-03", "2023-07-15"], ["2023-07-15", "2023-07-27"]],
        burst_id=30343,
        sub_swath="IW2",
        polarization="vv",
    ).save_result(format="GTiff")
    job = cube.create_job(title="sar_coherence_parallel")
    job.start()
    assert _wait(job) == "finished"
    assets = {asset.key: asset for asset in job.get_results().get_assets()}
    assert sorted(assets) == ["openEO_2023-07-03Z.tif", "openEO_2023-07-15Z.tif"]
    assert assets["openEO_2023-07-03Z.tif"].download(tmp_path).stat().st_size > 0


def test_client_credentials_from_the_environment(backend_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENEO_AUTH_METHOD", "client_credentials")
    monkeypatch.setenv("OPENEO_AUTH_CLIENT_ID", "coherence-assets")
    monkeypatch.setenv("OPENEO_AUTH_CLIENT_SECRET", "local-secret")
    monkeypatch.setenv("OPENEO_AUTH_PROVIDER_ID", "local")
    connection = openeo.connect(backend_url).authenticate_oidc()
    assert connection.describe_account()["user_id"] == "local"
    cube = connection.datacube_from_process(
        "sentinel1_sar_coherence", namespace=APEX_NAMESPACE, **APEX_ARGUMENTS
    )
    job = cube.create_job(title="via client credentials", auto_add_save_result=False)
    assert job.job_id in {listed["id"] for listed in connection.list_jobs(limit=None)}


def test_multi_backend_job_manager_runs_a_small_batch_to_finished_and_downloads_it(
    backend_url: str, tmp_path: Path
) -> None:
    connection = openeo.connect(backend_url).authenticate_basic("local", "local")
    manager = MultiBackendJobManager(poll_sleep=0.2, root_dir=tmp_path / "jobs")  # type: ignore[arg-type]
    manager.add_backend("local", connection=connection, parallel_jobs=2)
    windows = pd.DataFrame({"start": ["2023-07-01", "2023-07-13", "2023-07-25"]})

    def start_job(row: pd.Series, connection: openeo.Connection, **kwargs: object) -> BatchJob:
        end = (pd.Timestamp(row["start"]) + pd.Timedelta(days=14)).strftime("%Y-%m-%d")
        arguments = APEX_ARGUMENTS | {"temporal_extent": [row["start"], end]}
        cube = connection.datacube_from_process(
            "sentinel1_sar_coherence", namespace=APEX_NAMESPACE, **arguments
        )
        return cube.create_job(title=f"window {row['start']}", auto_add_save_result=False)

    manager.run_jobs(df=windows, start_job=start_job, job_db=tmp_path / "jobs.csv")
    database = pd.read_csv(tmp_path / "jobs.csv")
    assert list(database["status"]) == ["finished"] * 3
    downloaded = sorted((tmp_path / "jobs").glob("job_*/*.tif"))
    assert len(downloaded) == 3
