"""Fixtures of the Dagster-layer tests: a real on-disk instance, a data dir, and a chain to drive.

Every run is recorded in a ``DagsterInstance`` kept on disk under the test's temporary folder.
Only tests marked ``stand_in`` (and those asking for a ``backend`` fixture, marked so by the root
``conftest.py``) get the embedded backend: there the chain goes over real HTTP to it, authenticated
like CDSE (OIDC client credentials from the ``OPENEO_AUTH_*`` environment). Every other test's
chain is given a backend and catalogue address that answers nothing and fails the test if it was
called (:class:`UnansweredPort`): its inputs are written on disk instead (``downloaded_window``).
"""

from __future__ import annotations

import datetime as dt
import json
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from coherence_assets.cdse_facts import CDSE_PIXEL_SIZE
from coherence_assets.definitions import defs as project_defs
from coherence_assets.defs.burst_partitions_sensor import tick_burst_partitions_sensor
from coherence_assets.defs.resources import BurstCatalogue, CoherenceParameters, OpenEOBackend, resource_set
from coherence_assets.defs.sensor_ticks import (
    SensorTick,
    evaluate_sensor,
    launch_requested_runs,
    record_asset_events,
    runs_with_key,
)
from coherence_assets.defs.sensors import JOB_SENSOR
from coherence_assets.jobs.ledger import Ledger
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.partition_keys import split_partition_key
from coherence_assets.settings import LOCAL_GITHUB_API_PATH, Settings, packaged_demo_bursts_file
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import SMALL_SCENE, LiveBackend
from embedded_openeo.config import BackendConfig
from embedded_openeo.server import running_backend

BURST = "t015_030343_iw2"
WINDOW = "2023-07-01"
PARTITION = f"{BURST}|{WINDOW}"
CLIENT_ID = "coherence-assets"
CLIENT_SECRET = "local-secret"
TERMINAL_STATUSES = frozenset({"finished", "error", "canceled"})


def credentials_env(secret: str = CLIENT_SECRET) -> dict[str, str]:
    """The ``openeo`` client's non-interactive OIDC settings for the embedded backend."""
    return {
        "OPENEO_AUTH_METHOD": "client_credentials",
        "OPENEO_AUTH_CLIENT_ID": CLIENT_ID,
        "OPENEO_AUTH_CLIENT_SECRET": secret,
        "OPENEO_AUTH_PROVIDER_ID": "local",
    }


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The messages of every step failure of a run and of the errors that caused them."""
    messages = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return "\n".join(messages)


def day(value: np.datetime64) -> dt.date:
    """The calendar date of a cube's time coordinate value."""
    return pd.Timestamp(value).date()


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """The raw metadata values of the run's (single) materialisation of ``asset``."""
    (materialization,) = [  # by asset, not by node: insar_pairs and coherence_job share one node
        event.step_materialization_data.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(asset)
    ]
    return {key: value.value for key, value in materialization.metadata.items()}


@pytest.fixture(autouse=True)
def openeo_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in credentials_env().items():
        monkeypatch.setenv(name, value)


def write_burst_file(path: Path, burst_keys: Iterable[str]) -> Path:
    """A GeoJSON with the packaged map's features of ``burst_keys`` (e.g. ``t015_030343_iw2``)."""
    wanted = set(burst_keys)
    document = json.loads(Path(packaged_demo_bursts_file()).read_text())

    def key(feature: dict[str, Any]) -> str:
        properties = feature["properties"]
        return (
            f"t{properties['relative_orbit_number']:03d}_{properties['burst_id']:06d}_"
            f"{properties['subswath_name'].lower()}"
        )

    document["features"] = [feature for feature in document["features"] if key(feature) in wanted]
    assert {key(feature) for feature in document["features"]} == wanted, "unknown burst key in the test"
    path.write_text(json.dumps(document))
    return path


class RestartableBackend:
    """An embedded backend that a test can stop and start again on the same port and data dir.

    The project's ledgers record the backend URL, so a restart must keep the port.
    """

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        self.data_dir = data_dir
        self.overrides = {
            "min_seconds_between_starts": 0,
            "scene_shape": SMALL_SCENE,
            "pixel_size": CDSE_PIXEL_SIZE,
            "allow_faults": True,
            **overrides,
        }
        self.port = 0
        self._stack: ExitStack | None = None
        self.live: LiveBackend | None = None

    def start(self) -> LiveBackend:
        stack = ExitStack()
        url = stack.enter_context(
            running_backend(BackendConfig(data_dir=self.data_dir, port=self.port, **self.overrides))
        )
        self.port = int(url.rsplit(":", 1)[1])
        self._stack, self.live = stack, LiveBackend(url, self.data_dir)
        return self.live

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


@pytest.fixture
def restartable_backend(tmp_path: Path) -> Iterator[Callable[..., RestartableBackend]]:
    """Factory of backends that tests stop and restart; all are stopped at teardown."""
    backends: list[RestartableBackend] = []

    def make(**overrides: Any) -> RestartableBackend:
        backend = RestartableBackend(tmp_path / f"backend-{len(backends)}", **overrides)
        backend.start()
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        backend.stop()


class UnansweredPort(socketserver.ThreadingTCPServer):
    """A port on 127.0.0.1 that takes every connection and closes it unanswered, counting them.

    The backend and catalogue address of a chain whose test must not call them: a call fails in
    the test, and :meth:`require_unused` fails the test even when the product swallowed the error.
    """

    daemon_threads = True

    def __init__(self) -> None:
        self.connections = 0
        super().__init__(("127.0.0.1", 0), _CountAndClose)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def catalogue_url(self) -> str:
        return f"{self.url}/odata/v1"

    def require_unused(self, test: str) -> None:
        assert self.connections == 0, (
            f"{test} connected {self.connections} time(s) to the backend or catalogue; mark it stand_in "
            "if it needs them, or write its inputs on disk"
        )


class _CountAndClose(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.connections += 1  # the connection is closed on return, with no answer


@pytest.fixture
def unanswered_port(request: pytest.FixtureRequest) -> Iterator[UnansweredPort]:
    port = UnansweredPort()
    yield port
    port.shutdown()
    port.server_close()
    port.require_unused(request.node.nodeid)


@dataclass
class Chain:
    """The project's definitions bound to a backend (the stand-in, or an address that answers nothing),
    a data dir and an on-disk instance."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    backend: LiveBackend | UnansweredPort
    data_dir: Path
    bursts_file: Path

    @property
    def store(self) -> DataStore:
        return DataStore(str(self.data_dir))

    @property
    def openeo_backend(self) -> OpenEOBackend:
        return self.defs.resources["openeo_backend"]

    def run(
        self,
        job_name: str,
        partition_key: str | None = None,
        *,
        run_config: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        raise_on_error: bool = True,
    ) -> dg.ExecuteInProcessResult:
        """Execute one of the project's jobs in this process, recorded in the instance."""
        return self.defs.resolve_job_def(job_name).execute_in_process(
            instance=self.instance,
            partition_key=partition_key,
            run_config=run_config,
            tags=tags or {},
            raise_on_error=raise_on_error,
        )

    def materialize(
        self, selection: list[str], partition_key: str | None = None, raise_on_error: bool = True
    ) -> dg.ExecuteInProcessResult:
        """Materialise only the ``selection`` of the project's assets for one partition."""
        return dg.materialize(
            self.defs.assets,
            selection=selection,
            instance=self.instance,
            partition_key=partition_key,
            resources=self.defs.resources,
            raise_on_error=raise_on_error,
        )

    def refresh_bursts(
        self, bursts_file: Path | None = None, raise_on_error: bool = True
    ) -> dg.ExecuteInProcessResult:
        """``refresh_burst_catalogue``, then the tick of ``burst_partitions_sensor`` that the daemon would make."""
        result = self.run(
            "refresh_burst_catalogue",
            # as a user overrides the file for one run in the launchpad
            run_config={
                "resources": {"bursts_file": {"config": {"path": str(bursts_file or self.bursts_file)}}}
            },
            raise_on_error=raise_on_error,
        )
        tick_burst_partitions_sensor(self.defs, self.instance)
        return result

    def submit(self, partition: str = PARTITION, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
        """``submit_coherence_jobs``: the pair table and the jobs of one partition."""
        return self.run("submit_coherence_jobs", partition, raise_on_error=raise_on_error)

    def tick(self, cursor: str | None = None, sensor_name: str = JOB_SENSOR) -> SensorTick:
        """Evaluate a sensor (``openeo_job_sensor`` unless named) once, as the daemon does."""
        return evaluate_sensor(self.defs, self.instance, sensor_name, cursor)

    def launch(self, data: SensorTick) -> list[dg.ExecuteInProcessResult]:
        """Do what the daemon does with a tick: record its asset events, run what no earlier run keyed."""
        record_asset_events(self.instance, data)
        return launch_requested_runs(
            self.instance,
            data,
            lambda job_name, partition, tags: self.run(job_name, partition, tags=tags, raise_on_error=False),
        )

    def runs_with_key(self, run_key: str) -> list[str]:
        return runs_with_key(self.instance, JOB_SENSOR, run_key)

    def ledger(self, partition: str = PARTITION) -> Ledger:
        burst, window = split_partition_key(partition)
        return Ledger.from_json(self.store.read_json(self.store.coherence_job_path(burst, window)))

    def write_ledger(self, ledger: Ledger) -> None:
        self.store.write_json(self.store.coherence_job_path(ledger.burst, ledger.window), ledger.to_json())

    def backend_jobs(self) -> dict[str, dict[str, Any]]:
        """The backend's own job listing (all pages), through the project's authenticated connection."""
        return list_all_jobs(self.openeo_backend.connect())

    def wait_for_jobs(
        self, job_ids: Iterable[str], statuses: frozenset[str] = TERMINAL_STATUSES, timeout: float = 60.0
    ) -> dict[str, str]:
        """Poll the backend until every job has one of ``statuses``; their statuses."""
        job_ids = set(job_ids)
        deadline = time.monotonic() + timeout
        while True:
            listing = self.backend_jobs()
            current = {job_id: listing[job_id]["status"] for job_id in job_ids if job_id in listing}
            if len(current) == len(job_ids) and all(status in statuses for status in current.values()):
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"jobs did not reach {sorted(statuses)} within {timeout} s: {current}")
            time.sleep(0.1)

    def wait_for_ledger_jobs(self, partition: str = PARTITION, timeout: float = 60.0) -> dict[str, str]:
        return self.wait_for_jobs(
            [job.job_id for job in self.ledger(partition).jobs if job.job_id], timeout=timeout
        )


def chain_resources(
    backend: LiveBackend | UnansweredPort,
    data_dir: Path,
    *,
    bursts_file: Path | None = None,
    openeo: dict[str, Any] | None = None,
    **coherence: Any,
) -> dict[str, dg.ConfigurableResource]:
    """The resources of a CDSE-like deployment whose backend and catalogue are the live backend."""
    settings = Settings(
        data_dir=str(data_dir),
        bursts_file=str(bursts_file or packaged_demo_bursts_file()),
        backend_url=backend.url,
        catalogue_url=backend.catalogue_url,
    )
    resources = resource_set(
        settings,
        catalogue=BurstCatalogue(url=backend.catalogue_url),
        openeo_backend=OpenEOBackend(url=backend.url, **{"min_seconds_between_starts": 0, **(openeo or {})}),
    )
    # the backend's stand-in for GitHub's API tells which commit the APEx UDP's main branch is at
    github_api_url = backend.url + LOCAL_GITHUB_API_PATH
    return {**resources, "coherence": CoherenceParameters(**{"github_api_url": github_api_url, **coherence})}


def chain_definitions(resources: dict[str, dg.ConfigurableResource]) -> dg.Definitions:
    """The project's assets, jobs, sensors and schedules with these resources."""
    return dg.Definitions(
        assets=project_defs.assets,
        asset_checks=project_defs.asset_checks,
        jobs=project_defs.jobs,
        sensors=project_defs.sensors,
        schedules=project_defs.schedules,
        resources=resources,
    )


@pytest.fixture
def dagster_instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A real instance (SQLite run, event log and schedule storage) under the test's tmp folder."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance


@pytest.fixture
def make_chain(tmp_path: Path, dagster_instance: dg.DagsterInstance) -> Callable[..., Chain]:
    """Factory: ``make_chain(backend, openeo={...}, process=..., max_attempts=...)``; one instance and data dir."""

    def make(
        backend: LiveBackend | UnansweredPort, *, bursts: Iterable[str] = (BURST,), **options: Any
    ) -> Chain:
        data_dir = tmp_path / "data"
        bursts_file = write_burst_file(tmp_path / "bursts.geojson", bursts)
        return Chain(
            defs=chain_definitions(chain_resources(backend, data_dir, bursts_file=bursts_file, **options)),
            instance=dagster_instance,
            backend=backend,
            data_dir=data_dir,
            bursts_file=bursts_file,
        )

    return make


@pytest.fixture
def chain(request: pytest.FixtureRequest, make_chain: Callable[..., Chain]) -> Chain:
    """The default chain: one burst (``t015_030343_iw2``), default parameters, and the stand-in as its
    backend when the test is marked ``stand_in``, else an address that must not be called."""
    if request.node.get_closest_marker("stand_in"):
        return make_chain(request.getfixturevalue("backend"))
    return make_chain(request.getfixturevalue("unanswered_port"))


@pytest.fixture
def chain_with(backend: LiveBackend, make_chain: Callable[..., Chain]) -> Callable[..., Chain]:
    """The default chain with ``OpenEOBackend`` options (e.g. the sensor's retry settings)."""
    return lambda **openeo: make_chain(backend, openeo=openeo)
