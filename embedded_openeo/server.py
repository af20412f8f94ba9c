"""Running the embedded backend: in a thread for tests, in the foreground for the CLI, or detached on demand.

``ensure_local_backend`` is what the project calls when ``OPENEO_BACKEND_URL=local``: it reuses the
backend that answers if it serves the project's data folder (it says so at ``GET /_state``),
refuses one that serves another folder, and otherwise starts one as its own process (surviving
the caller, like a real service), so Dagster runs, sensors and the demo all talk to the same backend.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import requests
from werkzeug.serving import make_server

from embedded_openeo.app import STATE_EXTENSION, STATE_PATH, create_app
from embedded_openeo.config import BackendConfig

logger = logging.getLogger(__name__)

LOG_FILE_NAME = "backend.log"
PID_FILE_NAME = "backend.pid"
# What a detached backend runs (`python -m`), and so what its command line shows (see control.py)
BACKEND_MODULE = "embedded_openeo"


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


class EmbeddedBackendError(RuntimeError):
    """No usable embedded backend for the caller's folder; the message is one line with the remedy."""


class ForeignBackendError(EmbeddedBackendError):
    """The port holds something this project must not use: another folder's backend, or no embedded backend."""


def ensure_local_backend(host: str, port: int, data_dir: str | Path, timeout: float = 30.0) -> str:
    """The URL of the backend serving ``data_dir`` at ``host:port``, starting one detached if none answers.

    A backend that answers but serves another folder's state is never used: its jobs are not this
    project's, and it can stop at any moment. That, or a port held by something that is not an
    embedded backend, raises :class:`ForeignBackendError` in one line naming both folders.
    The new process logs to ``<data_dir>/backend.log``. When two callers race, one's process wins
    the port; the other caller waits until the winner answers and stops its own process. Raises
    :class:`EmbeddedBackendError` naming the log file if nothing answers within ``timeout`` seconds.
    """
    url = f"http://{host}:{port}"
    data_dir = Path(data_dir).resolve()
    state = _served_state(url, data_dir)
    if state is not None:
        return _require_folder(url, state, data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / LOG_FILE_NAME
    command = [
        sys.executable,
        "-m",
        BACKEND_MODULE,
        "--host",
        host,
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # `-m` finds the package beside this one first: the child runs this copy of the backend,
            # even where the environment was installed before the package existed
            cwd=Path(__file__).resolve().parents[1],
        )
    logger.info("starting embedded backend at %s (pid %d, log %s)", url, process.pid, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _served_state(url, data_dir)
        if state is not None:
            if process.poll() is None and state.get("pid") != process.pid:
                # Our process lost the port to a racing caller; stop it before it takes the port over
                # when the winner stops.
                process.terminate()
                process.wait()
            _require_folder(url, state, data_dir)
            logger.info("embedded backend at %s answers", url)
            return url
        # A process that exited failed for good, unless it lost the port to a racing caller of the
        # same folder: that winner wrote its pid file when it took the port and is worth waiting for.
        if process.poll() is not None and not _another_backend_took(data_dir, process.pid):
            break
        time.sleep(0.2)
    if process.poll() is None:
        process.terminate()  # else it could take the port later and serve without anyone having asked
        process.wait()
    raise EmbeddedBackendError(
        f"the embedded backend did not answer at {url} within {timeout:.0f} s; see its log {log_path}"
    )


def _served_state(url: str, data_dir: Path) -> dict | None:
    """What the backend at ``url`` says it serves (``GET /_state``); ``None`` when nothing answers."""
    try:
        response = requests.get(url + STATE_PATH, timeout=2)
    except requests.RequestException:
        return None
    try:
        state = response.json() if response.ok else None
    except ValueError:
        state = None
    if not isinstance(state, dict) or "data_dir" not in state:
        raise ForeignBackendError(
            f"something answers at {url} (HTTP {response.status_code} to {STATE_PATH}) that is not an embedded "
            f"backend of this version, so it cannot be the one serving this project's state in {data_dir}: "
            "stop it, or set COHERENCE_LOCAL_BACKEND_PORT to a free port"
        )
    return state


def _require_folder(url: str, state: dict, data_dir: Path) -> str:
    """``url`` when the backend there serves ``data_dir``; else :class:`ForeignBackendError` naming both folders."""
    if Path(state["data_dir"]) != data_dir:
        raise ForeignBackendError(
            f"the embedded backend at {url} serves the state in {state['data_dir']}, not this project's "
            f"{data_dir}: stop it (pid {state.get('pid')}) or set COHERENCE_LOCAL_BACKEND_PORT to a free port"
        )
    return url


def _another_backend_took(data_dir: Path, our_pid: int) -> bool:
    """Whether another process wrote the pid file of ``data_dir``: it bound the port and starts serving."""
    try:
        return int((data_dir / PID_FILE_NAME).read_text().strip()) != our_pid
    except (OSError, ValueError):
        return False


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"embedded backend stopped by signal {signum}")
