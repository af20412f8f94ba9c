"""A backfill at scale: what ``openeo_job_sensor`` costs per tick and how full it keeps the backend's
slots, side by side with the ``openeo`` client's own ``MultiBackendJobManager`` on the same jobs.

Both sides run against the embedded backend (in this process, no faults) with CDSE's limits
(2 running jobs, one start per 5 s) and the production settings: the sensor is evaluated as the
daemon evaluates it, each tick after its own minimum interval (5 s), with the ``openeo_backend``
resource's defaults (2 jobs queued ahead); the manager gets the same queue-ahead
(``parallel_jobs=4``: it starts jobs while fewer are queued or running) and a 5 s poll.
Nothing is computed: requests are counted where the backend serves them (its access log), split
into listing/describe requests (what a tick costs), starts (one per job started) and the rest;
ledger reads where the sensor opens them; job starts and ends where the backend's job runner
records them.

1. History: the account first runs ``--history`` jobs that are not ours (on a backend without
   limits, so that this is quick); both sides start from a copy of that state.
2. The sensor, on one backend:
   a. The backfill: ``--partitions`` partitions (burst x quarter, one job of ``--job-seconds``
      each) are submitted by runs tagged as a Dagster backfill's (``coherence_job`` creates the
      jobs, the sensor starts them), then the sensor ticks whenever a tick is due until every
      job has ended and been downloaded. Slot utilisation is the slots' busy share from the first
      job's start to the last one's, while created jobs waited. The runs it requests run in a
      run-worker process between ticks (so that none of their requests is counted as the
      sensor's); under the daemon they run beside the ticks, so a slow download delays the next
      tick here and not there: the utilisation measured here is a lower bound. The whole backfill's
      requests (submission runs, ticks, download runs) and CPU (the runs' and ticks', never the
      backend's threads) are reported too, per job, against the manager's whole run.
   b. Cost at ``--levels`` awaited jobs (40, 200, 500): more partitions are submitted, the
      backfill's jobs now history too, and the sensor ticks ``--ticks-per-level`` times at each
      level. Those jobs are not run to their end.
3. The manager: one poll at each level, then the backfill's jobs (the process graphs and titles
   the sensor side submitted) from start to end.

Each side runs ``partitions x job seconds / 2`` of jobs; the defaults (20 partitions, 60 s jobs)
take about ten minutes per side plus about five for the levels. Run:

    .venv/bin/python benchmarks/sensor_backfill.py [--partitions 20] [--job-seconds 60] [--history 500]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import multiprocessing
import os
import re
import resource
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import closing, contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import fsspec.implementations.local
import openeo
import pandas as pd
from openeo.extra.job_management import MultiBackendJobManager, create_job_db

from coherence_assets.cdse_facts import APEX_NAMESPACE, SENTINEL1_SAR_COHERENCE
from coherence_assets.jobs.ledger import CREATED, IN_FLIGHT, RUNNING, TERMINAL
from coherence_assets.jobs.limits import CDSE_LIMITS
from coherence_assets.partition_keys import partition_key, split_partition_key
from coherence_assets.settings import packaged_demo_bursts_file
from coherence_assets.windows import window_last_day
from embedded_openeo.config import BackendConfig
from embedded_openeo.github_api import MAIN_COMMIT
from embedded_openeo.server import running_backend

FIRST_WINDOW = dt.date(2016, 1, 1)
WINDOWS_PER_BURST = 40  # 2016-01-01 .. 2025-10-01
SCENE_SHAPE = (64, 128)  # small rasters: the benchmark is about orchestration, not coherence
CDSE_SLOTS = CDSE_LIMITS.max_running_jobs
CDSE_START_SPACING_SECONDS = CDSE_LIMITS.min_seconds_between_starts
MANAGER_POLL_SECONDS = 5
MANAGER_POLLS_PER_LEVEL = 3
# The manager starts jobs while fewer than parallel_jobs are queued or running: the sensor's slots
# plus the jobs it queues ahead, so that both keep the backend's queue equally full.
MANAGER_PARALLEL_JOBS = CDSE_SLOTS + CDSE_LIMITS.queued_ahead
CLIENT_ID, CLIENT_SECRET = "coherence-assets", "local-secret"
JOB_RUNNER_LOGGER = "embedded_openeo.job_runner"
MANAGER_LOGGER = "openeo.extra.job_management._manager"
TRANSITION = re.compile(r"^job (?P<job_id>\S+): (?P<before>\w+) -> (?P<after>\w+)")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
LEDGER_PATH = re.compile(r"/coherence_job/[^/]+/\d{4}-\d{2}-\d{2}\.json$")
AUTH_PATHS = ("/", "/.well-known/openeo", "/credentials/oidc", "/credentials/basic")


class AccessLog(logging.Handler):
    """Requests the backend served since the last ``take()``, by kind, read from its access log."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if not (isinstance(record.args, tuple) and len(record.args) == 3):
            return
        request_line, code = ANSI.sub("", str(record.args[0])), str(record.args[1])
        method, _, rest = request_line.partition(" ")
        path = rest.split(" ")[0].split("?")[0]
        if method == "GET" and path == "/jobs":
            kind = "list"
        elif method == "GET" and re.fullmatch(r"/jobs/[^/]+", path):
            kind = "describe"
        elif method == "POST" and re.fullmatch(r"/jobs/[^/]+/results", path):
            kind = "start"
        elif path in AUTH_PATHS or path.startswith("/oidc"):
            kind = "auth"
        else:
            kind = "other"
        with self._lock:
            self._counts[kind] += 1
            if code == "429":
                self._counts["429"] += 1

    def take(self) -> Counter[str]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts


def requests_in(counts: Counter[str]) -> int:
    return sum(count for kind, count in counts.items() if kind != "429")


class JobTimeline(logging.Handler):
    """Start and end instants of every job, from the backend's job runner's state-change records."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = TRANSITION.match(record.getMessage())
        if match is None:
            return
        if match["after"] == RUNNING:
            self.started[match["job_id"]] = record.created
        elif match["before"] == RUNNING:
            self.ended[match["job_id"]] = record.created

    def reset(self) -> None:
        self.started, self.ended = {}, {}


class PollCounter(logging.Handler):
    """Loops of MultiBackendJobManager: it logs its status histogram once at the end of each."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.loops = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Job status histogram"):
            self.loops += 1


class LedgerReads:
    """Ledger files the sensor opens, counted on this thread only (download runs run on another)."""

    def __init__(self) -> None:
        self.count = 0
        self._thread = threading.get_ident()

    @contextmanager
    def counting(self) -> Iterator[None]:
        filesystem = fsspec.implementations.local.LocalFileSystem
        original = filesystem._open

        def counted_open(fs, path, mode="rb", *args, **kwargs):
            if "r" in mode and threading.get_ident() == self._thread and LEDGER_PATH.search(str(path)):
                self.count += 1
            return original(fs, path, mode, *args, **kwargs)

        filesystem._open = counted_open
        try:
            yield
        finally:
            filesystem._open = original


@dataclass
class Tick:
    label: str  # the active-jobs level being measured, or the phase
    active: int  # jobs created, queued or running on the backend before the tick
    unfinished_partitions: int
    requests: Counter[str]
    seconds: float
    ledgers_read: int


@dataclass
class Side:
    name: str
    poll_requests: dict[int, tuple[Counter[str], int]] = field(
        default_factory=dict
    )  # level -> requests, polls
    poll_seconds: list[float] = field(default_factory=list)
    history_at_levels: int = 0  # jobs the account had ended when the active-jobs levels were measured
    tick_seconds: float = 0.0
    run_requests: Counter[str] = field(default_factory=Counter)
    run_polls: int = 0
    ticks: list[Tick] = field(default_factory=list)
    started: dict[str, float] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)
    too_many_requests: int = 0
    # the whole backfill: every request (sensor side: submission runs, ticks, download runs; manager
    # side: its run) and the CPU of the orchestrating code, not the backend's threads
    backfill_requests: Counter[str] = field(default_factory=Counter)
    backfill_cpu_seconds: float = 0.0


def write_burst_file(path: Path, count: int) -> list[str]:
    """``count`` bursts: the packaged map's first burst with consecutive burst ids (same orbit); their keys."""
    document = json.loads(Path(packaged_demo_bursts_file()).read_text())
    template = document["features"][0]
    features = []
    for offset in range(count):
        feature = json.loads(json.dumps(template))
        feature["properties"]["burst_id"] = template["properties"]["burst_id"] + offset
        features.append(feature)
    document["features"] = features
    path.write_text(json.dumps(document))
    return [
        f"t{props['relative_orbit_number']:03d}_{props['burst_id']:06d}_{props['subswath_name'].lower()}"
        for props in (feature["properties"] for feature in features)
    ]


def quarters(first: dt.date, count: int) -> list[str]:
    windows = [first]
    while len(windows) < count:
        windows.append(window_last_day(windows[-1]) + dt.timedelta(days=1))
    return [window.isoformat() for window in windows]


def backend_config(data_dir: Path, port: int, bursts_file: Path, **overrides: Any) -> BackendConfig:
    return BackendConfig(
        data_dir=data_dir,
        port=port,
        scene_shape=SCENE_SHAPE,
        bursts_file=bursts_file,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        **overrides,
    )


def chain_environment(home: Path, data_dir: Path, backend_url: str, bursts_file: Path) -> dict[str, str]:
    """The variables that point Dagster and the project at ``home``, ``data_dir`` and the embedded backend."""
    return {
        "DAGSTER_HOME": str(home),
        "COHERENCE_DATA_DIR": str(data_dir),
        "COHERENCE_BURSTS_FILE": str(bursts_file),
        "OPENEO_BACKEND_URL": backend_url,
        "COHERENCE_CATALOGUE_URL": f"{backend_url}/odata/v1",
        "OPENEO_AUTH_METHOD": "client_credentials",
        "OPENEO_AUTH_CLIENT_ID": CLIENT_ID,
        "OPENEO_AUTH_CLIENT_SECRET": CLIENT_SECRET,
        "OPENEO_AUTH_PROVIDER_ID": "local",
        # no internet here: the embedded stand-in's commit of APEx's main, as a deployment pins one
        "COHERENCE_APEX_COMMIT": MAIN_COMMIT,
    }


def production_limits(job_seconds_per_pair: float) -> dict[str, Any]:
    return {
        "max_running_jobs": CDSE_SLOTS,
        "min_seconds_between_starts": CDSE_START_SPACING_SECONDS,
        "job_seconds_per_pair": job_seconds_per_pair,
    }


def connect(url: str) -> openeo.Connection:
    return openeo.connect(url).authenticate_oidc_client_credentials(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, provider_id="local"
    )


def backend_job_statuses(data_dir: Path) -> dict[str, str]:
    """Every job's status from the backend's own store."""
    database = data_dir / "openeo" / "jobs.sqlite3"
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return dict(connection.execute("SELECT id, status FROM jobs"))


def backend_statuses(data_dir: Path) -> Counter[str]:
    """Jobs by status from the backend's own store (no HTTP request, so nothing is counted)."""
    database = data_dir / "openeo" / "jobs.sqlite3"
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return Counter(dict(connection.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")))


def run_history(url: str, jobs: int, bursts_file: Path) -> None:
    """``jobs`` finished jobs that are not ours: someone else's work on the same account."""
    connection = connect(url)
    burst = json.loads(bursts_file.read_text())["features"][0]["properties"]
    for number in range(jobs):
        cube = connection.datacube_from_process(
            SENTINEL1_SAR_COHERENCE,
            namespace=APEX_NAMESPACE,
            burst_id=burst["burst_id"],
            sub_swath=burst["subswath_name"],
            polarization="VV",
            temporal_extent=["2023-07-01", "2023-07-31"],
            temporal_baseline=12,
            coherence_window_rg=21,
            coherence_window_az=5,
        )
        cube.create_job(title=f"someone else's job {number}").start()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(0.5)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def slot_utilisation(
    started: dict[str, float], ended: dict[str, float], slots: int
) -> tuple[float, float, float]:
    """Busy share of the slots while created jobs waited for one (from the first job's start to
    the last job's start, as the backend's job runner recorded them), wall time from the first
    start to the last end, and the mean job duration."""
    first_start, last_start = min(started.values()), max(started.values())
    busy = sum(
        max(0.0, min(ended.get(job, last_start), last_start) - max(start, first_start))
        for job, start in started.items()
    )
    durations = [ended[job] - started[job] for job in ended if job in started]
    window = last_start - first_start
    utilisation = busy / (slots * window) if window > 0 else float("nan")
    return utilisation, max(ended.values()) - min(started.values()), statistics.mean(durations)


def sensor_side(
    args: argparse.Namespace, root: Path, history_dir: Path, port: int, bursts_file: Path, bursts: list[str]
) -> tuple[Side, list[dict[str, Any]], list[dict[str, Any]], float]:
    """Step 2 under ``openeo_job_sensor``: the side, the backfill's jobs, the jobs of the active-jobs
    levels, and the seconds per pair."""
    from coherence_assets.definitions import defs
    from coherence_assets.defs.burst_partitions_sensor import tick_burst_partitions_sensor
    from coherence_assets.defs.jobs import BACKFILL_TAG
    from coherence_assets.defs.sensor_ticks import evaluate_sensor, launch_requested_runs, record_asset_events
    from coherence_assets.defs.sensors import JOB_SENSOR
    from coherence_assets.demo import QUIET_RUN_CONFIG
    from coherence_assets.jobs.ledger_index import read_all_ledgers

    side = Side(JOB_SENSOR)
    data_dir = root / "sensor-backend"
    shutil.copytree(history_dir, data_dir)
    instance = dg.DagsterInstance.get()
    sensor = defs.resolve_sensor_def(JOB_SENSOR)
    tick_seconds = args.tick_seconds or float(sensor.minimum_interval_seconds or 30)
    side.tick_seconds = tick_seconds
    windows = quarters(FIRST_WINDOW, WINDOWS_PER_BURST)
    partitions = [partition_key(burst, window) for window in windows for burst in bursts]
    partitions = partitions[: args.partitions + max(args.levels)]
    assets = defs.assets

    def materialize(selection: list[str], partition_key: str | None = None) -> None:
        result = dg.materialize(
            assets,
            selection=selection,
            partition_key=partition_key,
            instance=instance,
            resources=defs.resources,
            run_config=QUIET_RUN_CONFIG,
            # as runs of a Dagster backfill: coherence_job only creates jobs, the sensor starts them
            tags={BACKFILL_TAG: "sensor-backfill-benchmark"},
            raise_on_error=False,
        )
        if not result.success:
            raise RuntimeError(
                f"materialising {selection} for {partition_key} failed; see {instance.root_directory}"
            )

    # The job length is set per pair by the backend: measure the pairs of a window first.
    with running_backend(backend_config(data_dir, port, bursts_file)):
        materialize(["burst_catalogue"])
        tick_burst_partitions_sensor(defs, instance)
        materialize(["insar_pairs"], partitions[0])
    pairs_per_job = len(read_pair_table(root, partitions[0]))
    seconds_per_pair = args.job_seconds / pairs_per_job
    print(
        f"sensor: {len(partitions)} partitions of about {pairs_per_job} pairs, {seconds_per_pair:.2f} s per pair; "
        f"tick every {tick_seconds:.0f} s",
        flush=True,
    )

    access_log, timeline, ledger_reads = args.access_log, args.timeline, LedgerReads()
    timeline.reset()
    # Requested runs run in a process of their own, as under the daemon (and Dagster's logging
    # setup is not safe to run from two threads at once).
    downloads = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    children_cpu_before = children_cpu_seconds()
    cursor: str | None = None
    next_tick = time.monotonic()

    previously_unfinished: set[str] = set()

    def unfinished_partitions() -> int:
        """Partitions with a job the backend has not ended, now or at the previous tick (whose end
        this tick must act on)."""
        nonlocal previously_unfinished
        statuses = backend_job_statuses(data_dir)
        unfinished = {
            partition_key(ledger.burst, ledger.window)
            for ledger in read_all_ledgers_quietly()
            if any(statuses.get(job.job_id or "", CREATED) not in TERMINAL for job in ledger.jobs)
        }
        count = len(unfinished | previously_unfinished)
        previously_unfinished = unfinished
        return count

    def read_all_ledgers_quietly():
        with ledger_reads_paused():
            return read_all_ledgers(defs.resources["storage"].store)

    @contextmanager
    def ledger_reads_paused() -> Iterator[None]:
        before = ledger_reads.count
        yield
        ledger_reads.count = before

    def tick(label: str) -> int:
        """One tick when it is due, then the runs it requested; how many runs it launched."""
        nonlocal cursor, next_tick
        time.sleep(max(0.0, next_tick - time.monotonic()))
        active = sum(backend_statuses(data_dir)[status] for status in IN_FLIGHT)
        unfinished = unfinished_partitions()
        between_ticks = access_log.take()  # the submission and download runs' requests
        ledger_reads.count = 0
        started, cpu = time.monotonic(), time.thread_time()
        with ledger_reads.counting():
            data = evaluate_sensor(defs, instance, JOB_SENSOR, cursor)
            record_asset_events(instance, data)
        seconds = time.monotonic() - started
        requests = access_log.take()
        if label == "backfill":
            side.backfill_requests += between_ticks + requests
            side.backfill_cpu_seconds += time.thread_time() - cpu
        side.ticks.append(Tick(label, active, unfinished, requests, seconds, ledger_reads.count))
        side.too_many_requests += requests["429"]
        next_tick = started + tick_seconds
        cursor = data.cursor
        # The runs it requested run now, before the next tick, so that no request of theirs is
        # counted as the sensor's.
        launched: list[Future] = launch_requested_runs(
            instance,
            data,
            lambda job_name, partition, tags: downloads.submit(run_requested, job_name, partition, tags),
        )
        for future in launched:
            future.result()
        return len(launched)

    def jobs_of(chosen: list[str]) -> list[dict[str, Any]]:
        """The process graph and title of every job of ``chosen`` partitions, for the manager side."""
        connection = connect(os.environ["OPENEO_BACKEND_URL"])
        keys = set(chosen)
        return [
            {"title": job.title, "process": connection.job(job.job_id).describe()["process"]}
            for ledger in read_all_ledgers_quietly()
            if partition_key(ledger.burst, ledger.window) in keys
            for job in ledger.jobs
            if job.job_id
        ]

    backfill, at_levels = partitions[: args.partitions], partitions[args.partitions :]
    with running_backend(backend_config(data_dir, port, bursts_file, **production_limits(seconds_per_pair))):
        # 1. The backfill: its runs create every job (as a Dagster backfill's runs do), then the
        # sensor ticks at its interval until every job has ended and been downloaded.
        access_log.take()
        cpu = time.thread_time()
        for partition in backfill:
            materialize(["insar_pairs", "coherence_job"], partition)
        side.backfill_cpu_seconds += time.thread_time() - cpu
        print(
            f"  backfill: {len(backfill)} partitions submitted; ticking until every job has ended "
            "and been downloaded",
            flush=True,
        )
        deadline = time.monotonic() + args.timeout_seconds
        while True:
            statuses = backend_statuses(data_dir)
            if all(status in TERMINAL for status in statuses.elements()) and len(timeline.ended) >= len(
                backfill
            ):
                if tick("backfill") == 0:  # the tick that acts on the last ends launched nothing
                    break
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs not all done after {args.timeout_seconds:.0f} s: {dict(statuses)}")
            tick("backfill")
        side.started, side.ended = dict(timeline.started), dict(timeline.ended)
        # the download runs ran in the pool's worker process: its CPU, once it has ended
        downloads.shutdown(wait=True)
        side.backfill_cpu_seconds += children_cpu_seconds() - children_cpu_before
        jobs = jobs_of(backfill)
        # 2. Cost at 40, 200 and 500 awaited jobs: more partitions are submitted, and the sensor,
        # which waits meanwhile, ticks a few times at each level. The backfill's jobs are history now.
        history = sum(backend_statuses(data_dir)[status] for status in TERMINAL)
        levels = [level for level in args.levels if level <= len(at_levels)]
        for number, partition in enumerate(at_levels, start=1):
            materialize(["insar_pairs", "coherence_job"], partition)
            if number in levels:
                active = sum(backend_statuses(data_dir)[status] for status in IN_FLIGHT)
                print(
                    f"  {number} more partitions submitted, {active} jobs active, {history} ended: "
                    f"{args.ticks_per_level} ticks",
                    flush=True,
                )
                for _ in range(args.ticks_per_level):
                    tick(f"{number}")
        side.history_at_levels = history
        level_jobs = jobs_of(at_levels)
    return side, jobs, level_jobs, seconds_per_pair


def run_requested(job_name: str, partition_key: str | None, tags: dict[str, str]) -> None:
    """A run the sensor requested, in the run worker process; its one-line outcome goes to runs.log."""
    from coherence_assets.definitions import defs
    from coherence_assets.demo import run_job

    log_path = Path(os.environ["COHERENCE_DATA_DIR"]).parent / "runs.log"
    with log_path.open("a") as log, redirect_stdout(log):
        run_job(defs, dg.DagsterInstance.get(), job_name, partition_key, tags)


def read_pair_table(root: Path, partition: str) -> pd.DataFrame:
    burst, window = split_partition_key(partition)
    return pd.read_parquet(root / "data" / "insar_pairs" / burst / f"{window}.parquet")


def manager_side(
    args: argparse.Namespace,
    root: Path,
    history_dir: Path,
    bursts_file: Path,
    jobs: list[dict[str, Any]],
    level_jobs: list[dict[str, Any]],
    seconds_per_pair: float,
) -> Side:
    """Step 3: the same jobs under MultiBackendJobManager, polling every 5 s."""
    side = Side("MultiBackendJobManager")
    data_dir = root / "manager-backend"
    shutil.copytree(history_dir, data_dir)
    access_log, timeline, polls = args.access_log, args.timeline, PollCounter()
    logging.getLogger(MANAGER_LOGGER).addHandler(polls)
    logging.getLogger(MANAGER_LOGGER).setLevel(logging.INFO)
    with running_backend(
        backend_config(data_dir, 0, bursts_file, **production_limits(seconds_per_pair))
    ) as url:
        connection = connect(url)

        def new_manager(parallel_jobs: int) -> MultiBackendJobManager:
            manager = MultiBackendJobManager(
                poll_sleep=MANAGER_POLL_SECONDS, root_dir=root / "manager-results"
            )
            manager.add_backend("local", connection=connection, parallel_jobs=parallel_jobs)
            return manager

        levels = [level for level in args.levels if level <= len(level_jobs)]
        side.history_at_levels = sum(backend_statuses(data_dir)[status] for status in TERMINAL)
        if levels:
            created = [
                connection.create_job(job["process"], title=job["title"]) for job in level_jobs[: max(levels)]
            ]
            for level in levels:
                frame = pd.DataFrame(
                    {
                        "id": [job.job_id for job in created[:level]],
                        "backend_name": "local",
                        "status": CREATED,
                    }
                )
                job_db = create_job_db(root / f"manager-poll-{level}.csv", df=frame)
                manager = new_manager(parallel_jobs=level)
                access_log.take()
                # The manager's own poll, called directly: its start_job_thread does not stop while
                # tracked jobs are active (its loop condition), and these never end.
                for _ in range(MANAGER_POLLS_PER_LEVEL):
                    started = time.monotonic()
                    manager._job_update_loop(job_db=job_db, start_job=lambda **_: None)
                    side.poll_seconds.append(time.monotonic() - started)
                loops, requests = MANAGER_POLLS_PER_LEVEL, access_log.take()
                side.poll_requests[level] = (requests, loops)
                print(
                    f"  manager: {level} active jobs, {requests_in(requests)} requests in {loops} polls",
                    flush=True,
                )
            for job in created:
                job.delete()

        timeline.reset()
        frame = pd.DataFrame(
            {"process": [json.dumps(job["process"]) for job in jobs], "title": [job["title"] for job in jobs]}
        )

        def start_job(row: pd.Series, connection: openeo.Connection, **_: Any) -> openeo.BatchJob:
            return connection.create_job(json.loads(row["process"]), title=row["title"])

        manager = new_manager(parallel_jobs=MANAGER_PARALLEL_JOBS)
        access_log.take()
        polls.loops = 0
        print(
            f"  manager: running {len(jobs)} jobs, parallel_jobs={MANAGER_PARALLEL_JOBS}, poll every "
            f"{MANAGER_POLL_SECONDS} s",
            flush=True,
        )
        cpu = time.thread_time()
        manager.run_jobs(df=frame, start_job=start_job, job_db=root / "manager-run.csv")
        side.backfill_cpu_seconds = time.thread_time() - cpu
        side.run_requests, side.run_polls = access_log.take(), polls.loops
        side.backfill_requests = side.run_requests
        side.too_many_requests = side.run_requests["429"]
    side.started, side.ended = dict(timeline.started), dict(timeline.ended)
    return side


def children_cpu_seconds() -> float:
    """CPU of this process's ended and waited-for children (the download runs' worker process)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def kinds(counts: Counter[str]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()) if kind != "429")


def split(counts: Counter[str], ticks: int) -> str:
    """Mean requests per tick/poll: listing and describe (what a tick costs), starts (one per job
    started, whoever starts it), and the rest (logins, logs, result listings)."""
    if ticks == 0:
        return "-"
    listing, starts = counts["list"] + counts["describe"], counts["start"]
    other = requests_in(counts) - listing - starts  # counted, not subtracted as floats (no "-0.00")
    return f"{listing / ticks:.2f} + {starts / ticks:.2f} + {other / ticks:.2f}"


def summed(ticks: list[Tick]) -> Counter[str]:
    return sum((tick.requests for tick in ticks), Counter())


def report(sensor: Side, manager: Side, args: argparse.Namespace) -> None:
    def ticks_of(label: str) -> list[Tick]:
        return [tick for tick in sensor.ticks if tick.label == label]

    def active_of(ticks: list[Tick]) -> str:
        return f" ({statistics.mean(tick.active for tick in ticks):.0f} active)" if ticks else ""

    def reads_of(ticks: list[Tick]) -> str:
        if not ticks:
            return "-"
        reads = statistics.mean(tick.ledgers_read for tick in ticks)
        unfinished = statistics.mean(tick.unfinished_partitions for tick in ticks)
        return f"{reads:.1f} / {unfinished:.1f}"

    def totals(side: Side) -> tuple[str, str]:
        utilisation, wall, duration = slot_utilisation(side.started, side.ended, CDSE_SLOTS)
        ideal = len(side.ended) * duration / CDSE_SLOTS
        return f"{utilisation:.3f}", f"{wall:.0f} s / {ideal:.0f} s = {wall / ideal:.2f}"

    backfill = ticks_of("backfill")
    seconds = [tick.seconds for tick in sensor.ticks]
    sensor_totals, manager_totals = totals(sensor), totals(manager)
    rows = [("requests per tick/poll: listing+describe + starts + other (target: first <= 1)", "", "")]
    for level in args.levels:
        ticks = ticks_of(str(level))
        rows.append(
            (
                f"  at {level} awaited jobs{active_of(ticks)}",
                split(summed(ticks), len(ticks)),
                split(*manager.poll_requests.get(level, (Counter(), 0))),
            )
        )
    rows += [
        (
            f"  over the backfill ({len(backfill)} ticks, {manager.run_polls} polls)",
            split(summed(backfill), len(backfill)),
            split(manager.run_requests, manager.run_polls),
        ),
        (
            "tick/poll wall time p50 / p99 (s)",
            f"{percentile(seconds, 0.5):.3f} / {percentile(seconds, 0.99):.3f}",
            f"{percentile(manager.poll_seconds, 0.5):.3f} / {percentile(manager.poll_seconds, 0.99):.3f}"
            if manager.poll_seconds
            else "-",
        ),
        ("ledgers read / partitions with unfinished work, per tick", "", ""),
    ]
    rows += [(f"  at {level} awaited jobs", reads_of(ticks_of(str(level))), "") for level in args.levels]
    rows += [
        ("  over the backfill", reads_of(backfill), "(no ledgers)"),
        ("slot utilisation while created jobs waited (target >= 0.97)", sensor_totals[0], manager_totals[0]),
        ("total time / ideal (jobs x duration / 2)", sensor_totals[1], manager_totals[1]),
        ("429 answers (target 0)", str(sensor.too_many_requests), str(manager.too_many_requests)),
        ("backfill jobs run", str(len(sensor.ended)), str(len(manager.ended))),
        (
            "requests over the whole backfill, per job",
            f"{requests_in(sensor.backfill_requests) / max(len(sensor.ended), 1):.1f}",
            f"{requests_in(manager.backfill_requests) / max(len(manager.ended), 1):.1f}",
        ),
        (
            "CPU of the orchestration over the backfill, per job (CPU-s)",
            f"{sensor.backfill_cpu_seconds / max(len(sensor.ended), 1):.3f}",
            f"{manager.backfill_cpu_seconds / max(len(manager.ended), 1):.3f}",
        ),
    ]
    width = max(len(row[0]) for row in rows)
    print(
        f"\nsizes: backfill of {args.partitions} partitions (one job each, about {args.job_seconds:g} s per job); "
        f"then {', '.join(map(str, args.levels))} awaited jobs, {args.ticks_per_level} ticks each, with "
        f"{sensor.history_at_levels} (sensor) / {manager.history_at_levels} (manager) ended jobs of history"
    )
    print(
        f"limits and settings: {CDSE_SLOTS} slots, one start per {CDSE_START_SPACING_SECONDS:g} s, "
        f"{CDSE_LIMITS.queued_ahead} queued ahead; sensor tick {sensor.tick_seconds:g} s; "
        f"manager parallel_jobs={MANAGER_PARALLEL_JOBS}, poll {MANAGER_POLL_SECONDS} s"
    )
    print(f"{'':<{width}}  {'openeo_job_sensor':>26}  {'MultiBackendJobManager':>24}")
    for name, left, right in rows:
        print(f"{name:<{width}}  {left:>26}  {right:>24}")
    print(
        f"\nsensor side, the whole backfill (submission runs, {len(backfill)} ticks, download runs): "
        f"{kinds(sensor.backfill_requests)}"
    )
    print(
        f"manager, its whole run ({manager.run_polls} polls, downloads included): {kinds(manager.backfill_requests)}"
    )
    print(
        "CPU: the sensor side's submission runs, ticks (their thread) and download runs (their process); "
        "the manager's thread during its run; the embedded backend's threads are in neither"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--partitions", type=int, default=20, help="partitions of the backfill run to its end (one job each)"
    )
    parser.add_argument(
        "--job-seconds",
        type=float,
        default=60.0,
        help="how long one job runs on the backend (CDSE's last minutes; well over 2 x 5 s start spacing)",
    )
    parser.add_argument(
        "--history", type=int, default=500, help="finished jobs on the account before the backfill"
    )
    parser.add_argument(
        "--levels",
        type=lambda text: sorted(int(level) for level in text.split(",")),
        default=[40, 200, 500],
        help="awaited-job counts at which requests per tick are measured (comma-separated)",
    )
    parser.add_argument("--ticks-per-level", type=int, default=3)
    parser.add_argument(
        "--tick-seconds", type=float, default=None, help="sensor interval (default: its minimum interval)"
    )
    parser.add_argument("--timeout-seconds", type=float, default=6 * 3600)
    args = parser.parse_args()

    args.access_log, args.timeline = AccessLog(), JobTimeline()
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_log.setLevel(logging.INFO)
    werkzeug_log.propagate = False
    werkzeug_log.addHandler(args.access_log)
    runner_log = logging.getLogger(JOB_RUNNER_LOGGER)
    runner_log.setLevel(logging.INFO)
    runner_log.addHandler(args.timeline)
    runner_log.propagate = False
    logging.getLogger("dagster").setLevel(logging.WARNING)  # the sensor's one line per tick

    with tempfile.TemporaryDirectory(prefix="sensor-backfill-") as temporary:
        root = Path(temporary)
        bursts_file = root / "bursts.geojson"
        bursts = write_burst_file(bursts_file, -(-(args.partitions + max(args.levels)) // WINDOWS_PER_BURST))
        history_dir = root / "history-backend"
        with running_backend(
            backend_config(history_dir, 0, bursts_file, max_running_jobs=16, min_seconds_between_starts=0)
        ) as url:
            port = int(url.rsplit(":", 1)[1])
            print(f"history: {args.history} finished jobs of someone else on the account", flush=True)
            run_history(url, args.history, bursts_file)
            wait_until(
                lambda: sum(backend_statuses(history_dir)[status] for status in TERMINAL) >= args.history,
                1800,
                "history jobs ended",
            )
        home = root / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        backend_url = f"http://127.0.0.1:{port}"
        os.environ.update(chain_environment(home, root / "data", backend_url, bursts_file))
        sensor, jobs, level_jobs, seconds_per_pair = sensor_side(
            args, root, history_dir, port, bursts_file, bursts
        )
        manager = manager_side(args, root, history_dir, bursts_file, jobs, level_jobs, seconds_per_pair)
    report(sensor, manager, args)


if __name__ == "__main__":
    main()
