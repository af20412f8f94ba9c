"""A backfill at scale through the real ``dagster-daemon``: what orchestration costs per partition
against the plain-Python floor of the same work (issue 16).

Everything runs against the embedded backend, which this process serves (its access log counts
every request by kind). Its jobs run for an hour, so that none ends during the measurement: the
backfill's cost is the submission's (``insar_pairs`` + ``coherence_job``) plus what the daemon
and its sensors spend meanwhile, never downloads (``sensor_backfill.py`` follows jobs to their
end). The start spacing is lowered to 0.5 s (CDSE: 5 s) so that the sensor's starts never wait.

1. Floor: ``store_window_pairs`` and ``submit_partition`` called in one process for
   ``--floor-partitions`` partitions, on an empty account and again (new data folder) on an
   account with ``--history`` finished jobs of someone else: CPU per partition and job-read
   requests (``GET /jobs``, ``GET /jobs/{id}``) per partition on both.
2. Daemon: a persistent code server (``dagster code-server start``) and ``dagster-daemon run``
   with ``deploy/dagster.yaml``'s run queue and sensors (SQLite instead of PostgreSQL), both in a
   cgroup this script creates: cgroup v2 ``cpu.stat usage_usec`` where the machine runs v2 alone,
   else v1 ``cpuacct.usage`` (a hybrid machine's v2 tree has no CPU controller). Idle CPU for
   ``--idle-seconds``, then ``coherence-assets backfill`` of ``--partitions`` partitions
   (100 bursts x 10 quarters; 250 x 40 for 10,000) on the account with history, until the
   backfill completes: CPU of the whole process tree per partition, runs and processes per
   partition (every process seen in the cgroup, sampled each 0.2 s), requests per partition.
3. Sensor ticks: ``benchmarks/tick_cost.py``'s ``tick_cpu`` (``run_tick`` as the sensor calls it, on a
   tree of 10 and ``--done-levels`` done partitions beside 10 active ones): median CPU per tick.

Run it as root (it creates cgroups); a default run (1,000 partitions) took 32 minutes here on a busy machine:

    .venv/bin/python benchmarks/scale_backfill.py [--partitions 1000 | --ten-thousand]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import yaml
from sensor_backfill import (
    FIRST_WINDOW,
    AccessLog,
    backend_config,
    backend_statuses,
    chain_environment,
    kinds,
    quarters,
    run_history,
    wait_until,
    write_burst_file,
)
from tick_cost import TickCost, tick_cpu

from coherence_assets.jobs.ledger import TERMINAL
from coherence_assets.settings import LOCAL_GITHUB_API_PATH
from embedded_openeo.server import running_backend

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
LONG_JOB_SECONDS_PER_PAIR = 600.0  # no job ends while we measure
LOWERED_START_SPACING_SECONDS = 0.5
CGROUP_V2, CGROUP_V1_CPUACCT = Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/cpuacct")
DONE_STATES = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
JOB_READS = ("list", "describe")


class CpuGroup:
    """A cgroup of our own whose CPU usage covers every process started in it and their children."""

    def __init__(self, name: str) -> None:
        self.v2 = (CGROUP_V2 / "cgroup.controllers").exists()
        self.path = (CGROUP_V2 if self.v2 else CGROUP_V1_CPUACCT) / f"scale-backfill-{name}-{os.getpid()}"
        self.path.mkdir()

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` started inside the group (a shell joins it, then becomes the command)."""
        return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(self.path), *argv]

    def cpu_seconds(self) -> float:
        if self.v2:
            stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
            return int(stat["usage_usec"]) / 1e6
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def pids(self) -> set[int]:
        return {int(pid) for pid in (self.path / "cgroup.procs").read_text().split()}

    def remove(self) -> None:
        """Ends what is left in the group (a code server's gRPC child can outlive its parent), then removes it."""
        for pid in self.pids():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not self.pids(), 60, f"processes of {self.path} ended")
        self.path.rmdir()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def layout(partitions: int) -> tuple[int, int]:
    """(bursts, quarters): hundreds of bursts over a few years, as users backfill."""
    windows = 10 if partitions <= 1000 else 40
    return -(-partitions // windows), windows


def environment(root: Path, data_dir: Path, backend_url: str, bursts_file: Path) -> dict[str, str]:
    return {**os.environ, **chain_environment(root / "dagster_home", data_dir, backend_url, bursts_file)}


def run_command(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    """A command's output; its error output's end, raised, when it fails."""
    completed = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout


def run_worker(env: dict[str, str], *arguments: str) -> dict[str, Any]:
    """This script as a worker (``--worker ...``) in a process of its own; its JSON answer."""
    output = run_command([sys.executable, __file__, *arguments], env, REPO)
    return json.loads(output.strip().splitlines()[-1])


# ---- workers (run in their own process) ----------------------------------------------------------


def floor_worker(partitions: list[str]) -> dict[str, Any]:
    """The same steps as the backfill's runs, called in one process: CPU and wall per partition."""
    from coherence_assets.bursts.burst_catalogue import store_burst_catalogue
    from coherence_assets.definitions import defs
    from coherence_assets.jobs.partition_submission import SubmissionRun, submit_partition
    from coherence_assets.pairs.pair_table import read_pairs, store_window_pairs
    from coherence_assets.partition_keys import split_partition_key

    resources = defs.resources
    store, backend, coherence = (
        resources["storage"].store,
        resources["openeo_backend"],
        embedded_github(resources["coherence"]),
    )
    store_burst_catalogue(store, resources["bursts_file"].path)
    client = resources["catalogue"].client()
    backend.connect()  # the login, once, as a run worker's first connection
    run = SubmissionRun(
        store,
        backend.connect,
        backend_url=backend.root_url,
        limits=backend.limits(),
        make_request=coherence.request,
        max_attempts=coherence.max_attempts,
        holder="floor",
        start_jobs_now=False,  # as a backfill's runs: the sensor starts jobs
    )
    cpu, wall = time.process_time(), time.monotonic()
    for key in partitions:
        burst, window = split_partition_key(key)
        store_window_pairs(
            store, client, burst, window, coherence.polarisation, coherence.temporal_baselines_days
        )
        submit_partition(
            run,
            burst,
            window,
            read_pairs(store, burst, window),
            submitted_before=False,  # as coherence_job on an instance that never materialised the partition
        )
    return {"cpu": time.process_time() - cpu, "wall": time.monotonic() - wall}


# ---- the benchmark --------------------------------------------------------------------------------


def embedded_github(coherence: Any) -> Any:
    """The ``coherence`` resource asking the embedded backend's stand-in of GitHub's API, not api.github.com,
    which commit APEx's main is at (this machine has no internet; the local resources do the same)."""
    url = f"{os.environ['OPENEO_BACKEND_URL']}{LOCAL_GITHUB_API_PATH}"
    return type(coherence)(**{**coherence.model_dump(), "github_api_url": url})


# The code location the code server loads: the project's definitions, with embedded_github.
CODE_LOCATION = """
import dagster as dg
import coherence_assets.definitions as project_module
from scale_backfill import embedded_github

project = project_module.defs
defs = dg.Definitions(
    assets=project.assets, jobs=project.jobs, sensors=project.sensors, schedules=project.schedules,
    executor=project.executor,
    resources={**project.resources, "coherence": embedded_github(project.resources["coherence"])},
)
del project  # Dagster takes the module's one Definitions
"""


def instance_yaml() -> str:
    """deploy/dagster.yaml without its PostgreSQL storage (the instance keeps SQLite in DAGSTER_HOME)."""
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    config.pop("storage", None)
    config["telemetry"] = {"enabled": False}
    return yaml.safe_dump(config)


@contextmanager
def dagster_deployment(root: Path, env: dict[str, str], group: CpuGroup):
    """The code server and the daemon, in ``group``; stopped (SIGTERM) on exit."""
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(instance_yaml())
    port = free_port()
    workspace = root / "workspace.yaml"
    (root / "scale_definitions.py").write_text(CODE_LOCATION)
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {"grpc_server": {"host": "127.0.0.1", "port": port, "location_name": "coherence_assets"}}
                ]
            }
        )
    )
    logs = (root / "code-server.log").open("w"), (root / "daemon.log").open("w")
    code_server = subprocess.Popen(
        group.command(
            [
                str(VENV_BIN / "dagster"),
                "code-server",
                "start",
                "-f",
                str(root / "scale_definitions.py"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "--location-name",
                "coherence_assets",
            ]
        ),
        env={**env, "PYTHONPATH": str(Path(__file__).parent)},
        cwd=REPO,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    processes = [code_server]
    try:
        wait_until(lambda: port_answers(port), 120, "the code server answering")
        processes.append(
            subprocess.Popen(
                group.command([str(VENV_BIN / "dagster-daemon"), "run", "-w", str(workspace)]),
                env=env,
                cwd=REPO,
                stdout=logs[1],
                stderr=subprocess.STDOUT,
            )
        )
        yield
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:  # a busy code server may not stop on SIGTERM
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def port_answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def backfill_state(home: Path, backfill_id: str) -> tuple[str, list[Any]]:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        backfill = instance.get_backfill(backfill_id)
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    return (backfill.status.value if backfill else "MISSING"), runs


def measure_daemon(args: argparse.Namespace, root: Path, env: dict[str, str], access_log: AccessLog) -> dict:
    group = CpuGroup("daemon")
    home = Path(env["DAGSTER_HOME"])
    bursts, windows = layout(args.partitions)
    result: dict[str, Any] = {}
    try:
        with dagster_deployment(root, env, group):
            run_command(
                [
                    str(VENV_BIN / "dagster"),
                    "asset",
                    "materialize",
                    "-m",
                    "coherence_assets.definitions",
                    "--select",
                    "burst_catalogue",
                ],
                env,
                REPO,
            )
            time.sleep(30)  # the daemon's start-up and first ticks are not idling
            cpu = group.cpu_seconds()
            time.sleep(args.idle_seconds)
            result["idle"] = (group.cpu_seconds() - cpu) / args.idle_seconds
            print(f"daemon idle: {result['idle']:.4f} CPU-s/s", flush=True)

            long_lived = group.pids()
            access_log.take()
            cpu, wall = group.cpu_seconds(), time.monotonic()
            window_span = f"{FIRST_WINDOW.isoformat()}..{quarters(FIRST_WINDOW, windows)[-1]}"
            launched = run_command(
                [str(VENV_BIN / "coherence-assets"), "backfill", "--bursts", "all", "--windows", window_span],
                env,
                root,
            )
            backfill_id = launched.split()[1]
            print(f"backfill {backfill_id}: {bursts} bursts x {windows} quarters", flush=True)
            seen: set[int] = set()
            status, runs = "REQUESTED", []
            last_poll = 0.0
            while status not in DONE_STATES:
                seen |= group.pids()
                time.sleep(0.2)
                if time.monotonic() - last_poll > 5:
                    last_poll = time.monotonic()
                    status, runs = backfill_state(home, backfill_id)
                    if time.monotonic() - wall > args.timeout_seconds:
                        raise TimeoutError(f"backfill {backfill_id} still {status}; see {home}")
            result.update(
                status=status,
                cpu=group.cpu_seconds() - cpu,
                wall=time.monotonic() - wall,
                requests=access_log.take(),
                runs=len(runs),
                failed_runs=sum(run.status.value != "SUCCESS" for run in runs),
                processes=len(seen - long_lived),
            )
    finally:
        group.remove()
    return result


def measure_floor(env: dict[str, str], partitions: list[str], access_log: AccessLog) -> dict[str, Any]:
    access_log.take()
    answer = run_worker(env, "--worker", "floor", *partitions)
    answer["requests"] = access_log.take()
    return answer


def job_reads(requests: Counter[str]) -> int:
    return sum(requests[kind] for kind in JOB_READS)


def report(
    args: argparse.Namespace, empty: dict, history: dict, daemon: dict, ticks: dict[str, TickCost]
) -> None:
    count, floor_count = args.partitions, args.floor_partitions
    floor_cpu = history["cpu"] / floor_count
    backfill_cpu = daemon["cpu"] / count
    empty_total, history_total = job_reads(empty["requests"]), job_reads(history["requests"])
    empty_reads, history_reads = empty_total / floor_count, history_total / floor_count
    # a backfill's new partitions read no job at all: equal counts are 1x, not a division by zero
    reads_ratio = history_total / empty_total if empty_total else (1.0 if not history_total else float("inf"))
    tick_low = ticks[str(min(args.done_levels))].median_cpu_seconds
    tick_high = ticks[str(max(args.done_levels))].median_cpu_seconds
    ideal_wall = history["wall"] / floor_count * count
    rows = [
        ("backfill CPU per partition (whole process tree)", f"{backfill_cpu:.3f} CPU-s"),
        ("  floor: the same steps in one process", f"{floor_cpu:.3f} CPU-s"),
        ("  ratio (target <= 5)", f"{backfill_cpu / floor_cpu:.1f}x"),
        (
            "runs per partition",
            f"{daemon['runs'] / count:.3f} ({daemon['runs']} runs, {daemon['failed_runs']} not successful)",
        ),
        (
            "processes per partition (seen in the cgroup)",
            f"{daemon['processes'] / count:.3f} ({daemon['processes']})",
        ),
        ("job-read requests per partition, empty account", f"{empty_reads:.2f} ({empty_total})"),
        (f"  with {args.history} jobs of history", f"{history_reads:.2f} ({history_total})"),
        ("  ratio (target <= 1.1)", f"{reads_ratio:.2f}x"),
        (
            "requests per partition during the backfill (daemon)",
            f"{sum(daemon['requests'].values()) / count:.2f} ({kinds(daemon['requests'])})",
        ),
        (f"sensor tick CPU at {min(args.done_levels)} done partitions", f"{tick_low * 1000:.1f} ms"),
        (f"  at {max(args.done_levels)} done partitions", f"{tick_high * 1000:.1f} ms"),
        ("  ratio (target <= 2)", f"{tick_high / tick_low:.2f}x"),
        ("daemon idle CPU (target <= 0.01)", f"{daemon['idle']:.4f} CPU-s/s"),
        ("backfill wall time", f"{daemon['wall']:.0f} s ({daemon['status']})"),
        ("  ideal: the floor's wall time for as many partitions", f"{ideal_wall:.0f} s"),
        ("  ratio", f"{daemon['wall'] / ideal_wall:.1f}x"),
    ]
    bursts, windows = layout(count)
    print(
        f"\n{count} partitions ({bursts} bursts x {windows} quarters), insar_pairs + coherence_job; floor on "
        f"{floor_count}; embedded backend with jobs that outlast the run and starts spaced "
        f"{LOWERED_START_SPACING_SECONDS} s; {args.history} finished jobs of history"
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--ten-thousand", action="store_true", help="--partitions 10000 (hours)")
    parser.add_argument("--floor-partitions", type=int, default=100)
    parser.add_argument("--history", type=int, default=1000, help="finished jobs of someone else")
    parser.add_argument(
        "--done-levels", type=lambda text: [int(level) for level in text.split(",")], default=[10, 10000]
    )
    parser.add_argument("--idle-seconds", type=float, default=120.0)
    parser.add_argument("--timeout-seconds", type=float, default=3 * 3600)
    parser.add_argument("--worker", choices=["floor"], help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.worker == "floor":
        print(json.dumps(floor_worker(rest)))
        return
    if args.ten_thousand:
        args.partitions = 10000

    access_log = AccessLog()
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_log.setLevel(logging.INFO)
    werkzeug_log.propagate = False
    werkzeug_log.addHandler(access_log)
    bursts, windows = layout(args.partitions)
    with tempfile.TemporaryDirectory(prefix="scale-backfill-") as temporary:
        root = Path(temporary)
        bursts_file = root / "bursts.geojson"
        burst_keys = write_burst_file(bursts_file, bursts)
        partitions = [
            f"{burst}|{window}" for burst in burst_keys for window in quarters(FIRST_WINDOW, windows)
        ]
        sample = partitions[: args.floor_partitions]
        measured = {
            "max_running_jobs": 2,
            "min_seconds_between_starts": LOWERED_START_SPACING_SECONDS,
            "job_seconds_per_pair": LONG_JOB_SECONDS_PER_PAIR,
        }
        with running_backend(backend_config(root / "empty-backend", 0, bursts_file, **measured)) as url:
            empty = measure_floor(
                environment(root, root / "floor-empty", url, bursts_file), sample, access_log
            )
        print(f"floor, empty account: {empty['cpu'] / len(sample):.3f} CPU-s per partition", flush=True)

        history_dir = root / "history-backend"
        with running_backend(
            backend_config(history_dir, 0, bursts_file, max_running_jobs=16, min_seconds_between_starts=0)
        ) as url:
            run_history(url, args.history, bursts_file)
            wait_until(
                lambda: sum(backend_statuses(history_dir)[status] for status in TERMINAL) >= args.history,
                1800,
                "history jobs ended",
            )
        with running_backend(backend_config(history_dir, 0, bursts_file, **measured)) as url:
            env = environment(root, root / "floor-history", url, bursts_file)
            history = measure_floor(env, sample, access_log)
            print(
                f"floor, {args.history} jobs of history: {history['cpu'] / len(sample):.3f} CPU-s", flush=True
            )
            daemon = measure_daemon(
                args, root, environment(root, root / "data", url, bursts_file), access_log
            )
            print(
                f"backfill: {daemon['cpu']:.1f} CPU-s, {daemon['runs']} runs, {daemon['processes']} processes, "
                f"{daemon['wall']:.0f} s ({daemon['status']})",
                flush=True,
            )
        shutil.rmtree(root / "dagster_home", ignore_errors=True)
    ticks = {str(count): tick_cpu(count) for count in args.done_levels}  # tick's benchmark: its own tree
    report(args, empty, history, daemon, ticks)


if __name__ == "__main__":
    main()
