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
2. Daemon: a persistent code server (``dagster api grpc``) and ``dagster-daemon run``
   with ``deploy/dagster.yaml``'s run queue and sensors (SQLite instead of PostgreSQL), both in a
   cgroup this script creates: cgroup v2 ``cpu.stat usage_usec`` where the machine runs v2 alone,
   else v1 ``cpuacct.usage`` (a hybrid machine's v2 tree has no CPU controller). Idle CPU for
   ``--idle-seconds``, then ``coherence-assets backfill`` of ``--partitions`` partitions
   (100 bursts x 10 quarters; 250 x 40 for 10,000) on the account with history, until the
   backfill completes: CPU of the whole process tree per partition, runs and processes per
   partition, requests per partition. Where that CPU went: every process of the cgroup is sampled
   (``/proc/<pid>/stat``) each 0.1 s and its CPU counted by kind (daemon, code server, its proxy, run
   workers, the ``backfill`` command); run workers split into before, in and after their steps (the
   steps' span from the run's events); the event-log rows the runs wrote, by type; the backfill
   daemon's iterations.
3. Sensor ticks: ``benchmarks/tick_cost.py``'s ``tick_cpu`` (``run_tick`` as the sensor calls it, on a
   tree of 10 and ``--done-levels`` done partitions beside 10 active ones): median CPU per tick.

Run it as root (it creates cgroups); a default run (1,000 partitions) took 32 minutes here on a busy machine,
6 on a quiet one (with 10 runs instead of 22):

    .venv/bin/python benchmarks/scale_backfill.py [--partitions 1000 | --ten-thousand]
"""

from __future__ import annotations

import argparse
import compileall
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager, suppress
from dataclasses import dataclass
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
from embedded_openeo.server import running_backend

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
LONG_JOB_SECONDS_PER_PAIR = 600.0  # no job ends while we measure
LOWERED_START_SPACING_SECONDS = 0.5
CGROUP_V2, CGROUP_V1_CPUACCT = Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/cpuacct")
DONE_STATES = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
JOB_READS = ("list", "describe")
CODE_LOCATION = Path(__file__).with_name("scale_code_location.py")


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


# what a process of the cgroup is, by its command line (first match wins)
PROCESS_KINDS = (
    # the code server starts each run's worker with multiprocessing's spawn (dagster/_grpc/server.py)
    ("run worker", "multiprocessing.spawn"),
    ("multiprocessing's resource tracker", "multiprocessing.resource_tracker"),
    ("code server", "api grpc"),
    ("code server's proxy", "code-server start"),
    ("daemon", "dagster-daemon"),
    ("coherence-assets backfill", "coherence-assets backfill"),
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_kind(pid: int) -> str | None:
    """The kind of ``pid`` (see PROCESS_KINDS), ``other: <command>``, or None if it has ended."""
    try:
        command = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return None
    for kind, marker in PROCESS_KINDS:
        if marker in command:
            return kind
    return f"other: {command[:60]}"


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (its own, not its reaped children's), or None if it has ended."""
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15 of proc(5)


class ProcessSampler:
    """CPU per kind of process of a cgroup from now on, from each process's last sample (``sample()``
    every ~0.1 s): the processes already there count from now, those started later from their start.

    A process's CPU after its last sample, and processes that lived between two samples, are missed:
    the report shows that rest as "unattributed" (the cgroup's total minus the samples)."""

    def __init__(self, group: CpuGroup) -> None:
        self.group = group
        self.kinds: dict[int, str] = {}
        self.baseline: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.history: dict[int, list[tuple[float, float]]] = {}  # per process: (time.time(), CPU)
        self.sample()
        self.baseline = dict(self.last)
        self.long_lived = set(self.last)

    def sample(self) -> None:
        for pid in self.group.pids():
            # a shell that joined the group execs the command: ask again until it has
            if pid not in self.kinds or self.kinds[pid].startswith("other: sh -c"):
                kind = process_kind(pid)
                if kind is None:
                    continue
                self.kinds[pid] = kind
            cpu = process_cpu_seconds(pid)
            if cpu is not None:
                self.last[pid] = cpu
                self.history.setdefault(pid, []).append((time.time(), cpu))

    def sample_until(self, stop: threading.Event) -> None:
        while not stop.wait(0.1):
            self.sample()

    def cpu_at(self, pid: int, moment: float) -> float:
        """``pid``'s CPU at its last sample before ``moment`` (0 before its first)."""
        return max((cpu for sampled, cpu in self.history.get(pid, []) if sampled <= moment), default=0.0)

    def cpu(self) -> Counter[str]:
        """CPU seconds per kind of process."""
        cpu: Counter[str] = Counter()
        for pid, last in self.last.items():
            cpu[self.kinds[pid]] += last - self.baseline.get(pid, 0.0)
        return cpu

    def started(self) -> Counter[str]:
        """Processes started since, per kind."""
        return Counter(self.kinds[pid] for pid in self.last if pid not in self.long_lived)


def compile_bytecode() -> None:
    """Compiles the environment's modules, as a deployment's install does (pip compiles them; uv with
    ``--compile-bytecode``). Without ``.pyc`` files (``uv pip install`` writes none, and this machine
    sets ``PYTHONDONTWRITEBYTECODE``) every run worker compiled Dagster's and the project's source
    again: 40 % of its CPU in a profile."""
    for path in (sysconfig.get_paths()["purelib"], REPO / "coherence_assets"):
        compileall.compile_dir(path, quiet=1, workers=os.cpu_count() or 1)


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
    from scale_code_location import defs

    from coherence_assets.bursts.burst_catalogue import store_burst_catalogue
    from coherence_assets.jobs.partition_submission import SubmissionRun, submit_partition
    from coherence_assets.pairs.pair_table import read_pairs, store_window_pairs
    from coherence_assets.partition_keys import split_partition_key

    resources = defs.resources
    store, backend, coherence = (
        resources["storage"].store,
        resources["openeo_backend"],
        resources["coherence"],
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
    cpu_each, wall = [], time.monotonic()
    for key in partitions:
        started = time.process_time()
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
        cpu_each.append(time.process_time() - started)
    return {"cpu": sum(cpu_each), "cpu_each": cpu_each, "wall": time.monotonic() - wall}


def first_and_steady_cpu(floor: dict[str, Any]) -> tuple[float, float]:
    """The floor's first partition, which pays the lazy imports and first connections, and the mean of the others."""
    first, *rest = floor["cpu_each"]
    return first, sum(rest) / len(rest) if rest else first


def floor_line(floor: dict[str, Any]) -> str:
    first, steady = first_and_steady_cpu(floor)
    return f"first partition {first:.3f} CPU-s, then {steady:.4f} CPU-s each"


def floor_per_partition(floor: dict[str, Any], partitions: int) -> float:
    """The floor's CPU per partition for a run of ``partitions``, which pays its first partition's one-time
    costs once where a sample of 100 divided by 100 pays them ten times as often as a run of 1,000."""
    first, steady = first_and_steady_cpu(floor)
    return (first + (partitions - 1) * steady) / partitions


# ---- the benchmark --------------------------------------------------------------------------------


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
                "api",
                "grpc",
                "-f",
                str(CODE_LOCATION),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "--location-name",
                "coherence_assets",
            ]
        ),
        env=env,
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


@dataclass
class RunWorker:
    """A run's worker process and when its steps ran, from the run's events."""

    pid: int
    steps_start: float
    steps_end: float


def read_runs(home: Path, runs: list[Any]) -> tuple[Counter[str], list[RunWorker]]:
    """The event-log rows the backfill's runs wrote, by type (``LOG`` for plain log lines), and each run's
    worker: its pid (the code server's "Started process for run (pid: N)") and its steps' span."""
    import dagster as dg

    counts: Counter[str] = Counter()
    workers = []
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for run in runs:
            pid, starts, ends = None, [], []
            for entry in instance.all_logs(run.run_id):
                event_type = entry.dagster_event.event_type_value if entry.dagster_event else "LOG"
                counts[event_type] += 1
                if found := re.search(r"Started process for run \(pid: (\d+)\)", entry.message or ""):
                    pid = int(found.group(1))
                if event_type == "STEP_START":
                    starts.append(entry.timestamp)
                elif event_type in ("STEP_SUCCESS", "STEP_FAILURE"):
                    ends.append(entry.timestamp)
            if pid is not None and starts and ends:
                workers.append(RunWorker(pid, min(starts), max(ends)))
    return counts, workers


def run_worker_phases(sampler: ProcessSampler, workers: list[RunWorker]) -> dict[str, float]:
    """The run workers' CPU before their first step (process start, imports, code location, instance,
    resources), in their steps (the assets' work and the events they write) and after them."""
    phases: Counter[str] = Counter()
    for worker in workers:
        before, through = (
            sampler.cpu_at(worker.pid, worker.steps_start),
            sampler.cpu_at(worker.pid, worker.steps_end),
        )
        phases["before the steps"] += before
        phases["steps"] += through - before
        phases["after the steps"] += sampler.last.get(worker.pid, through) - through
    return dict(phases)


def backfill_iterations(daemon_log: Path, backfill_id: str) -> int:
    """How often the backfill daemon evaluated the backfill (its "Evaluating asset backfill" line)."""
    return daemon_log.read_text().count(f"Evaluating asset backfill {backfill_id}")


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

            sampler = ProcessSampler(group)
            stop_sampling = threading.Event()
            # in a thread of its own: the main thread's polls of the instance would leave gaps
            sampling = threading.Thread(target=sampler.sample_until, args=(stop_sampling,), daemon=True)
            sampling.start()
            access_log.take()
            cpu, wall = group.cpu_seconds(), time.monotonic()
            window_span = f"{FIRST_WINDOW.isoformat()}..{quarters(FIRST_WINDOW, windows)[-1]}"
            launch = subprocess.Popen(
                group.command(
                    [
                        str(VENV_BIN / "coherence-assets"),
                        "backfill",
                        "--bursts",
                        "all",
                        "--windows",
                        window_span,
                    ]
                ),
                env=env,
                cwd=root,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            launched, errors = launch.communicate()  # the command is part of the backfill's cost: sampled too
            if launch.returncode != 0:
                raise RuntimeError(f"coherence-assets backfill failed:\n{errors[-3000:]}")
            backfill_id = launched.split()[1]
            print(f"backfill {backfill_id}: {bursts} bursts x {windows} quarters", flush=True)
            status, runs = "REQUESTED", []
            last_poll = 0.0
            while status not in DONE_STATES:
                time.sleep(0.2)
                if time.monotonic() - last_poll > 5:
                    last_poll = time.monotonic()
                    status, runs = backfill_state(home, backfill_id)
                    if time.monotonic() - wall > args.timeout_seconds:
                        raise TimeoutError(f"backfill {backfill_id} still {status}; see {home}")
            stop_sampling.set()
            sampling.join()
            events, workers = read_runs(home, runs)
            result.update(
                status=status,
                cpu=group.cpu_seconds() - cpu,
                wall=time.monotonic() - wall,
                requests=access_log.take(),
                runs=len(runs),
                failed_runs=sum(run.status.value != "SUCCESS" for run in runs),
                processes=sum(sampler.started().values()),
                started=sampler.started(),
                cpu_by_kind=sampler.cpu(),
                events=events,
                phases=run_worker_phases(sampler, workers),
                measured_workers=len(workers),
                iterations=backfill_iterations(root / "daemon.log", backfill_id),
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


def print_attribution(daemon: dict, partitions: int) -> None:
    """Where the backfill's CPU went, by kind of process, and what the runs wrote to the event log."""
    by_kind: Counter[str] = daemon["cpu_by_kind"]
    print(f"backfill CPU by process (CPU-s, per partition, processes started; {partitions} partitions):")
    for kind, seconds in by_kind.most_common():
        print(f"  {kind:<40} {seconds:7.1f}  {seconds / partitions:.4f}  {daemon['started'][kind]}")
    rest = daemon["cpu"] - sum(by_kind.values())
    print(f"  {'unattributed (between samples)':<40} {rest:7.1f}  {rest / partitions:.4f}")
    runs = daemon["measured_workers"]
    print(f"run workers by phase (CPU-s; {runs} runs whose worker and steps were found in their events):")
    for phase, seconds in daemon["phases"].items():
        print(
            f"  {phase:<40} {seconds:7.1f}  {seconds / max(runs, 1):.2f} per run  {seconds / partitions:.4f} per partition"
        )
    events: Counter[str] = daemon["events"]
    print(f"event-log rows of the backfill's runs: {sum(events.values())} ({events['LOG']} log lines)")
    for kind, number in events.most_common():
        print(f"  {kind:<40} {number:7d}  {number / partitions:.2f} per partition")
    print(f"backfill daemon iterations on this backfill: {daemon['iterations']}", flush=True)


def report(
    args: argparse.Namespace, empty: dict, history: dict, daemon: dict, ticks: dict[str, TickCost]
) -> None:
    count, floor_count = args.partitions, args.floor_partitions
    floor_cpu = floor_per_partition(history, count)
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
        (
            f"  floor: the same steps in one process, for {count} partitions",
            f"{floor_cpu:.4f} CPU-s (its first partition {history['cpu_each'][0]:.3f})",
        ),
        ("  ratio (target <= 5)", f"{backfill_cpu / floor_cpu:.1f}x"),
        # the same work on the empty account, in another process: how far the floor moves between two measurements
        ("  against the empty account's floor", f"{backfill_cpu / floor_per_partition(empty, count):.1f}x"),
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

    compile_bytecode()
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
        print(f"floor, empty account: {floor_line(empty)}", flush=True)

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
            print(f"floor, {args.history} jobs of history: {floor_line(history)}", flush=True)
            daemon = measure_daemon(
                args, root, environment(root, root / "data", url, bursts_file), access_log
            )
            print(
                f"backfill: {daemon['cpu']:.1f} CPU-s, {daemon['runs']} runs, {daemon['processes']} processes, "
                f"{daemon['wall']:.0f} s ({daemon['status']})",
                flush=True,
            )
            print_attribution(daemon, args.partitions)
        shutil.rmtree(root / "dagster_home", ignore_errors=True)
    ticks = {str(count): tick_cpu(count) for count in args.done_levels}  # tick's benchmark: its own tree
    report(args, empty, history, daemon, ticks)


if __name__ == "__main__":
    main()
