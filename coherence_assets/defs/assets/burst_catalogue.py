"""``burst_catalogue``: the validated burst map (the work is ``bursts.burst_catalogue``); the ``burst``
partitions it implies are requested by ``burst_partitions_sensor`` after it materialises."""

from typing import TYPE_CHECKING

import dagster as dg

from coherence_assets.defs.burst_partitions_sensor import CATALOGUE_URL
from coherence_assets.defs.partitions import BURST_DIMENSION, burst_partitions
from coherence_assets.defs.resources import BurstsFile, CoherenceStorage

if TYPE_CHECKING:
    from coherence_assets.bursts.burst_catalogue import StoredBurstCatalogue


@dg.asset(
    description="Validated Sentinel-1 bursts (one row per burst key) read from the bursts_file resource "
    "(default: COHERENCE_BURSTS_FILE)",
    group_name="catalogue",
    kinds={"geoparquet"},
)
def burst_catalogue(
    context: dg.AssetExecutionContext, bursts_file: BurstsFile, storage: CoherenceStorage
) -> dg.MaterializeResult:
    # geopandas only here: loading the definitions (daemon, code server, every run) pays only for Dagster
    from coherence_assets.bursts.burst_catalogue import store_burst_catalogue

    stored = store_burst_catalogue(storage.store, bursts_file.path)
    existing = set(context.instance.get_dynamic_partitions(burst_partitions.name))
    added = [key for key in stored.burst_keys if key not in existing]
    context.log.info(
        f"{len(stored.catalogue)} bursts from {stored.source}; new {BURST_DIMENSION} partitions (added by "
        f"burst_partitions_sensor): {added or 'none'}"
    )
    # where burst_partitions_sensor reads the catalogue's keys, protocol included (s3://...)
    url = storage.store.fs.unstrip_protocol(stored.path)
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stored.version),
        metadata={**catalogue_metadata(stored, added), CATALOGUE_URL: url},
    )


def catalogue_metadata(stored: "StoredBurstCatalogue", partitions_added: list[str]) -> dict:
    return {
        "bursts": len(stored.catalogue),
        "burst_keys": ", ".join(stored.burst_keys),
        "partitions_added": len(partitions_added),
        "orbit_warnings": ", ".join(stored.orbit_warnings) or "none",
        "source": stored.source,
        "path": dg.MetadataValue.path(stored.path),
        "preview": dg.MetadataValue.md(stored.catalogue.drop(columns="geometry").to_markdown(index=False)),
    }
