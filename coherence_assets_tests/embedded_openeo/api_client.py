"""Helpers shared by the embedded backend's openEO tests: configs, process graphs, a raw API client."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from coherence_assets.cdse_facts import APEX_NAMESPACE, CDSE_PIXEL_SIZE
from embedded_openeo.config import BackendConfig
from embedded_openeo.server import running_backend

FAST_SCENE = (64, 128)
# Three 12-day pairs of burst 30343 IW2 (the packaged South Tyrol map), all before any test's "now".
APEX_ARGUMENTS: dict[str, Any] = {
    "polarization": "VV",
    "temporal_extent": ["2023-07-01", "2023-08-10"],
    "temporal_baseline": 12,
    "burst_id": 30343,
    "sub_swath": "IW2",
    "coherence_window_rg": 21,
    "coherence_window_az": 5,
}


def fast_config(data_dir: Path, **overrides: Any) -> BackendConfig:
    """Small scenes at CDSE's 20 m, no start rate limit, a free port, faults allowed: what most tests want."""
    settings: dict[str, Any] = {
        "data_dir": data_dir,
        "port": 0,
        "pixel_size": CDSE_PIXEL_SIZE,
        "scene_shape": FAST_SCENE,
        "min_seconds_between_starts": 0.0,
        "allow_faults": True,
    }
    return BackendConfig(**(settings | overrides))


def apex_process(**arguments: Any) -> dict[str, Any]:
    """The process graph ``datacube_from_process("sentinel1_sar_coherence", namespace=...)`` sends."""
    node = {
        "process_id": "sentinel1_sar_coherence",
        "namespace": APEX_NAMESPACE,
        "arguments": APEX_ARGUMENTS | arguments,
        "result": True,
    }
    return {"process_graph": {"sentinel1sarcoherence1": node}}


def saved_process(process_id: str, arguments: dict[str, Any], output_format: str = "GTiff") -> dict[str, Any]:
    """One of the older processes followed by ``save_result``."""
    return {
        "process_graph": {
            "coherence1": {"process_id": process_id, "arguments": arguments},
            "saveresult1": {
                "process_id": "save_result",
                "arguments": {"data": {"from_node": "coherence1"}, "format": output_format, "options": {}},
                "result": True,
            },
        }
    }


class ApiClient:
    """A ``requests`` session logged in with HTTP Basic, for tests that look at raw responses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        token = self.session.get(f"{url}/credentials/basic", auth=("local", "local")).json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer basic//{token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, **kwargs)

    def create_job(self, process: dict[str, Any] | None = None, title: str = "test") -> str:
        response = self.post("/jobs", json={"process": process or apex_process(), "title": title})
        assert response.status_code == 201, response.text
        return response.headers["OpenEO-Identifier"]

    def status(self, job_id: str) -> str:
        return self.get(f"/jobs/{job_id}").json()["status"]

    def wait_for(self, job_id: str, statuses: tuple[str, ...], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/jobs/{job_id}").json()
            if job["status"] in statuses:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not reach {statuses} within {timeout} s: {job}")


@contextmanager
def api_client(data_dir: Path, **overrides: Any) -> Iterator[ApiClient]:
    with running_backend(fast_config(data_dir, **overrides)) as url:
        yield ApiClient(url)


def assert_openeo_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    assert body["message"] and "id" in body and body["links"] == []
    return body
