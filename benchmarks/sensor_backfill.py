"""What ``openeo_job_sensor`` costs the backend per tick, and how busy it keeps the backend's job slots.

A backfill of many partitions is submitted first with no free slot (every job stays ``created``),
so that afterwards only the sensor starts jobs. The sensor is then evaluated every
``--tick-seconds`` as the daemon would (the download runs it requests are not executed: they
run in their own processes under the daemon and do not delay the next tick). The embedded
backend runs in this process; every HTTP request it serves is counted server-side, per tick, and
its job runner's own log records give the exact start and end of every job.

Run: ``.venv/bin/python benchmarks/sensor_backfill.py [--bursts 6] [--job-seconds-per-pair 0.2]``
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from flask import request
from werkzeug.serving import make_server

from coherence_assets.embedded_backend.app import STATE_EXTENSION, create_app
from coherence_assets.embedded_backend.config import BackendConfig

WINDOWS_2023 = ("2023-01-01", "2023-04-01", "2023-07-01", "2023-10-01")
TERMINAL = ("finished", "error", "canceled")
JOB_RUNNER_LOGGER = "coherence_assets.embedded_backend.job_runner"
TRANSITION = re.compile(r"^job (?P<job_id>\S+): (?P<before>\w+) -> (?P<after>\w+)")
AUTH_PATHS = (
    "/",
    "/.well-known/openeo",
    "/credentials/oidc",
    "/oidc/.well-known/openid-configuration",
    "/oidc/token",
    "/credentials/basic",
)


class RequestCounter:
    """Requests the backend served since the last ``take()``, by kind; fed by a Flask hook."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def record(self) -> None:
        rule = request.url_rule.rule if request.url_rule is not None else request.path
        if rule == "/jobs" and request.method == "GET":
            kind = "list"
        elif rule == "/jobs/<job_id>/results" and request.method == "POST":
            kind = "start"
        elif rule in AUTH_PATHS:
            kind = "auth"
        else:
            kind = f"{request.method} {rule}"
        with self._lock:
            self._counts[kind] += 1

    def take(self) -> Counter[str]:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts


class JobTimeline(logging.Handler):
    """Start and end instants of every job, from the job runner's state-change log records."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = TRANSITION.match(record.getMessage())
        if match is None:
            return
        if match["after"] == "running":
            self.started[match["job_id"]] = record.created
        elif match["before"] == "running":
            self.ended[match["job_id"]] = record.created


@contextmanager
def counting_backend(config: BackendConfig, counter: RequestCounter) -> Iterator[str]:
    """The embedded backend in a thread, as ``running_backend`` serves it, with every request counted."""
    app = create_app(config)
    app.before_request(counter.record)
    server = make_server(config.host, config.port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{config.host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
        app.extensions[STATE_EXTENSION].close()


def job_status_counts(jobs_database: Path) -> Counter[str]:
    """Jobs by status, read from the backend's own store (no HTTP request, so nothing is counted)."""
    with closing(sqlite3.connect(f"file:{jobs_database}?mode=ro", uri=True)) as connection:
        return Counter(dict(connection.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")))


@dataclass
class Tick:
    seconds: float  # since the first tick
    statuses: Counter[str]  # before the tick
    requests: Counter[str]
    evaluation_seconds: float

    @property
    def in_flight(self) -> int:
        return self.statuses["queued"] + self.statuses["running"]


@dataclass
class Benchmark:
    ticks: list[Tick] = field(default_factory=list)
    submission_requests: Counter[str] = field(default_factory=Counter)
    submission_seconds: float = 0.0


def configure_environment(backend_url: str, root: Path) -> None:
    """Point the project at the in-process backend exactly as at CDSE (OIDC client credentials)."""
    os.environ.update(
        {
            "DAGSTER_HOME": str(root / "dagster_home"),
            "COHERENCE_DATA_DIR": str(root / "data"),
            "OPENEO_BACKEND_URL": backend_url,
            "COHERENCE_CATALOGUE_URL": f"{backend_url}/odata/v1",
            "OPENEO_AUTH_METHOD": "client_credentials",
            "OPENEO_AUTH_CLIENT_ID": "coherence-assets",
            "OPENEO_AUTH_CLIENT_SECRET": "local-secret",
            "OPENEO_AUTH_PROVIDER_ID": "local",
        }
    )


def run_benchmark(
    args: argparse.Namespace, backend_url: str, root: Path, counter: RequestCounter
) -> Benchmark:
    configure_environment(backend_url, root)
    # Imported only now: the definitions read the environment when they load.
    from coherence_assets.definitions import defs
    from coherence_assets.defs.assets.burst_catalogue import burst_catalogue
    from coherence_assets.defs.assets.coherence_job import coherence_job
    from coherence_assets.defs.assets.insar_pairs import insar_pairs
    from coherence_assets.defs.resources import OpenEOBackend
    from coherence_assets.defs.sensors import openeo_job_sensor
    from coherence_assets.demo import QUIET_RUN_CONFIG

    (root / "dagster_home").mkdir()
    (root / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    instance = dg.DagsterInstance.local_temp(str(root / "dagster_home"))
    resources = defs.resources
    sensor_backend = OpenEOBackend(
        url=backend_url,
        max_running_jobs=args.max_running_jobs,
        min_seconds_between_starts=args.start_spacing,
    )
    # No free slot while submitting: every job stays created and only the sensor starts jobs.
    submit_backend = OpenEOBackend(url=backend_url, max_running_jobs=0)
    assets = [burst_catalogue, insar_pairs, coherence_job]
    dg.materialize(
        assets,
        selection=[burst_catalogue],
        instance=instance,
        resources=resources,
        run_config=QUIET_RUN_CONFIG,
    )
    bursts = sorted(instance.get_dynamic_partitions("burst"))[: args.bursts]
    benchmark = Benchmark()
    submission_started = time.monotonic()
    counter.take()
    for burst in bursts:
        for window in WINDOWS_2023:
            dg.materialize(
                assets,
                selection=[insar_pairs, coherence_job],
                partition_key=f"{burst}|{window}",
                instance=instance,
                resources={**resources, "openeo_backend": submit_backend},
                run_config=QUIET_RUN_CONFIG,
            )
    benchmark.submission_seconds = time.monotonic() - submission_started
    benchmark.submission_requests = counter.take()
    jobs_database = root / "backend" / "openeo" / "jobs.sqlite3"
    print(
        f"submitted {sum(job_status_counts(jobs_database).values())} jobs for {len(bursts)} bursts x "
        f"{len(WINDOWS_2023)} windows in {benchmark.submission_seconds:.1f} s; ticking every {args.tick_seconds} s",
        flush=True,
    )

    sensor_resources = {**resources, "openeo_backend": sensor_backend}
    cursor: str | None = None
    first_tick = time.monotonic()
    deadline = first_tick + args.timeout_seconds
    while True:
        tick_started = time.monotonic()
        statuses = job_status_counts(jobs_database)
        if sum(statuses[status] for status in TERMINAL) == sum(statuses.values()):
            return benchmark
        if tick_started > deadline:
            raise TimeoutError(f"jobs not all done after {args.timeout_seconds} s: {dict(statuses)}")
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=sensor_resources
        )
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            result = openeo_job_sensor.evaluate_tick(context)
        cursor = result.cursor if result.cursor is not None else cursor
        evaluation_seconds = time.monotonic() - tick_started
        benchmark.ticks.append(Tick(tick_started - first_tick, statuses, counter.take(), evaluation_seconds))
        time.sleep(max(0.0, tick_started + args.tick_seconds - time.monotonic()))  # the daemon's interval


def print_report(benchmark: Benchmark, timeline: JobTimeline, args: argparse.Namespace) -> None:
    print(
        f"\n{'tick':>4} {'t/s':>6} {'created':>7} {'queued':>6} {'running':>7} {'done':>4} {'in flight':>9}"
        f" {'requests':>8} {'list':>4} {'start':>5} {'auth':>4} {'other':>5} {'eval/s':>6}"
    )
    for number, tick in enumerate(benchmark.ticks, start=1):
        requests = tick.requests
        other = sum(requests.values()) - requests["list"] - requests["start"] - requests["auth"]
        print(
            f"{number:>4} {tick.seconds:>6.1f} {tick.statuses['created']:>7} {tick.statuses['queued']:>6}"
            f" {tick.statuses['running']:>7} {tick.statuses['finished']:>4} {tick.in_flight:>9}"
            f" {sum(requests.values()):>8} {requests['list']:>4} {requests['start']:>5} {requests['auth']:>4}"
            f" {other:>5} {tick.evaluation_seconds:>6.2f}"
        )

    print("\nrequests per tick against jobs in flight (queued + running) at the tick")
    print(f"{'in flight':>9} {'ticks':>5} {'requests/tick':>13} {'non-start requests/tick':>23}")
    for in_flight in sorted({tick.in_flight for tick in benchmark.ticks}):
        ticks = [tick for tick in benchmark.ticks if tick.in_flight == in_flight]
        total = sum(sum(tick.requests.values()) for tick in ticks)
        starts = sum(tick.requests["start"] for tick in ticks)
        print(
            f"{in_flight:>9} {len(ticks):>5} {total / len(ticks):>13.2f} {(total - starts) / len(ticks):>23.2f}"
        )

    jobs = sorted(timeline.ended)
    durations = [timeline.ended[job] - timeline.started[job] for job in jobs]
    wall = max(timeline.ended.values()) - min(timeline.started.values())
    busy = sum(durations)
    mean_duration = busy / len(durations)
    all_requests = sum((tick.requests for tick in benchmark.ticks), Counter())
    tracked = sum(benchmark.ticks[0].statuses.values())
    polling_requests = sum(
        tick.statuses["created"] + tick.in_flight + tick.requests["auth"] + tick.requests["start"]
        for tick in benchmark.ticks
    )
    print(
        f"\njobs: {len(jobs)}, mean running time {mean_duration:.2f} s, tick {args.tick_seconds} s, "
        f"start spacing {args.start_spacing} s, backend slots {args.max_running_jobs}"
    )
    print(
        f"sensor requests: {sum(all_requests.values())} over {len(benchmark.ticks)} ticks "
        f"({sum(all_requests.values()) / len(benchmark.ticks):.2f} per tick; list {all_requests['list']}, "
        f"start {all_requests['start']}, auth {all_requests['auth']}); for {tracked} tracked jobs that is "
        f"{sum(all_requests.values()) / len(benchmark.ticks) / tracked:.3f} requests per job and tick"
    )
    print(
        f"one status request per unfinished job instead of the listing would have cost {polling_requests} "
        f"requests: ratio listing/polling = {sum(all_requests.values()) / polling_requests:.2f}"
    )
    print(
        f"auth share of sensor requests: {all_requests['auth'] / sum(all_requests.values()):.0%} "
        f"({all_requests['auth'] / len(benchmark.ticks):.1f} per tick: a new connection and token each tick)"
    )
    print(
        f"submission: {sum(benchmark.submission_requests.values())} requests for {tracked} jobs "
        f"in {benchmark.submission_seconds:.1f} s ({dict(benchmark.submission_requests)})"
    )
    spacing_bound = min(1.0, mean_duration / (args.max_running_jobs * args.start_spacing))
    # A freed slot waits on average half a tick for the next listing to notice it.
    tick_model = mean_duration / (mean_duration + args.tick_seconds / 2)
    print(
        f"slot utilisation = busy {busy:.1f} s / ({args.max_running_jobs} slots x {wall:.1f} s from first start "
        f"to last end) = {busy / (args.max_running_jobs * wall):.2f}  (ideal wall {busy / args.max_running_jobs:.1f} s)"
    )
    print(
        f"expected from the tick alone: duration / (duration + tick/2) = {tick_model:.2f}; "
        f"the start spacing alone caps it at {spacing_bound:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, default=6, help="how many of the packaged bursts (max 6)")
    parser.add_argument("--job-seconds-per-pair", type=float, default=0.5)
    parser.add_argument("--tick-seconds", type=float, default=1.0, help="the sensor's interval (daemon: 30)")
    parser.add_argument("--start-spacing", type=float, default=0.5, help="seconds between starts (CDSE: 5)")
    parser.add_argument("--max-running-jobs", type=int, default=2)
    parser.add_argument("--timeout-seconds", type=float, default=150.0)
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # else one access-log line per request
    timeline = JobTimeline()
    runner_log = logging.getLogger(JOB_RUNNER_LOGGER)
    runner_log.setLevel(logging.INFO)
    runner_log.addHandler(timeline)
    counter = RequestCounter()
    with tempfile.TemporaryDirectory(prefix="sensor-backfill-") as temporary:
        root = Path(temporary)
        config = BackendConfig(
            data_dir=root / "backend",
            port=0,
            scene_shape=(64, 128),
            max_running_jobs=args.max_running_jobs,
            min_seconds_between_starts=args.start_spacing,
            job_seconds_per_pair=args.job_seconds_per_pair,
        )
        with counting_backend(config, counter) as url:
            benchmark = run_benchmark(args, url, root, counter)
    if not timeline.ended:
        raise RuntimeError(
            f"no job state changes were logged by {JOB_RUNNER_LOGGER}: did its messages change?"
        )
    print_report(benchmark, timeline, args)


if __name__ == "__main__":
    main()
