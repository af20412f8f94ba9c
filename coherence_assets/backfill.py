"""``coherence-assets backfill``: the asset backfill the UI launches, from the command line.

The backfill goes through Dagster's own GraphQL mutation (``launchPartitionBackfill``), executed
in this process against the instance in ``DAGSTER_HOME`` and the code location loaded here: the
same code path the webserver runs when a user clicks *Launch backfill*. The backfill then shows
in the UI and the daemon (``dagster dev`` or ``dagster-daemon run``) submits its runs.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.defs.asset_keys import BURST_WINDOW_ASSETS, COHERENCE_JOB, INSAR_PAIRS
from coherence_assets.defs.partitions import BURST_DIMENSION, burst_window_key
from coherence_assets.preflight import SetupError
from coherence_assets.settings import DEFAULT_DAGSTER_HOME, dagster_home
from coherence_assets.windows import parse_window_key, window_key_of

DEFAULT_ASSETS = tuple(key.to_user_string() for key in (INSAR_PAIRS, COHERENCE_JOB))
ASSET_CHOICES = tuple(key.to_user_string() for key in BURST_WINDOW_ASSETS)
BURST_KEY_FORMAT = "t{orbit:03d}_{burst_id:06d}_{subswath}, e.g. t015_030343_iw2"
WINDOWS_FORMAT = (
    "FIRST..LAST of quarter starts (YYYY-01-01, -04-01, -07-01, -10-01), e.g. 2024-01-01..2024-10-01"
)
CODE_LOCATION = "coherence_assets"  # as in workspace.yaml
DEFINITIONS_MODULE = "coherence_assets.definitions"

LAUNCH_BACKFILL_MUTATION = """
mutation($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""


def backfill_variables(assets: list[str], partition_keys: list[str]) -> dict[str, Any]:
    """The variables of :data:`LAUNCH_BACKFILL_MUTATION` for ``assets`` over ``partition_keys``."""
    return {
        "backfillParams": {
            "assetSelection": [{"path": [name]} for name in assets],
            "partitionNames": partition_keys,
        }
    }


def parse_windows(spec: str, today: dt.date | None = None) -> list[str]:
    """``FIRST..LAST`` (or one window) as every quarter from FIRST to LAST inclusive."""
    first_key, _, last_key = spec.partition("..")
    try:
        first = parse_window_key(first_key.strip())
        last = parse_window_key((last_key or first_key).strip())
    except ValueError as error:
        raise SetupError(f"--windows {spec!r}: {error}; expected {WINDOWS_FORMAT}") from None
    if last < first:
        raise SetupError(f"--windows {spec!r}: {last} is before {first}; expected {WINDOWS_FORMAT}")
    current = window_key_of(today or dt.datetime.now(dt.UTC).date())
    if last.isoformat() > current:
        raise SetupError(f"--windows {spec!r}: {last} has not begun yet; the current window is {current}")
    windows, start = [], first
    while start <= last:
        windows.append(start.isoformat())
        month = start.month + 3
        start = dt.date(start.year + (month > 12), (month - 1) % 12 + 1, 1)
    return windows


def parse_bursts(spec: str, known: list[str]) -> list[str]:
    """``all`` or comma-separated burst keys, each of which must be a partition already."""
    if not known:
        raise SetupError(
            f"the Dagster instance in DAGSTER_HOME={os.environ.get('DAGSTER_HOME')} has no burst partitions: "
            "materialise burst_catalogue first (coherence-assets demo, or in the UI), with the same DAGSTER_HOME"
        )
    if spec.strip() == "all":
        return sorted(known)
    requested = [key.strip() for key in spec.split(",") if key.strip()]
    malformed = []
    for key in requested:
        try:
            BurstKey.parse(key)
        except ValueError:
            malformed.append(key)
    if malformed:
        raise SetupError(f"--bursts: {', '.join(malformed)}: not a burst key; the form is {BURST_KEY_FORMAT}")
    unknown = sorted(set(requested) - set(known))
    if unknown:
        shown = ", ".join(sorted(known)[:5]) + (" ..." if len(known) > 5 else "")
        raise SetupError(
            f"--bursts: {', '.join(unknown)} not in the burst catalogue (partitions: {shown}); add them to "
            "COHERENCE_BURSTS_FILE and materialise burst_catalogue, or use --bursts all"
        )
    return requested


def parse_assets(spec: str) -> list[str]:
    assets = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in assets if name not in ASSET_CHOICES]
    if unknown or not assets:
        raise SetupError(
            f"--assets {spec!r}: expected a comma-separated subset of {', '.join(ASSET_CHOICES)}"
        )
    return assets


def instance_from_environment() -> dg.DagsterInstance:
    """The instance in ``DAGSTER_HOME``; the demo's ``./.dagster_home`` when it is not set.

    A Dagster instance is its folder: ``dagster.yaml`` is optional (without it, the defaults).
    """
    home = dagster_home()
    if not home.is_dir():
        raise SetupError(
            f"no Dagster instance in DAGSTER_HOME={home}: the folder does not exist; run from the folder of "
            f"the demo and coherence-assets ui (their instance is {DEFAULT_DAGSTER_HOME}) or set DAGSTER_HOME to yours"
        )
    return dg.DagsterInstance.get()


DAGSTER_WEBSERVER_DEFAULT_PORT = "3000"  # dagster-webserver's and dagster dev's default


def _webserver_arguments(home: Path) -> Iterator[list[str]]:
    """The command lines of this machine's Dagster webservers that serve the instance in ``home``.

    Read from ``/proc`` (Linux), as no Dagster API names a running webserver; elsewhere, none.
    """
    for process in Path("/proc").glob("[0-9]*"):
        try:
            environment = dict(
                entry.decode(errors="replace").partition("=")[::2]
                for entry in (process / "environ").read_bytes().split(b"\0")
                if entry
            )
            arguments = [part.decode() for part in (process / "cmdline").read_bytes().split(b"\0") if part]
            working_directory = (process / "cwd").resolve()
        except OSError:  # gone meanwhile, or another user's
            continue
        their_home = environment.get("DAGSTER_HOME")
        serves_home = their_home is not None and (working_directory / their_home).resolve() == home.resolve()
        is_webserver = "dagster_webserver" in arguments or any(
            Path(part).name == "dagster-webserver" for part in arguments[:2]
        )
        if serves_home and is_webserver:
            yield arguments


def ui_address(home: Path) -> str | None:
    """``http://host:port`` of a running webserver of the instance in ``home``, if one runs here."""
    for arguments in _webserver_arguments(home):
        options = dict(itertools.pairwise(arguments))
        port = options.get("--port", options.get("-p", DAGSTER_WEBSERVER_DEFAULT_PORT))
        host = options.get("--host", options.get("-h", "127.0.0.1"))
        return f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}"
    return None


def launch_backfill(instance: dg.DagsterInstance, partition_keys: list[str], assets: list[str]) -> str:
    """Launch an asset backfill through the webserver's GraphQL mutation, in process; its id."""
    # Not public API, but exactly what the webserver and `dagster-graphql` build for the mutation.
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
    from dagster_graphql.cli import execute_query

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=DEFINITIONS_MODULE, working_directory=os.getcwd()),
        location_name=CODE_LOCATION,
    )
    with WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget(origin)) as context:
        answer = execute_query(context, LAUNCH_BACKFILL_MUTATION, backfill_variables(assets, partition_keys))
    if answer.get("errors"):
        raise SetupError(f"Dagster refused the backfill: {answer['errors'][0].get('message')}")
    result = answer["data"]["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise SetupError(f"Dagster refused the backfill ({result['__typename']}): {result.get('message')}")
    return result["backfillId"]


def add_catalogued_bursts(instance: dg.DagsterInstance) -> None:
    """The burst partitions of the latest ``burst_catalogue``, added now by a tick of the sensor that adds
    them, so a backfill launched right after the catalogue materialised need not wait for the daemon."""
    from coherence_assets.definitions import defs  # the code location's own, as the launch below loads it
    from coherence_assets.defs.burst_partitions_sensor import tick_burst_partitions_sensor

    tick_burst_partitions_sensor(defs, instance)


def run_backfill(bursts_spec: str, windows_spec: str, assets_spec: str) -> int:
    windows = parse_windows(windows_spec)
    assets = parse_assets(assets_spec)
    instance = instance_from_environment()
    add_catalogued_bursts(instance)
    bursts = parse_bursts(bursts_spec, instance.get_dynamic_partitions(BURST_DIMENSION))
    partition_keys = [str(burst_window_key(burst, window)) for burst in bursts for window in windows]
    backfill_id = launch_backfill(instance, partition_keys, assets)
    home = dagster_home()
    address = ui_address(home)
    where = (
        f"{address}/runs/b/{backfill_id}"
        if address
        else f"/runs/b/{backfill_id} of the UI of this DAGSTER_HOME (none runs here now: coherence-assets ui [-p PORT])"
    )
    print(
        f"backfill {backfill_id} launched in DAGSTER_HOME={home}: {', '.join(assets)} for "
        f"{len(bursts)} burst(s) x {len(windows)} window(s) ({windows[0]} .. {windows[-1]}), "
        f"{len(partition_keys)} partitions.\nThe Dagster daemon runs it (coherence-assets ui, or dagster-daemon run): "
        f"it submits the jobs; the sensor starts them, and downloads and cubes follow as jobs finish.\n"
        f"Follow it at {where}"
    )
    return 0
