"""What the Dagster daemon does with a sensor tick, for code that drives the chain in one process.

The demo, the sensor benchmark and the Dagster-layer tests evaluate the project's sensors without
a daemon. They do it here, the way dagster's sensor daemon does it: evaluate the sensor with its
cursor, record the tick's asset events in the instance, and create one run per requested
run key, tagged with the run key and the sensor's name, never a second run for a key that sensor
already used (not even within one tick), and apply the tick's dynamic partition requests. Our
sensors request no backfills, so none are launched here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import dagster as dg

RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"

Launched = TypeVar("Launched")
# job name, partition key (None for an unpartitioned job), the run's tags; returns the caller's handle
RunLauncher = Callable[[str, str | None, dict[str, str]], Launched]


@dataclass(frozen=True)
class SensorTick:
    """One evaluation of a sensor: what it asks the daemon to do.

    Ours rather than ``evaluate_tick``'s answer, whose type dagster does not export.
    """

    sensor_name: str
    run_requests: list[dg.RunRequest]  # each names its job (a one-job sensor's requests may not)
    asset_events: list[dg.AssetMaterialization | dg.AssetObservation | dg.AssetCheckEvaluation]
    cursor: str | None  # the cursor for the next tick (the given one if the sensor left it unchanged)
    skip_message: str | None
    dynamic_partitions_requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]


def evaluate_sensor(
    defs: dg.Definitions, instance: dg.DagsterInstance, sensor_name: str, cursor: str | None = None
) -> SensorTick:
    """Evaluate the sensor once with ``cursor`` and the definitions' resources; nothing is recorded in the instance yet."""
    sensor = defs.resolve_sensor_def(sensor_name)
    with (
        dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
        ) as context,
        dg.partition_loading_context(dynamic_partitions_store=instance),
    ):
        data = sensor.evaluate_tick(context)
    return SensorTick(
        sensor_name=sensor_name,
        run_requests=[
            request if request.job_name else request.with_replaced_attrs(job_name=sensor.job_name)
            for request in data.run_requests or []
        ],
        asset_events=list(data.asset_events),
        cursor=data.cursor,
        skip_message=data.skip_message,
        dynamic_partitions_requests=list(data.dynamic_partitions_requests or []),
    )


def record_asset_events(instance: dg.DagsterInstance, tick: SensorTick) -> None:
    """Store the tick's observations and materialisations, as the daemon does before launching runs."""
    for event in tick.asset_events:
        instance.report_runless_asset_event(event)


def apply_dynamic_partitions_requests(instance: dg.DagsterInstance, tick: SensorTick) -> None:
    """Add and delete the requested partitions, as the daemon does before launching runs (keys that are
    already there, or already gone, are left alone)."""
    for request in tick.dynamic_partitions_requests:
        existing = set(instance.get_dynamic_partitions(request.partitions_def_name))
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            new = [key for key in request.partition_keys if key not in existing]
            if new:
                instance.add_dynamic_partitions(request.partitions_def_name, new)
        else:
            for key in request.partition_keys:
                if key in existing:
                    instance.delete_dynamic_partition(request.partitions_def_name, key)


def launch_requested_runs(
    instance: dg.DagsterInstance, tick: SensorTick, run: RunLauncher[Launched]
) -> list[Launched]:
    """Hand each requested run whose run key the sensor has not used before to ``run``; what it returned.

    ``run`` executes (or queues) the run so that the instance records it with the given tags: that
    record is what keeps a later tick from launching the same key again.
    """
    launched = []
    used_this_tick: set[str] = set()
    for request in tick.run_requests:
        if request.run_key and (
            request.run_key in used_this_tick or runs_with_key(instance, tick.sensor_name, request.run_key)
        ):
            continue
        tags = {**request.tags, SENSOR_NAME_TAG: tick.sensor_name}
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
            used_this_tick.add(request.run_key)
        launched.append(run(request.job_name, request.partition_key, tags))
    return launched


def runs_with_key(instance: dg.DagsterInstance, sensor_name: str, run_key: str) -> list[str]:
    """Ids of the runs that ``sensor_name`` launched for ``run_key`` (the daemon's idempotence check)."""
    return instance.get_run_ids(
        filters=dg.RunsFilter(tags={RUN_KEY_TAG: run_key, SENSOR_NAME_TAG: sensor_name})
    )
