"""The job sensor's tick CPU with 10 and with 10,000 done partitions beside the same active ones;
with ``--idle``, each sensor's tick with nothing to do as the code server evaluates it.

    python benchmarks/tick_cost.py [--done 10 10000] [--active 10] [--ticks 20] [--idle]

A tree of done partitions (a ledger with one finished job and a done record each, as the sensor
leaves them) and ``--active`` partitions, each with one created job on an embedded backend (no
free slot, so each tick finds the same work), then ``jobs.tick_run.run_tick`` as the sensor calls
it. Reported: the median CPU of a tick in the ticking thread (``time.thread_time``: the embedded
backend's threads serve the requests and are not counted), after a first tick that lists the
whole tree once (it builds the index of active partitions). orch's scale benchmark calls
:func:`tick_cpu`.

``--idle``: every sensor of the definitions, on a fresh SQLite instance and an empty data folder,
evaluated as ``dagster api grpc`` evaluates a tick (a context with the daemon's ``InstanceRef`` and
the resources the sensor names): the median CPU of ``--ticks`` ticks after the first, in this thread.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import openeo

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.jobs.batching import PairBatch
from coherence_assets.jobs.ledger import FINISHED, Ledger
from coherence_assets.jobs.ledger_index import DonePartition, mark_active
from coherence_assets.jobs.limits import BackendLimits
from coherence_assets.jobs.processes import CoherenceRequest
from coherence_assets.jobs.submission import create_job, enter_job
from coherence_assets.jobs.tick import DEFAULT_TICK_POLICY, TickCursor
from coherence_assets.jobs.tick_run import TickRun, run_tick
from coherence_assets.partition_keys import partition_key
from coherence_assets.storage import DataStore
from embedded_openeo.config import BackendConfig
from embedded_openeo.github_api import MAIN_COMMIT
from embedded_openeo.server import running_backend

NO_SLOTS = BackendLimits(max_running_jobs=0, min_seconds_between_starts=0.0, queued_ahead=0)
WINDOWS = [f"{year}-{month:02d}-01" for year in range(2015, 2025) for month in (1, 4, 7, 10)]
PAIR = (dt.date(2023, 7, 3), dt.date(2023, 7, 15))


def partitions(count: int, first_burst: int) -> list[tuple[str, str]]:
    """``count`` burst x window partitions: 40 quarterly windows per burst, bursts numbered from ``first_burst``."""
    return [
        (str(BurstKey(15, first_burst + index // len(WINDOWS), "IW1")), WINDOWS[index % len(WINDOWS)])
        for index in range(count)
    ]


def build_tree(
    store: DataStore, connection: openeo.Connection, backend_url: str, done: int, active: int
) -> None:
    """``done`` done partitions and ``active`` partitions whose one job is created on the backend, in a local
    ``store`` (the done ones written straight to disk: through fsspec, 10,000 take half a minute)."""
    request = CoherenceRequest(apex_commit=MAIN_COMMIT)  # the embedded backend's stand-in of APEx's main
    template = Ledger("", "", backend_url)
    enter_job(template, BurstKey.parse(partitions(1, 100_000)[0][0]), request, PairBatch(12, (PAIR,)))
    ledger, job = template.to_json(), template.to_json()["jobs"][0]
    for index, (burst, window) in enumerate(partitions(done, 100_000)):
        # as the sensor leaves them, from one template ledger
        job_id = f"j-done-{index}"
        document = {
            **ledger,
            "burst": burst,
            "window": window,
            "jobs": [{**job, "job_id": job_id, "status": FINISHED}],
        }
        entry = DonePartition(partition_key(burst, window), (), (job_id,))
        for path, content in (
            (store.coherence_job_path(burst, window), document),
            (store.coherence_job_done_path(burst, window), entry.to_json()),
        ):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(json.dumps(content))
    for burst, window in partitions(active, 200_000):
        ledger = Ledger(burst, window, backend_url)
        record = enter_job(ledger, BurstKey.parse(burst), request, PairBatch(12, (PAIR,)))
        create_job(connection, request, record)
        mark_active(store, burst, window)
        store.write_json(store.coherence_job_path(burst, window), ledger.to_json())


def ticker(store: DataStore, connect: Callable[[], openeo.Connection]) -> Callable[[TickCursor], TickRun]:
    """A tick as the sensor runs it, with no free slot, so that every tick finds the same work."""

    def tick(cursor: TickCursor) -> TickRun:
        run = run_tick(
            store,
            cursor,
            connect,
            DEFAULT_TICK_POLICY,
            NO_SLOTS,
            dt.timedelta(minutes=5),
            downloading=set(),
            resubmitting=frozenset(),
        )
        assert run is not None
        return run

    return tick


@dataclass(frozen=True)
class TickCost:
    done: int
    active: int
    median_cpu_seconds: float
    first_tick_cpu_seconds: float


def tick_cpu(done: int, active: int = 10, ticks: int = 20) -> TickCost:
    """The median CPU of a tick with ``done`` done and ``active`` active partitions, on a fresh tree and backend."""
    with tempfile.TemporaryDirectory() as folder:
        config = BackendConfig(data_dir=Path(folder) / "backend", port=0, min_seconds_between_starts=0)
        with running_backend(config) as url:
            store = DataStore(f"{folder}/data")

            def connect() -> openeo.Connection:
                return openeo.connect(url).authenticate_basic("local", "local")

            build_tree(store, connect(), url, done, active)
            tick, cursor, seconds = ticker(store, connect), TickCursor(), []
            for _ in range(ticks + 1):
                started = time.thread_time()
                cursor = tick(cursor).plan.cursor
                seconds.append(time.thread_time() - started)
    return TickCost(done, active, statistics.median(seconds[1:]), seconds[0])


def idle_tick_cpu(ticks: int = 20) -> dict[str, float]:
    """Each sensor's median tick CPU (seconds) with nothing to do, evaluated as the code server does
    (``dagster api grpc -m coherence_assets.definitions``, here pointed at an embedded backend)."""
    with tempfile.TemporaryDirectory() as folder:
        config = BackendConfig(data_dir=Path(folder) / "backend", port=0)
        with running_backend(config) as url, dg.instance_for_test(temp_dir=folder) as instance:
            os.environ.update(
                {
                    "OPENEO_BACKEND_URL": url,  # a URL, not `local`: the production resources
                    "COHERENCE_CATALOGUE_URL": f"{url}/odata/v1",
                    "COHERENCE_DATA_DIR": f"{folder}/data",
                    "COHERENCE_APEX_COMMIT": MAIN_COMMIT,
                }
            )
            from coherence_assets.definitions import defs

            medians = {}
            for sensor in defs.sensors or []:
                # as the code server builds a tick's context: the instance's reference, the resources the sensor names
                resources = {key: defs.resources[key] for key in sensor.required_resource_keys}
                seconds = []
                for _ in range(ticks + 1):
                    started = time.thread_time()
                    with dg.build_sensor_context(
                        instance_ref=instance.get_ref(), resources=resources, definitions=defs
                    ) as context:
                        tick = sensor.evaluate_tick(context)
                    seconds.append(time.thread_time() - started)
                    assert tick.skip_message, tick  # an idle tick skips
                medians[sensor.name] = statistics.median(seconds[1:])
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--done", type=int, nargs="+", default=[10, 10_000])
    parser.add_argument("--active", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--idle", action="store_true", help="each sensor's tick with nothing to do")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the embedded backend's access log
    if args.idle:
        for name, seconds in idle_tick_cpu(args.ticks).items():
            print(f"{name}: idle tick CPU {seconds * 1000:.1f} ms (median of {args.ticks})")
        return
    costs = [tick_cpu(done, args.active, args.ticks) for done in args.done]
    for cost in costs:
        print(
            f"{cost.done:>6} done, {cost.active} active partitions: tick CPU {cost.median_cpu_seconds * 1000:.1f} ms "
            f"(median of {args.ticks}; the first tick, which lists the tree once: {cost.first_tick_cpu_seconds * 1000:.0f} ms)"
        )
    print(
        f"ratio {costs[-1].done} / {costs[0].done} done: {costs[-1].median_cpu_seconds / costs[0].median_cpu_seconds:.2f}x"
    )


if __name__ == "__main__":
    main()
