"""``coherence-assets``: the demo of the whole chain, backfills, the UI, and the embedded backend."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

from coherence_assets.preflight import SetupError
from coherence_assets.settings import Settings, SettingsError, parse_temporal_baselines, prepare_dagster_home
from coherence_assets.windows import parse_window_key, window_key_of

DEMO_WINDOW = "2023-07-01"


def window_argument(key: str) -> str:
    """``--window``: the first day of a quarter that has begun (checked before anything starts)."""
    try:
        start = parse_window_key(key)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    current = window_key_of(dt.datetime.now(dt.UTC).date())
    if start.isoformat() > current:
        raise argparse.ArgumentTypeError(f"window {key!r} has not begun yet; the current window is {current}")
    return key


def baselines_argument(text: str) -> str:
    """``--baselines``: comma-separated days, checked as ``COHERENCE_TEMPORAL_BASELINES`` is."""
    try:
        parse_temporal_baselines(text)
    except SettingsError as error:
        raise argparse.ArgumentTypeError(str(error).replace("COHERENCE_TEMPORAL_BASELINES=", "")) from None
    return text


def control_backend(arguments: argparse.Namespace) -> int:
    """``backend status`` and ``backend stop``: the background backend of ``--data-dir``; else serve."""
    if arguments.action == "serve":
        from embedded_openeo.command_line import serve

        serve(arguments, default_port=Settings.from_env().local_backend_port)
        return 0
    from embedded_openeo.control import background_backend, stop_backend

    data_dir = Path(arguments.data_dir).resolve()
    backend = background_backend(data_dir)
    if backend is None:
        print(f"no embedded backend is running from {data_dir} (no live process in its backend.pid)")
        return 0 if arguments.action == "stop" else 3
    if arguments.action == "status":
        print(
            f"embedded backend running at {backend.url or 'an unknown address'}: pid {backend.pid}, "
            f"state in {data_dir}, log {backend.log_path}"
        )
        return 0
    if not stop_backend(backend):
        raise SetupError(f"the embedded backend (pid {backend.pid}) did not stop; see {backend.log_path}")
    print(f"embedded backend stopped (pid {backend.pid}); its jobs stay in {data_dir}")
    return 0


def run_backfill(arguments: argparse.Namespace) -> int:
    from coherence_assets.backfill import run_backfill as launch

    return launch(arguments.bursts, arguments.windows, arguments.assets)


def add_backfill_command(commands: argparse._SubParsersAction) -> None:
    from coherence_assets.backfill import BURST_KEY_FORMAT, DEFAULT_ASSETS, WINDOWS_FORMAT

    backfill = commands.add_parser(
        "backfill",
        help="launch an asset backfill of burst x window partitions in DAGSTER_HOME (the daemon runs it)",
    )
    backfill.add_argument("--bursts", required=True, help=f"'all' or comma-separated keys {BURST_KEY_FORMAT}")
    backfill.add_argument("--windows", required=True, help=WINDOWS_FORMAT)
    backfill.add_argument(
        "--assets", default=",".join(DEFAULT_ASSETS), help="comma-separated assets, default %(default)s"
    )
    backfill.set_defaults(handler=run_backfill)


DEFINITIONS_MODULE = "coherence_assets.definitions"
# `dagster dev`'s own ways to name the code; without one it reads ./workspace.yaml (the clone's)
DAGSTER_DEV_TARGET_OPTIONS = ("-w", "--workspace", "-m", "--module-name", "-f", "--python-file")


def run_ui(arguments: argparse.Namespace) -> NoReturn:
    """``dagster dev`` on the instance the demo and ``backfill`` use, so what they ran shows there.

    ``dagster dev`` alone runs on a temporary instance when ``DAGSTER_HOME`` is unset; this sets it
    as they do (``./.dagster_home``) and creates it as the demo does, then replaces this process
    with ``dagster dev`` (Ctrl-C stops it as usual). Every other option is ``dagster dev``'s. Outside
    the clone, with no ``workspace.yaml`` here, the installed package's definitions are loaded.
    """
    dagster_dev_options = arguments.dagster_dev_options
    home = prepare_dagster_home()
    names_its_code = any(option.split("=")[0] in DAGSTER_DEV_TARGET_OPTIONS for option in dagster_dev_options)
    target = [] if names_its_code or Path("workspace.yaml").exists() else ["-m", DEFINITIONS_MODULE]
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent)) or shutil.which("dagster")
    if dagster is None:
        raise SetupError("the dagster command is not installed beside this Python: pip install -e .")
    print(f"Dagster instance: {home}", flush=True)
    os.execv(dagster, [dagster, "dev", *target, *dagster_dev_options])


def find_bursts_for_aoi(arguments: argparse.Namespace) -> int:
    from coherence_assets.aoi.aoi_bursts import (
        bursts_for_aois,
        last_full_quarter,
        write_burst_file,
    )
    from coherence_assets.aoi.areas import load_areas_of_interest
    from coherence_assets.catalogue.odata_client import CatalogueError

    window = arguments.window or last_full_quarter(dt.datetime.now(dt.UTC).date())
    try:
        aois = load_areas_of_interest(arguments.aoi_file)
        from coherence_assets.definitions import (
            defs,  # the catalogue as the assets reach it (embedded or CDSE)
        )

        found = bursts_for_aois(aois, defs.resources["catalogue"].client(), window, arguments.orbit)
    # AoiFileError and NoBurstError are ValueErrors, as is the catalogue resource's missing-URL refusal
    except (CatalogueError, ValueError) as error:
        raise SetupError(str(error)) from None
    write_burst_file(found.bursts, arguments.output)
    per_orbit = found.bursts["orbit_direction"].str.lower().value_counts().to_dict()
    print(
        f"{len(found.bursts)} burst(s) ({', '.join(f'{count} {name}' for name, count in sorted(per_orbit.items()))}) "
        f"image {len(aois) - len(found.aois_without_bursts)} of {len(aois)} AOI(s) in window {window}: "
        f"written to {arguments.output}; use it with COHERENCE_BURSTS_FILE={arguments.output}"
    )
    if found.aois_without_bursts:
        print(f"no burst images AOI(s) {', '.join(found.aois_without_bursts)} in {window}", file=sys.stderr)
    return 0


def add_bursts_for_aoi_command(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser(
        "bursts-for-aoi",
        help="write the burst file of every IW burst that images the AOIs (burst catalogue, OData.CSC.Intersects)",
    )
    command.add_argument(
        "aoi_file", help="AOIs: GeoJSON, GeoPackage or GeoParquet, any CRS, with an aoi_id column"
    )
    command.add_argument("--output", required=True, help="burst file to write (.geojson, .gpkg or .parquet)")
    command.add_argument(
        "--window",
        type=window_argument,
        help="quarter whose acquisitions are searched (YYYY-MM-DD, its first day); default the last full quarter",
    )
    command.add_argument("--orbit", choices=("ascending", "descending", "both"), default="both")
    command.set_defaults(handler=find_bursts_for_aoi)


def login_with_the_project_resource() -> object:
    from coherence_assets.definitions import defs  # loads every asset: only once the cheap checks passed

    return defs.resources["openeo_backend"].connect()


def run_demo(arguments: argparse.Namespace) -> int:
    from coherence_assets.preflight import check_before_first_run

    if arguments.baselines:
        # the definitions read their settings from the environment: the option is that variable, for this run
        os.environ["COHERENCE_TEMPORAL_BASELINES"] = arguments.baselines
    settings = Settings.from_env()
    print(f"Outputs: {settings.data_dir}\nBackend: {settings.backend_url}", flush=True)
    # before Dagster and the assets are even imported: a wrong URL or file is told in seconds
    check_before_first_run(settings, login_with_the_project_resource)
    from coherence_assets.demo import run_demo_chain

    return run_demo_chain(window=arguments.window, timeout_seconds=arguments.timeout)


def parser() -> argparse.ArgumentParser:
    # the options of `python -m embedded_openeo`, defined once in the backend's package (light imports)
    from embedded_openeo.command_line import add_serve_arguments

    root = argparse.ArgumentParser(prog="coherence-assets", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the whole chain for the configured bursts and one window")
    demo.add_argument(
        "--window",
        type=window_argument,
        default=DEMO_WINDOW,
        help="window key (first day of a quarter), default %(default)s",
    )
    demo.add_argument(
        "--baselines",
        type=baselines_argument,
        help="temporal baselines in days, comma-separated (e.g. 12,24,36,48 for the seasonal decay); "
        "default COHERENCE_TEMPORAL_BASELINES or 12",
    )
    demo.add_argument(
        "--timeout", type=float, default=1800, help="give up waiting for jobs after this many seconds"
    )
    demo.set_defaults(handler=run_demo)
    backend = commands.add_parser("backend", help="serve the embedded openEO backend and burst catalogue")
    add_serve_arguments(backend)
    backend.add_argument(
        "action",
        nargs="?",
        choices=("serve", "status", "stop"),
        default="serve",
        help="serve in the foreground (default), or show/stop the one running in the background from --data-dir",
    )
    backend.set_defaults(handler=control_backend)
    add_backfill_command(commands)
    add_bursts_for_aoi_command(commands)
    # no -h of its own: -h is dagster dev's --host, and --help shows dagster dev's options
    ui = commands.add_parser(
        "ui",
        add_help=False,
        help="dagster dev (UI, daemon, sensors) on the instance of the demo and backfill "
        "(DAGSTER_HOME, default ./.dagster_home); other options go to dagster dev, e.g. -p 3001",
    )
    ui.set_defaults(handler=run_ui)
    return root


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for package in ("coherence_assets", "embedded_openeo"):  # `backend` logs its state changes
        logging.getLogger(package).setLevel(logging.INFO)
    root = parser()
    arguments, extra = root.parse_known_args(argv)
    if arguments.command == "ui":
        arguments.dagster_dev_options = extra
    elif extra:
        root.parse_args(argv)  # refuses the unknown options as argparse always does
    try:
        return arguments.handler(arguments)
    except (SetupError, SettingsError) as error:
        print(f"coherence-assets {arguments.command}: {error}", file=sys.stderr, flush=True)
        return 1
    except Exception as error:
        from coherence_assets.storage import unreachable_store_line

        if (line := unreachable_store_line(error)) is None:
            raise
        print(f"coherence-assets {arguments.command}: {line}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"coherence-assets {arguments.command}: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
