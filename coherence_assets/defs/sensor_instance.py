"""The Dagster instance a sensor tick reads: opened once per code server process, not once per tick.

The code server evaluates every tick in a fresh ``SensorEvaluationContext`` whose ``instance`` opens
the instance anew from the daemon's ``InstanceRef``. On SQLite that checks each storage's schema
against Dagster's ~90 migration scripts, about 65 ms of CPU, which made most of an idle tick's cost
(``benchmarks/idle_daemon.py``); on PostgreSQL it adds a login per storage. Dagster keeps no such
instance for sensors, so we do: an instance reads the database on every query (ticks see what a
fresh one would) and is shared across threads as the webserver shares its own.
"""

import threading

import dagster as dg

# one per instance the process's ticks were asked about: a code server serves one daemon's instance
_instances: dict[str, dg.DagsterInstance] = {}
_instances_lock = threading.Lock()  # ticks run in the code server's threads


def tick_instance(context: dg.SensorEvaluationContext) -> dg.DagsterInstance:
    """The instance of the tick's daemon, reused across ticks; the context's own when it was given one
    (``build_sensor_context(instance=...)``: the demo, the tests, in-process ticks)."""
    if context.instance_ref is None:
        return context.instance
    key = dg.serialize_value(context.instance_ref)
    with _instances_lock:
        if key not in _instances:
            _instances[key] = dg.DagsterInstance.from_ref(context.instance_ref)
        return _instances[key]
