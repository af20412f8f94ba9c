"""Status and stop of an embedded backend running in the background, found by its pid file.

The demo and the resources start the backend detached (it outlives them, so the next run finds
its jobs); these let a user see it and stop it without hunting for the process.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from embedded_openeo.server import BACKEND_MODULE, LOG_FILE_NAME, PID_FILE_NAME

STOP_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class BackendProcess:
    pid: int
    data_dir: Path
    url: str | None = None  # from its command line's --host and --port, as the project starts it

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME


def background_backend(data_dir: Path) -> BackendProcess | None:
    """The backend serving from ``data_dir``, if its pid file names a live backend process."""
    try:
        pid = int((data_dir / PID_FILE_NAME).read_text().strip())
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except (OSError, ValueError):
        return None
    command_line = " ".join(arguments)
    # a stale pid file may name a pid reused by another program: never signal that one
    is_backend = BACKEND_MODULE in command_line or "coherence-assets backend" in command_line
    if not is_backend:
        return None
    options = dict(itertools.pairwise(arguments))
    url = (
        f"http://{options['--host']}:{options['--port']}" if {"--host", "--port"} <= options.keys() else None
    )
    return BackendProcess(pid, data_dir, url)


def stop_backend(backend: BackendProcess, timeout: float = STOP_TIMEOUT_SECONDS) -> bool:
    """SIGTERM the backend (it finishes the request at hand and removes its pid file); whether it ended."""
    os.kill(backend.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if background_backend(backend.data_dir) is None:
            return True
        time.sleep(0.2)
    return False
