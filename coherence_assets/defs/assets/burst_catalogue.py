"""``burst_catalogue``: the validated burst map, and the ``burst`` partitions it implies."""

import io

import dagster as dg

from coherence_assets.bursts.burst_map import burst_file_version, load_burst_catalogue, orbit_warnings
from coherence_assets.defs.partitions import BURST_DIMENSION, sync_burst_partitions
from coherence_assets.defs.resources import BurstsFile, CoherenceStorage

DATA_VERSION_TAG = "dagster/data_version"  # where Dagster records a materialisation's data version


def recorded_burst_file_version(instance: dg.DagsterInstance) -> str | None:
    """The data version of the latest ``burst_catalogue`` materialisation, if any."""
    record = instance.get_latest_data_version_record(dg.AssetKey("burst_catalogue"))
    return None if record is None else (record.event_log_entry.tags or {}).get(DATA_VERSION_TAG)


@dg.asset(
    description="Validated Sentinel-1 bursts (one row per burst key) read from the bursts_file resource "
    "(default: COHERENCE_BURSTS_FILE)",
    group_name="catalogue",
    kinds={"geoparquet"},
)
def burst_catalogue(
    context: dg.AssetExecutionContext, bursts_file: BurstsFile, storage: CoherenceStorage
) -> dg.MaterializeResult:
    source = bursts_file.path
    catalogue = load_burst_catalogue(source)
    buffer = io.BytesIO()
    catalogue.to_parquet(buffer, index=False)
    store = storage.store
    store.write_bytes_atomically(store.burst_catalogue_path(), buffer.getvalue())
    added, removed = sync_burst_partitions(context.instance, list(catalogue["burst"]))
    context.log.info(
        f"{len(catalogue)} bursts from {source}; {BURST_DIMENSION} partitions added: {added or 'none'}, "
        f"removed (never materialised): {removed or 'none'}"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(burst_file_version(source)),
        metadata={
            "bursts": len(catalogue),
            "burst_keys": ", ".join(catalogue["burst"]),
            "partitions_added": len(added),
            "orbit_warnings": ", ".join(orbit_warnings(catalogue)) or "none",
            "source": source,
            "path": dg.MetadataValue.path(store.burst_catalogue_path()),
            "preview": dg.MetadataValue.md(catalogue.drop(columns="geometry").to_markdown(index=False)),
        },
    )
