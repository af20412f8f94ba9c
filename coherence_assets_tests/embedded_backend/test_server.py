"""The embedded backend starts in a thread, or detached on demand, and is reused once it runs."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from coherence_assets.embedded_backend.config import BackendConfig
from coherence_assets.embedded_backend.server import (
    LOG_FILE_NAME,
    PID_FILE_NAME,
    ensure_local_backend,
    running_backend,
)

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def stop_backend(pid_file: Path, timeout: float = 10.0) -> bool:
    """SIGTERM the backend whose pid is in ``pid_file``; True once it removed the file on a clean exit.

    The backend is a child of this test process, so after it exits it stays a zombie until reaped:
    its pid file, not its pid, tells whether it has stopped.
    """
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_file.exists():
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return False


@pytest.fixture
def detached_backend_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder whose backend, if one was started there, is stopped after the test."""
    yield tmp_path
    pid_file = tmp_path / PID_FILE_NAME
    if pid_file.exists():
        stop_backend(pid_file)


def test_running_backend_serves_on_a_free_port_and_stops_on_exit(tmp_path: Path) -> None:
    with running_backend(BackendConfig(data_dir=tmp_path, port=0)) as url:
        assert requests.get(f"{url}/.well-known/openeo", timeout=5).ok
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/.well-known/openeo", timeout=5)


def test_ensure_local_backend_starts_one_detached_and_then_reuses_it(detached_backend_dir: Path) -> None:
    port = free_port()
    url = ensure_local_backend(HOST, port, detached_backend_dir, timeout=30)
    assert url == f"http://{HOST}:{port}"
    assert requests.get(f"{url}/odata/v1/Bursts?$filter=BurstId eq 30343&$top=1", timeout=5).ok
    pid_file = detached_backend_dir / PID_FILE_NAME
    assert int(pid_file.read_text()) != os.getpid()
    assert (detached_backend_dir / LOG_FILE_NAME).exists()

    began = time.monotonic()
    assert ensure_local_backend(HOST, port, detached_backend_dir / "unused", timeout=30) == url
    assert time.monotonic() - began < 2
    assert not (detached_backend_dir / "unused").exists()

    assert stop_backend(pid_file), "SIGTERM should shut the backend down cleanly"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/.well-known/openeo", timeout=5)


def test_two_callers_racing_to_start_a_backend_both_get_the_one_that_won(detached_backend_dir: Path) -> None:
    port = free_port()
    with ThreadPoolExecutor(max_workers=2) as pool:
        urls = list(
            pool.map(lambda _: ensure_local_backend(HOST, port, detached_backend_dir, timeout=30), range(2))
        )
    assert urls == [f"http://{HOST}:{port}"] * 2
    assert requests.get(f"{urls[0]}/.well-known/openeo", timeout=5).ok


def test_ensure_local_backend_names_the_log_when_no_backend_comes_up(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(RuntimeError, match=LOG_FILE_NAME):
            ensure_local_backend(HOST, port, tmp_path, timeout=2)
    assert "Address already in use" in (tmp_path / LOG_FILE_NAME).read_text()
