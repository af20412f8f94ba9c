"""Dagster as subprocesses for end-to-end tests: start it, talk to its GraphQL API, stop it.

Either ``dagster dev`` (one command for webserver and daemon; also as ``coherence-assets ui`` starts
it) or the production pair, a ``dagster-webserver`` and a ``dagster-daemon`` started separately on
the same instance. The
webserver, the daemon, the code servers and every run worker inherit ``DAGSTER_HOME``, so a
scan of ``/proc`` for that value finds whatever the test started, wherever it was re-parented;
that is how a test proves nothing is left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests

from coherence_assets.backfill import LAUNCH_BACKFILL_MUTATION, backfill_variables

T = TypeVar("T")

TERMINAL_RUN_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
UNFINISHED_BACKFILL_STATUSES = frozenset({"REQUESTED", "CANCELING", "FAILING"})
LOG_FILE_NAME = "dagster-dev.log"
DEPLOYMENT_LOG_FILE_NAME = "dagster-webserver-and-daemon.log"
# dagster dev gives its webserver and daemon 60 s each to stop before it kills them.
STOP_TIMEOUT_SECONDS = 150.0
LOG_TAIL_LINES = 150
# Code servers end on their own once the process that started them stops sending heartbeats.
LEFTOVER_EXIT_SECONDS = 90

WORKSPACE_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name } }
          ... on PythonError { message stack }
        }
      }
    }
    ... on PythonError { message stack }
  }
}
"""

LAUNCH_RUN_MUTATION = """
mutation($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}
"""

RUN_STATUS_QUERY = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}
"""

RUNS_QUERY = """
query {
  runsOrError(limit: 500) {
    __typename
    ... on Runs { results { runId jobName status tags { key value } } }
    ... on Error { message }
  }
}
"""

INSTANCE_QUERY = """
query {
  instance {
    daemonHealth { allDaemonStatuses { daemonType required healthy } }
    runQueueConfig { maxConcurrentRuns tagConcurrencyLimitsYaml }
  }
}
"""

BACKFILL_STATUS_QUERY = """
query($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { status }
    ... on Error { message }
  }
}
"""

# the burst partitions, as the keys of an asset partitioned by burst alone
BURST_PARTITIONS_QUERY = """
{
  assetNodeOrError(assetKey: {path: ["coherence_cube"]}) {
    __typename
    ... on AssetNode { partitionKeys }
    ... on Error { message }
  }
}
"""


class GraphQLError(RuntimeError):
    """The webserver answered with errors, or with an error type instead of the expected result."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 1.0,
    diagnostics: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy; on timeout, raise with ``diagnostics()``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            details = f"\n{diagnostics()}" if diagnostics else ""
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s{details}")
        time.sleep(interval)


def processes_with_dagster_home(home: Path) -> list[int]:
    """Ids of the processes whose environment has ``DAGSTER_HOME=home`` (Linux ``/proc``)."""
    marker = f"DAGSTER_HOME={home}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
    return pids


def _is_zombie(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True  # gone meanwhile


@dataclass
class DagsterDev:
    """A running Dagster webserver and daemon: URL, processes and log, and the GraphQL calls tests need."""

    url: str
    processes: list[subprocess.Popen]
    home: Path
    log_path: Path
    repository: tuple[str, str] = ("", "")  # (code location, repository), set once loaded

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise GraphQLError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    @staticmethod
    def _expect(result: dict[str, Any], typename: str) -> dict[str, Any]:
        if result["__typename"] != typename:
            raise GraphQLError(f"expected {typename}, got {result}")
        return result

    def loaded_repository(self) -> tuple[str, str] | None:
        """(code location, repository) once the workspace has loaded; None while loading."""
        workspace = self._expect(self.graphql(WORKSPACE_QUERY)["workspaceOrError"], "Workspace")
        entries = workspace["locationEntries"]
        if not entries or any(entry["loadStatus"] != "LOADED" for entry in entries):
            return None
        location = self._expect(entries[0]["locationOrLoadError"], "RepositoryLocation")
        return entries[0]["name"], location["repositories"][0]["name"]

    def launch_job(self, job_name: str) -> str:
        """Launch a run of ``job_name`` with empty run config; its run id."""
        location, repository = self.repository
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": repository,
                "jobName": job_name,
            },
            "runConfigData": {},
        }
        result = self.graphql(LAUNCH_RUN_MUTATION, {"executionParams": params})["launchRun"]
        return self._expect(result, "LaunchRunSuccess")["run"]["runId"]

    def run_job_to_end(self, job_name: str, timeout: float) -> str:
        """Launch a run of ``job_name`` and wait until it ends; its final status."""
        run_id = self.launch_job(job_name)

        def ended() -> str | None:
            status = self.run_status(run_id)
            return status if status in TERMINAL_RUN_STATUSES else None

        return wait_for(ended, timeout, f"the {job_name} run ending", diagnostics=self.diagnostics)

    def wait_for_burst_partitions(self, bursts: Iterable[str], timeout: float) -> None:
        """Wait until the daemon's tick of ``burst_partitions_sensor`` added ``bursts`` after a catalogue run."""

        def added() -> bool:
            result = self.graphql(BURST_PARTITIONS_QUERY)["assetNodeOrError"]
            return set(bursts) <= set(self._expect(result, "AssetNode")["partitionKeys"])

        wait_for(
            added,
            timeout,
            "burst_partitions_sensor adding the burst partitions",
            diagnostics=self.diagnostics,
        )

    def launch_asset_backfill(self, asset_keys: list[str], partition_names: list[str]) -> str:
        """Backfill ``asset_keys`` over ``partition_names``; the daemon submits the runs. Its backfill id."""
        variables = backfill_variables(asset_keys, partition_names)
        result = self.graphql(LAUNCH_BACKFILL_MUTATION, variables)["launchPartitionBackfill"]
        return self._expect(result, "LaunchBackfillSuccess")["backfillId"]

    def run_status(self, run_id: str) -> str:
        result = self.graphql(RUN_STATUS_QUERY, {"runId": run_id})["runOrError"]
        return self._expect(result, "Run")["status"]

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first, with job name, status and tags."""
        return self._expect(self.graphql(RUNS_QUERY)["runsOrError"], "Runs")["results"]

    def backfill_status(self, backfill_id: str) -> str:
        result = self.graphql(BACKFILL_STATUS_QUERY, {"backfillId": backfill_id})["partitionBackfillOrError"]
        return self._expect(result, "PartitionBackfill")["status"]

    def settled(self, backfill_ids: list[str]) -> bool:
        """Every backfill of ``backfill_ids`` is over and no run is queued or running."""
        return all(
            self.backfill_status(backfill) not in UNFINISHED_BACKFILL_STATUSES for backfill in backfill_ids
        ) and all(run["status"] in TERMINAL_RUN_STATUSES for run in self.runs())

    def wait_until_settled(
        self, backfill_ids: list[str], outputs_complete: Callable[[], bool], timeout: float, what: str
    ) -> None:
        """Wait until ``outputs_complete()`` holds and then the backfills have :meth:`settled`.

        The outputs are checked first: they are files, cheaper than the GraphQL queries.
        """
        wait_for(
            lambda: outputs_complete() and self.settled(backfill_ids),
            timeout,
            what,
            interval=2.0,
            diagnostics=self.diagnostics,
        )

    def instance_info(self) -> dict[str, Any]:
        """The daemons' health and the run queue's limits, as the webserver reports them."""
        return self.graphql(INSTANCE_QUERY)["instance"]

    def daemons_healthy(self) -> bool:
        """Whether every required daemon has sent a recent heartbeat to the instance."""
        statuses = self.instance_info()["daemonHealth"]["allDaemonStatuses"]
        return bool(statuses) and all(status["healthy"] for status in statuses if status["required"])

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log_path.exists():
            return "(no log yet)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def diagnostics(self) -> str:
        """The runs' statuses and the end of the dagster dev log, for a failure message."""
        try:
            runs = "\n".join(
                f"  {run['runId'][:8]} {run['jobName']:<28} {run['status']:<10} "
                + ", ".join(
                    f"{tag['key']}={tag['value']}"
                    for tag in run["tags"]
                    if tag["key"] in ("dagster/partition", "dagster/run_key", "dagster/backfill")
                )
                for run in reversed(self.runs())
            )
        except (requests.RequestException, GraphQLError) as error:
            runs = f"  (runs unavailable: {error})"
        return f"runs:\n{runs or '  none'}\n--- {self.log_path.name} (last {LOG_TAIL_LINES} lines) ---\n{self.log_tail()}"

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> list[int]:
        """Interrupt every process as Ctrl-C would and wait for all they started to end.

        Returns the processes that had to be killed (empty after a clean stop); calling it again
        after a stop does nothing.
        """
        running = [process for process in self.processes if process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with suppress(TimeoutError):
            wait_for(
                lambda: all(_is_zombie(pid) for pid in processes_with_dagster_home(self.home)),
                timeout=LEFTOVER_EXIT_SECONDS,
                what="the processes of Dagster exiting",
                interval=0.5,
            )
        leftovers = [pid for pid in processes_with_dagster_home(self.home) if not _is_zombie(pid)]
        for pid in leftovers:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return leftovers


def _cli(name: str) -> str:
    executable = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if executable is None:
        raise RuntimeError(f"{name} is not installed next to this Python: pip install -e '.[test]'")
    return executable


@contextmanager
def _running(
    commands: list[list[str]],
    port: int,
    working_directory: Path,
    home: Path,
    instance_yaml: str,
    environment: dict[str, str],
    startup_timeout: float,
    log_name: str,
    set_home: bool = True,
) -> Iterator[DagsterDev]:
    """Start ``commands`` in ``working_directory`` with ``environment`` and ``home`` as ``DAGSTER_HOME``
    (unless ``set_home`` is false: then the commands find ``home`` themselves); all log to one file
    in ``home``.

    Yields once the webserver on ``port`` answers and the workspace has loaded; stops every
    process on exit, also when the block raises.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml)
    log_path = home / log_name
    processes: list[subprocess.Popen] = []
    dev = DagsterDev(f"http://127.0.0.1:{port}", processes, home, log_path)
    try:
        with log_path.open("ab") as log:
            for command in commands:
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=working_directory,
                        env={**environment, "DAGSTER_HOME": str(home)} if set_home else environment,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )

        def ready() -> tuple[str, str] | None:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{' '.join(process.args)} exited with {process.returncode}:\n{dev.log_tail()}"
                    )
            with suppress(requests.RequestException):
                if requests.get(f"{dev.url}/server_info", timeout=5).ok:
                    return dev.loaded_repository()
            return None

        dev.repository = wait_for(
            ready, startup_timeout, "the webserver answering with a loaded workspace", 0.5, dev.log_tail
        )
        yield dev
    finally:
        dev.stop()


@contextmanager
def running_dagster_dev(
    workspace_file: Path,
    home: Path,
    instance_yaml: str,
    environment: dict[str, str],
    startup_timeout: float = 120.0,
) -> Iterator[DagsterDev]:
    """Start ``dagster dev`` on a free port of 127.0.0.1 with ``home`` as ``DAGSTER_HOME``."""
    port = free_port()
    command = [_cli("dagster"), "dev", "-w", str(workspace_file), "-h", "127.0.0.1", "-p", str(port)]
    folder = workspace_file.parent
    with _running(
        [command], port, folder, home, instance_yaml, environment, startup_timeout, LOG_FILE_NAME
    ) as dev:
        yield dev


@contextmanager
def running_coherence_ui(
    project: Path, instance_yaml: str, environment: dict[str, str], startup_timeout: float = 120.0
) -> Iterator[DagsterDev]:
    """Start ``coherence-assets ui`` in ``project`` as a user types it: no ``DAGSTER_HOME``, so the
    instance is ``project/.dagster_home``, the demo's and the backfill command's default."""
    port = free_port()
    home = project / ".dagster_home"
    command = [_cli("coherence-assets"), "ui", "-h", "127.0.0.1", "-p", str(port)]
    without_home = {name: value for name, value in environment.items() if name != "DAGSTER_HOME"}
    with _running(
        [command],
        port,
        project,
        home,
        instance_yaml,
        without_home,
        startup_timeout,
        LOG_FILE_NAME,
        set_home=False,
    ) as dev:
        yield dev


@contextmanager
def running_dagster_deployment(
    workspace_file: Path,
    home: Path,
    instance_yaml: str,
    environment: dict[str, str],
    startup_timeout: float = 120.0,
) -> Iterator[DagsterDev]:
    """Start ``dagster-webserver`` and ``dagster-daemon run`` as separate processes, as in production.

    Yields once the workspace has loaded and every required daemon reports healthy, which proves
    both processes share the instance of ``instance_yaml``.
    """
    port = free_port()
    webserver = [_cli("dagster-webserver"), "-w", str(workspace_file), "-h", "127.0.0.1", "-p", str(port)]
    daemon = [_cli("dagster-daemon"), "run", "-w", str(workspace_file)]
    with _running(
        [webserver, daemon],
        port,
        workspace_file.parent,
        home,
        instance_yaml,
        environment,
        startup_timeout,
        DEPLOYMENT_LOG_FILE_NAME,
    ) as dev:
        wait_for(
            dev.daemons_healthy, startup_timeout, "every required daemon reporting healthy", 1.0, dev.log_tail
        )
        yield dev
