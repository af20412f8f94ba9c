"""The partitions (bursts, calendar-quarter windows, and burst x window), defined once and imported by
assets, sensors and schedules; ``burst_partitions_sensor`` adds and drops the bursts."""

import dagster as dg

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
