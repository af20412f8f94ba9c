"""The burst x window partition key, ``<burst>|<window>``, in both directions: its one home.

It is the string Dagster gives the ``burst_window_partitions`` key (a ``MultiPartitionKey``
joins its dimension values in the order of the dimension names, ``burst`` before ``window``,
with ``|``). Domain code must not import Dagster, so the format lives here;
``defs.partitions.burst_window_key`` builds Dagster's key from the same two values.
"""

from __future__ import annotations

SEPARATOR = "|"


def partition_key(burst: str, window: str) -> str:
    """``t015_030343_iw2|2023-07-01``: how runs, logs and the UI name a burst x window partition."""
    return f"{burst}{SEPARATOR}{window}"


def split_partition_key(key: str) -> tuple[str, str]:
    """The (burst, window) of a partition key; a key that is not ``<burst>|<window>`` says so."""
    burst, separator, window = str(key).partition(SEPARATOR)
    if not separator or not burst or not window or SEPARATOR in window:
        raise ValueError(
            f"{key!r} is not a burst x window partition key (<burst>|<window>, e.g. t015_030343_iw2|2023-07-01)"
        )
    return burst, window
