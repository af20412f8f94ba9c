"""The idle deployment's CPU (issue 16: <= 0.01 CPU-s/s): ``dagster-daemon`` and its persistent code
server with ``deploy/dagster.yaml``, as ``scale_backfill.py`` runs them, with nothing to do.

Both run in a cgroup of their own (``scale_backfill.CpuGroup``); after ``burst_catalogue`` is
materialised and ``--settle`` seconds of start-up, the group's CPU over ``--seconds`` is the idle
CPU. It also prints each process's share (``/proc/<pid>/stat``) and, with ``--profile``, which of
Dagster's loops the daemon's and the code server's busy time goes to (``py-spy record``).

The instance keeps SQLite in ``DAGSTER_HOME`` as in ``scale_backfill.py``, or with ``--postgres``
uses ``deploy/dagster.yaml`` unchanged on a throwaway PostgreSQL server (the tests' one: Debian's
binaries, ``fsync=off``), whose processes join the cgroup so that the database's CPU counts too.

    sudo PYTHONPATH=. .venv/bin/python benchmarks/idle_daemon.py [--seconds 120] [--settle 30] [--profile] [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import scale_backfill
import yaml
from scale_backfill import REPO, VENV_BIN, CpuGroup, dagster_deployment, environment, run_command
from sensor_backfill import backend_config, write_burst_file

from coherence_assets_tests.postgres_server import running_postgres
from embedded_openeo.server import running_backend

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> tuple[str, float]:
    """A process's command (its first words) and the CPU seconds it has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:
        return "(ended)", 0.0
    return " ".join(command.split()[:4]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def production_instance_yaml() -> str:
    """deploy/dagster.yaml as deployed (PostgreSQL storage from DAGSTER_PG_*), without telemetry."""
    return yaml.safe_dump(
        {**yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text()), "telemetry": {"enabled": False}}
    )


def adopt_server(group: CpuGroup, port: int) -> None:
    """Move the PostgreSQL server listening on ``port`` and its processes into ``group``; the connections
    it forks later are born there."""
    (postmaster,) = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and (command := _command_line(entry)).startswith("/usr/lib/postgresql/")
        and f"-p {port} " in command
    ]
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    for pid in [postmaster, *map(int, children)]:
        with contextlib.suppress(ProcessLookupError):  # a connection that ended meanwhile
            (group.path / "cgroup.procs").write_text(str(pid))


def _command_line(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# Where an idle deployment's time goes: the loop a py-spy stack belongs to, by the first of these
# frames (substrings) found in it, innermost loops first. Dagster's intervals are those of 1.13.
LOOPS = [
    ("SensorEvaluationContext.instance", "code server: a sensor tick opens a Dagster instance"),
    ("_external_sensor_execution", "code server: sensor ticks (the rest)"),
    ("GetServerId", "code server: answers the daemon's server-id polls (every 1 s)"),
    ("_status (grpc", "code server: answers gRPC calls, mostly the daemon's server-id polls"),
    ("ExternalRepository", "code server: serves snapshots (the daemon's workspace refresh, every 60 s)"),
    ("ExternalJob", "code server: serves snapshots (the daemon's workspace refresh, every 60 s)"),
    ("_process_tick_generator", "daemon: sensor ticks (tick records, sensor state, purges)"),
    ("execute_sensor_iteration", "daemon: sensor loop (every 5 s, all sensors' states)"),
    ("QueuedRunCoordinatorDaemon", "daemon: run queue (every dequeue_interval_seconds, 5 s)"),
    ("watch_grpc_server_thread", "daemon: polls the code server's id (every 1 s, a new channel each)"),
    ("refresh_workspace", "daemon: workspace refresh (every 60 s)"),
    ("_check_add_heartbeat", "daemon: heartbeats (every 30 s)"),
    ("BackfillDaemon", "daemon: backfill loop (every 30 s)"),
    ("SchedulerDaemon", "daemon: scheduler loop"),
    ("check_daemon_loop", "daemon: controller (thread checks every 5 s)"),
]
# innermost frames of a thread that waits (py-spy cannot always tell a wait inside C from work)
WAITING = ("Condition.wait", "_serve (grpc", "_worker (concurrent", "_blocking (grpc", "controller.py:299")


def busy_loops(raw: Path) -> list[tuple[str, float]]:
    """From ``py-spy record --format raw`` (collapsed stacks): each loop's share of the samples in
    which the process's Python threads were busy, largest first, and the three largest unattributed
    innermost frames. (gRPC's own C threads are not sampled.)"""
    shares: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        frames = stack.split(";")
        if any(marker in frames[-1] for marker in WAITING):
            continue
        loop = next((name for marker, name in LOOPS if any(marker in frame for frame in frames)), None)
        shares[loop or f"other: {frames[-1]}"] += int(samples)
    busy = sum(shares.values()) or 1
    grouped = [(name, count / busy) for name, count in shares.most_common() if not name.startswith("other")]
    others = [(name, count / busy) for name, count in shares.most_common() if name.startswith("other")]
    return grouped + others[:3]


def measure(args: argparse.Namespace, root: Path, env: dict[str, str], group: CpuGroup) -> None:
    """Start the deployment in ``group``, let it settle, and print its idle CPU, per process too (the
    processes started meanwhile, such as the database's connections, count in the total only)."""
    with dagster_deployment(root, env, group):
        run_command(
            [
                str(VENV_BIN / "dagster"),
                *("asset", "materialize", "-m", "coherence_assets.definitions"),
                *("--select", "burst_catalogue"),
            ],
            env,
            root,
        )
        time.sleep(args.settle)
        pids = sorted(group.pids())
        before = {pid: process_cpu(pid)[1] for pid in pids}
        profilers = [
            subprocess.Popen(
                [
                    str(VENV_BIN / "py-spy"),
                    *("record", "--pid", str(pid), "--format", "raw"),
                    *("--duration", str(int(args.seconds)), "--rate", "200"),
                    *("--output", str(root / f"profile-{pid}.txt"), "--nonblocking"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid in (pids if args.profile else [])
        ]
        cpu = group.cpu_seconds()
        time.sleep(args.seconds)
        idle = (group.cpu_seconds() - cpu) / args.seconds
        after = {pid: process_cpu(pid) for pid in pids}
        for profiler in profilers:
            profiler.wait(timeout=120)
    print(f"idle CPU of the whole process tree: {idle:.4f} CPU-s/s over {args.seconds:.0f} s")
    for pid, (command, seconds) in after.items():
        print(f"  pid {pid} {command}: {(seconds - before[pid]) / args.seconds:.4f} CPU-s/s")
        profile = root / f"profile-{pid}.txt"
        if profile.exists():
            for loop, share in busy_loops(profile):
                print(f"      {share:>4.0%}  {loop}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--profile", action="store_true", help="py-spy record the processes (needs py-spy)")
    parser.add_argument("--postgres", action="store_true", help="deploy/dagster.yaml's PostgreSQL storage")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="idle-daemon-") as temporary, contextlib.ExitStack() as stack:
        root = Path(temporary)
        bursts_file = root / "bursts.geojson"
        write_burst_file(bursts_file, 1)
        url = stack.enter_context(running_backend(backend_config(root / "backend", 0, bursts_file)))
        env = environment(root, root / "data", url, bursts_file)
        group = CpuGroup("idle")
        stack.callback(group.remove)  # once every process in it has ended, the database's too
        if args.postgres:
            server = stack.enter_context(running_postgres(root))
            env.update(server.dagster_environment())
            scale_backfill.instance_yaml = production_instance_yaml  # what dagster_deployment writes
            adopt_server(group, server.port)
        measure(args, root, env, group)


if __name__ == "__main__":
    main()
