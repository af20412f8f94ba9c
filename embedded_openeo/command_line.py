"""The options of serving the embedded backend, defined once for ``python -m embedded_openeo``
(how ``ensure_local_backend`` starts it, detached) and ``coherence-assets backend`` (a user's start).

Light on imports: ``coherence-assets`` builds its parser from this module for every command.
"""

from __future__ import annotations

import argparse

from coherence_assets.cdse_facts import (
    CDSE_MAX_RUNNING_JOBS,
    CDSE_MIN_SECONDS_BETWEEN_STARTS,
    LOCAL_BACKEND_DATA_DIR,
    LOCAL_BACKEND_HOST,
    LOCAL_BACKEND_PORT,
)
from embedded_openeo.config import DEFAULT_PIXEL_SIZE


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """``--host``, ``--port``, ``--data-dir``, CDSE's limits and ``--allow-faults``."""
    parser.add_argument(
        "--host", default=LOCAL_BACKEND_HOST, help="interface to listen on (default %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        help=f"port to listen on (default {LOCAL_BACKEND_PORT}, under `coherence-assets backend` "
        "COHERENCE_LOCAL_BACKEND_PORT if set; 0 picks a free one)",
    )
    parser.add_argument(
        "--data-dir",
        default=LOCAL_BACKEND_DATA_DIR,
        help="where jobs and results are kept (default %(default)s)",
    )
    parser.add_argument(
        "--max-running-jobs",
        type=int,
        default=CDSE_MAX_RUNNING_JOBS,
        help=f"jobs run at once, like CDSE ({CDSE_MAX_RUNNING_JOBS})",
    )
    parser.add_argument(
        "--min-seconds-between-starts",
        type=float,
        default=CDSE_MIN_SECONDS_BETWEEN_STARTS,
        help=f"429 for faster starts, like CDSE ({CDSE_MIN_SECONDS_BETWEEN_STARTS:g} s); 0 = off",
    )
    parser.add_argument(
        "--pixel-size",
        type=float,
        default=DEFAULT_PIXEL_SIZE,
        help="pixel spacing of the coherence rasters in metres (default %(default)g; CDSE's is 20)",
    )
    parser.add_argument(
        "--allow-faults",
        action="store_true",
        help="open POST /_faults, which lets anyone reaching the port inject errors (for tests only)",
    )


def serve(arguments: argparse.Namespace, default_port: int = LOCAL_BACKEND_PORT) -> None:
    """Serve in the foreground with the options of :func:`add_serve_arguments` until interrupted;
    ``default_port`` where no ``--port`` is given (the product's CLI passes its configured one)."""
    from pathlib import Path

    from embedded_openeo.config import BackendConfig
    from embedded_openeo.server import serve_forever

    serve_forever(
        BackendConfig(
            data_dir=Path(arguments.data_dir),
            host=arguments.host,
            port=default_port if arguments.port is None else arguments.port,
            max_running_jobs=arguments.max_running_jobs,
            min_seconds_between_starts=arguments.min_seconds_between_starts,
            pixel_size=arguments.pixel_size,
            allow_faults=arguments.allow_faults,
        )
    )
