"""The embedded backend starts in a thread, or detached on demand, and is reused once it runs."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from embedded_openeo.app import STATE_PATH
from embedded_openeo.config import BackendConfig
from embedded_openeo.server import (
    LOG_FILE_NAME,
    PID_FILE_NAME,
    ForeignBackendError,
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


@pytest.mark.slow
def test_ensure_local_backend_starts_one_detached_and_then_reuses_it(detached_backend_dir: Path) -> None:
    port = free_port()
    url = ensure_local_backend(HOST, port, detached_backend_dir, timeout=30)
    assert url == f"http://{HOST}:{port}"
    assert requests.get(f"{url}/odata/v1/Bursts?$filter=BurstId eq 30343&$top=1", timeout=5).ok
    pid_file = detached_backend_dir / PID_FILE_NAME
    assert int(pid_file.read_text()) != os.getpid()
    assert (detached_backend_dir / LOG_FILE_NAME).exists()

    began = time.monotonic()
    same_folder_spelled_otherwise = detached_backend_dir / "sub" / ".."
    assert ensure_local_backend(HOST, port, same_folder_spelled_otherwise, timeout=30) == url
    assert time.monotonic() - began < 2

    first_pid = int(pid_file.read_text())
    assert stop_backend(pid_file), "SIGTERM should shut the backend down cleanly"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/.well-known/openeo", timeout=5)

    # stopped mid-way: the next caller starts it again from the same folder, its state intact
    assert ensure_local_backend(HOST, port, detached_backend_dir, timeout=30) == url
    state = requests.get(f"{url}{STATE_PATH}", timeout=5).json()
    assert state["data_dir"] == str(detached_backend_dir.resolve())
    assert state["pid"] == int(pid_file.read_text()) != first_pid


def test_two_callers_racing_to_start_a_backend_both_get_the_one_that_won(detached_backend_dir: Path) -> None:
    port = free_port()
    with ThreadPoolExecutor(max_workers=2) as pool:
        urls = list(
            pool.map(lambda _: ensure_local_backend(HOST, port, detached_backend_dir, timeout=30), range(2))
        )
    assert urls == [f"http://{HOST}:{port}"] * 2
    assert requests.get(f"{urls[0]}/.well-known/openeo", timeout=5).ok


@pytest.mark.slow
def test_ensure_local_backend_names_the_log_when_no_backend_comes_up(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind((HOST, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(RuntimeError, match=LOG_FILE_NAME):
            ensure_local_backend(HOST, port, tmp_path, timeout=30)
    assert "Address already in use" in (tmp_path / LOG_FILE_NAME).read_text()


def test_the_backend_says_which_folder_it_serves(tmp_path: Path) -> None:
    with running_backend(BackendConfig(data_dir=tmp_path / "state" / ".." / "state", port=0)) as url:
        answer = requests.get(f"{url}{STATE_PATH}", timeout=5).json()
    assert answer == {"data_dir": str((tmp_path / "state").resolve()), "pid": os.getpid()}


def test_a_backend_of_another_folder_is_refused_in_one_line_naming_both_folders(tmp_path: Path) -> None:
    theirs, ours = tmp_path / "their-project" / "backend", tmp_path / "our-project" / "backend"
    with running_backend(BackendConfig(data_dir=theirs, port=0)) as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(ForeignBackendError) as refused:
            ensure_local_backend(HOST, port, ours, timeout=10)
    message = str(refused.value)
    assert "\n" not in message
    assert f"serves the state in {theirs.resolve()}, not this project's {ours.resolve()}" in message
    assert "COHERENCE_LOCAL_BACKEND_PORT" in message
    assert not ours.exists(), "nothing may be started for a port another backend holds"


class NotABackend(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_port_held_by_something_else_is_refused_naming_our_folder(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer((HOST, 0), NotABackend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(
            ForeignBackendError, match=r"HTTP 404 to /_state\) that is not an embedded backend"
        ):
            ensure_local_backend(HOST, server.server_address[1], tmp_path / "ours", timeout=10)
    finally:
        server.shutdown()
    assert not (tmp_path / "ours").exists()
