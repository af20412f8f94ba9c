"""The partitions (bursts, calendar-quarter windows, and burst x window), defined once and imported by assets, sensors and schedules."""

import dagster as dg

from coherence_assets.defs.asset_keys import BURST_WINDOW_ASSETS, COHERENCE_CUBE
from coherence_assets.partition_keys import split_partition_key
from coherence_assets.windows import FIRST_WINDOW

BURST_DIMENSION = "burst"
WINDOW_DIMENSION = "window"

burst_partitions = dg.DynamicPartitionsDefinition(name=BURST_DIMENSION)

window_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *",  # calendar quarters
    start=FIRST_WINDOW.isoformat(),
    fmt="%Y-%m-%d",
    timezone="UTC",
    end_offset=1,  # the quarter in progress is a partition: the daily schedule submits its new pairs
)

burst_window_partitions = dg.MultiPartitionsDefinition(
    {BURST_DIMENSION: burst_partitions, WINDOW_DIMENSION: window_partitions}
)


def burst_window_key(burst: str, window: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({BURST_DIMENSION: burst, WINDOW_DIMENSION: window})


def burst_and_window(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """The (burst, window) of a run of a burst x window asset."""
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    return keys[BURST_DIMENSION], keys[WINDOW_DIMENSION]


def sync_burst_partitions(instance: dg.DagsterInstance, keys: list[str]) -> tuple[list[str], list[str]]:
    """Add new burst keys; drop keys no longer in the map only if nothing was materialised for them."""
    existing = set(instance.get_dynamic_partitions(burst_partitions.name))
    added = sorted(set(keys) - existing)
    if added:
        instance.add_dynamic_partitions(burst_partitions.name, added)
    materialised_bursts = {
        split_partition_key(key)[0]
        for asset in BURST_WINDOW_ASSETS
        for key in instance.get_materialized_partitions(asset)
    } | set(instance.get_materialized_partitions(COHERENCE_CUBE))
    removable = sorted(existing - set(keys) - materialised_bursts)
    for key in removable:
        instance.delete_dynamic_partition(burst_partitions.name, key)
    return added, removable
