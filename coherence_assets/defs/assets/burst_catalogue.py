"""``burst_catalogue``: the validated burst map (the work is ``bursts.burst_catalogue``), and the ``burst`` partitions it implies."""

from typing import TYPE_CHECKING

import dagster as dg

from coherence_assets.defs.partitions import BURST_DIMENSION, sync_burst_partitions
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
    added, removed = sync_burst_partitions(context.instance, stored.burst_keys)
    context.log.info(
        f"{len(stored.catalogue)} bursts from {stored.source}; {BURST_DIMENSION} partitions added: "
        f"{added or 'none'}, removed (never materialised): {removed or 'none'}"
    )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(stored.version), metadata=catalogue_metadata(stored, added)
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
