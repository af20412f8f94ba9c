"""The burst file version Dagster recorded for ``burst_catalogue``, so a caller can skip an unchanged file."""

import dagster as dg

from coherence_assets.defs.assets.burst_catalogue import burst_catalogue

DATA_VERSION_TAG = "dagster/data_version"  # where Dagster records a materialisation's data version


def recorded_burst_file_version(instance: dg.DagsterInstance) -> str | None:
    """The data version of the latest ``burst_catalogue`` materialisation, if any."""
    record = instance.get_latest_data_version_record(burst_catalogue.key)
    return None if record is None else (record.event_log_entry.tags or {}).get(DATA_VERSION_TAG)
