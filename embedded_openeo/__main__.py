"""``python -m embedded_openeo``: the embedded backend in the foreground.

``ensure_local_backend`` starts the backend this way, detached; unset options keep the
defaults of :class:`BackendConfig`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from coherence_assets.settings import LOCAL_BACKEND_DATA_DIR
from embedded_openeo.config import BackendConfig
from embedded_openeo.server import serve_forever


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m embedded_openeo",
        description="Embedded openEO backend and OData Bursts catalogue for coherence-assets.",
    )
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8712; 0 picks a free one)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(LOCAL_BACKEND_DATA_DIR),
        help="folder of the backend's state on disk",
    )
    parser.add_argument("--max-running-jobs", type=int, help="batch jobs running at once (default 2)")
    parser.add_argument(
        "--min-seconds-between-starts",
        type=float,
        help="429 for job starts closer than this (default 5; 0 disables)",
    )
    parser.add_argument(
        "--allow-faults",
        action="store_true",
        default=None,
        help="open POST /_faults for fault injection (tests only)",
    )
    arguments = vars(parser.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data_dir = arguments.pop("data_dir")
    serve_forever(
        BackendConfig(
            data_dir=data_dir, **{name: value for name, value in arguments.items() if value is not None}
        )
    )


if __name__ == "__main__":
    main()
