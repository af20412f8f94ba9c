"""The ``burst`` partitions follow the burst catalogue: a sensor requests them, as Dagster's examples do.

The ``burst_catalogue`` asset only stores the catalogue; after each of its materialisations the
sensor asks Dagster to add the new bursts' partitions and to drop those of bursts no longer in the
catalogue for which nothing was materialised (``SensorResult(dynamic_partitions_requests=...)``),
so no run changes the instance from inside a step. The demo, the backfill command and the tests
tick it in process right after a catalogue run (:func:`tick_burst_partitions_sensor`), the way the
daemon would, so they need not wait for the daemon.
"""

import dagster as dg

from coherence_assets.defs.asset_keys import BURST_CATALOGUE, BURST_WINDOW_ASSETS, COHERENCE_CUBE
from coherence_assets.defs.partitions import burst_partitions
from coherence_assets.defs.sensor_instance import tick_instance
from coherence_assets.defs.sensor_ticks import apply_dynamic_partitions_requests, evaluate_sensor
from coherence_assets.partition_keys import split_partition_key
from coherence_assets.settings import Settings

BURST_PARTITIONS_SENSOR = "burst_partitions_sensor"
CATALOGUE_URL = "url"  # the metadata entry of burst_catalogue that says where it stored the catalogue


def burst_partition_requests(
    instance: dg.DagsterInstance, catalogue_keys: list[str]
) -> list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest]:
    """Add the catalogue's new burst keys; drop keys no longer in it only if nothing was materialised for them."""
    existing = set(instance.get_dynamic_partitions(burst_partitions.name))
    added = sorted(set(catalogue_keys) - existing)
    materialised_bursts = {
        split_partition_key(key)[0]
        for asset in BURST_WINDOW_ASSETS
        for key in instance.get_materialized_partitions(asset)
    } | set(instance.get_materialized_partitions(COHERENCE_CUBE))
    removable = sorted(existing - set(catalogue_keys) - materialised_bursts)
    return [
        *([dg.AddDynamicPartitionsRequest(burst_partitions.name, added)] if added else []),
        *([dg.DeleteDynamicPartitionsRequest(burst_partitions.name, removable)] if removable else []),
    ]


def burst_partitions_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """After a new ``burst_catalogue`` materialisation, the partition changes its catalogue implies.

    The catalogue is read where that materialisation says it wrote it: the sensor needs no storage
    resource, whose set-up (a HEAD of an object store's bucket) would otherwise run on every tick.
    """
    instance = tick_instance(context)
    latest = instance.fetch_materializations(BURST_CATALOGUE, limit=1, ascending=False).records
    if not latest:
        return dg.SkipReason("burst_catalogue has not been materialised yet")
    if context.cursor and int(context.cursor) >= latest[0].storage_id:
        return dg.SkipReason("no burst_catalogue materialisation since the last tick")
    # pandas only on a new catalogue: the daemon's idle ticks stop above
    from coherence_assets.bursts.burst_catalogue import stored_burst_keys

    url = latest[0].asset_materialization.metadata.get(CATALOGUE_URL)
    if url is None:  # written before this sensor, by a run that added its partitions itself
        return dg.SkipReason("the latest burst_catalogue does not say where it is: materialise it again")
    requests = burst_partition_requests(instance, stored_burst_keys(url.value))
    for request in requests:
        change = (
            "adding"
            if isinstance(request, dg.AddDynamicPartitionsRequest)
            else "dropping (never materialised)"
        )
        context.log.info(
            f"{change} {len(request.partition_keys)} burst partition(s): {', '.join(request.partition_keys)}"
        )
    return dg.SensorResult(dynamic_partitions_requests=requests, cursor=str(latest[0].storage_id))


def build_burst_partitions_sensor(settings: Settings) -> dg.SensorDefinition:
    """The sensor, at its interval from the settings."""
    return dg.sensor(
        name=BURST_PARTITIONS_SENSOR,
        minimum_interval_seconds=settings.burst_sensor_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Adds the burst partitions of a new burst_catalogue, and drops those of bursts no longer "
        "in it for which nothing was materialised",
    )(burst_partitions_sensor)


def tick_burst_partitions_sensor(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """One tick of the sensor in this process, its requests applied as the daemon applies them.

    Without a cursor, so the latest catalogue is looked at again: the requests only ever add what is
    missing and drop what may go, so a tick the daemon also makes changes nothing twice.
    """
    apply_dynamic_partitions_requests(instance, evaluate_sensor(defs, instance, BURST_PARTITIONS_SENSOR))
