"""``backend status|stop`` underneath: a background backend is found by its pid file and stopped by
SIGTERM, and a pid file that names another program is never trusted. Real processes, no server: a
sleeping Python whose command line reads as the backend's stands in for one."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedded_openeo.control import background_backend, stop_backend
from embedded_openeo.server import BACKEND_MODULE, PID_FILE_NAME


def spawn(arguments: list[str]) -> subprocess.Popen:
    """Start ``arguments`` and wait until the fork has become that program (its command line is
    the parent's, naming this test file, until then)."""
    process = subprocess.Popen(arguments)
    while Path(f"/proc/{process.pid}/cmdline").read_bytes().split(b"\0")[:-1] != [
        argument.encode() for argument in arguments
    ]:
        time.sleep(0.01)
    return process


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    """A process whose command line names the backend module, host and port, as the project starts it."""
    process = spawn(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
            BACKEND_MODULE,
            "--host",
            "127.0.0.1",
            "--port",
            "8799",
        ]
    )
    yield process
    process.kill()
    process.wait()


def test_a_live_backend_named_by_its_pid_file_is_found_with_its_url_and_stopped(
    tmp_path: Path, sleeper: subprocess.Popen
) -> None:
    (tmp_path / PID_FILE_NAME).write_text(f"{sleeper.pid}\n")

    found = background_backend(tmp_path)

    assert found is not None
    assert (found.pid, found.url) == (sleeper.pid, "http://127.0.0.1:8799")
    assert stop_backend(found, timeout=10)
    assert sleeper.wait(timeout=10) != 0  # ended by the signal


def test_a_pid_file_naming_another_program_or_nothing_is_not_a_backend(tmp_path: Path) -> None:
    assert background_backend(tmp_path) is None  # no pid file
    (tmp_path / PID_FILE_NAME).write_text("not a pid")
    assert background_backend(tmp_path) is None
    other = spawn(["sleep", "60"])  # a reused pid: never taken for the backend, never signalled
    try:
        (tmp_path / PID_FILE_NAME).write_text(str(other.pid))
        assert background_backend(tmp_path) is None
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
