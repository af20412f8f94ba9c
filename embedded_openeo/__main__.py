"""``python -m embedded_openeo``: the embedded backend in the foreground.

``ensure_local_backend`` starts the backend this way, detached; ``coherence-assets backend``
takes the same options (see :mod:`embedded_openeo.command_line`).
"""

from __future__ import annotations

import argparse
import logging

from embedded_openeo.command_line import add_serve_arguments, serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m embedded_openeo",
        description="Embedded openEO backend and OData Bursts catalogue for coherence-assets.",
    )
    add_serve_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(parser.parse_args(argv))


if __name__ == "__main__":
    main()
