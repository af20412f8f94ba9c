"""Running the embedded backend: in a thread for tests, in the foreground for the CLI, or detached on demand.

``ensure_local_backend`` is what the project calls when ``OPENEO_BACKEND_URL=local``: it reuses a
backend that already answers and otherwise starts one as its own process (surviving the caller,
like a real service), so Dagster runs, sensors and the demo all talk to the same backend.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

import requests
from werkzeug.serving import make_server

from coherence_assets.embedded_backend.app import STATE_EXTENSION, create_app
from coherence_assets.embedded_backend.config import BackendConfig

logger = logging.getLogger(__name__)

LOG_FILE_NAME = "backend.log"
PID_FILE_NAME = "backend.pid"
PROBE_PATH = "/.well-known/openeo"


@contextmanager
def running_backend(config: BackendConfig) -> Iterator[str]:
    """Serve the backend in a daemon thread while the block runs; yields its base URL.

    ``config.port=0`` picks a free port. On exit the server stops and the backend state closes.
    """
    app = create_app(config)
    server = make_server(config.host, config.port, app, threaded=True)
    url = f"http://{config.host}:{server.server_port}"
    thread = threading.Thread(
        target=server.serve_forever, name=f"embedded-backend-{server.server_port}", daemon=True
    )
    thread.start()
    logger.info("embedded backend started at %s (state in %s)", url, config.data_dir)
    try:
        yield url
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        app.extensions[STATE_EXTENSION].close()
        logger.info("embedded backend at %s stopped", url)


def serve_forever(config: BackendConfig) -> None:
    """Serve in the foreground until interrupted (Ctrl-C or SIGTERM); must run in the main thread.

    Writes the process id to ``<data_dir>/backend.pid`` while serving, so scripts can stop it.
    """
    app = create_app(config)
    server = make_server(config.host, config.port, app, threaded=True)
    url = f"http://{config.host}:{server.server_port}"
    pid_file = config.data_dir / PID_FILE_NAME
    pid_file.write_text(f"{os.getpid()}\n")
    signal.signal(signal.SIGTERM, _exit_on_signal)
    logger.info(
        "embedded backend listening on %s (openEO API at /, OData catalogue at /odata/v1, state in %s)",
        url,
        config.data_dir,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.extensions[STATE_EXTENSION].close()
        pid_file.unlink(missing_ok=True)
        logger.info("embedded backend at %s stopped", url)


def ensure_local_backend(host: str, port: int, data_dir: str | Path, timeout: float = 30.0) -> str:
    """The URL of a backend answering at ``host:port``, starting one detached if none does.

    The new process logs to ``<data_dir>/backend.log``. When two callers race, one's process wins
    the port; the other caller waits until the winner answers and stops its own process. Raises
    ``RuntimeError`` naming the log file if nothing answers within ``timeout`` seconds.
    """
    url = f"http://{host}:{port}"
    if _answers(url):
        return url
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / LOG_FILE_NAME
    command = [
        sys.executable,
        "-m",
        "coherence_assets.embedded_backend",
        "--host",
        host,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    logger.info("starting embedded backend at %s (pid %d, log %s)", url, process.pid, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _answers(url):
            if process.poll() is None and not _serves_from(process, data_dir):
                # Our process lost the port to a racing caller; stop it before it takes the port over
                # when the winner stops.
                process.terminate()
                process.wait()
            logger.info("embedded backend at %s answers", url)
            return url
        # A process that exited while nobody holds the port failed for good; one that lost the
        # port to a racing caller leaves the winner starting up, which is worth waiting for.
        if process.poll() is not None and not _port_taken(host, port):
            break
        time.sleep(0.2)
    raise RuntimeError(
        f"the embedded backend did not answer at {url} within {timeout:.0f} s; see its log {log_path}"
    )


def _answers(url: str) -> bool:
    with suppress(requests.RequestException):
        return requests.get(url + PROBE_PATH, timeout=2).ok
    return False


def _serves_from(process: subprocess.Popen, data_dir: Path) -> bool:
    """Whether ``process`` is the backend serving: it wrote its pid file before it began to answer."""
    pid_file = data_dir / PID_FILE_NAME
    return pid_file.exists() and pid_file.read_text().strip() == str(process.pid)


def _port_taken(host: str, port: int) -> bool:
    with suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"embedded backend stopped by signal {signum}")
