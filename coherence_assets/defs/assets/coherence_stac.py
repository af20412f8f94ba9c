"""``coherence_stac``: the burst's STAC collection (an item per raster, the cube and AOI table as assets)."""

import dagster as dg

from coherence_assets.defs.assets.coherence_aoi_series import coherence_aoi_series
from coherence_assets.defs.assets.coherence_cube import coherence_cube
from coherence_assets.defs.partitions import burst_partitions
from coherence_assets.defs.resources import CoherenceStorage


@dg.asset(
    partitions_def=burst_partitions,
    deps=[coherence_cube, coherence_aoi_series],
    description="Static STAC catalogue of the burst's rasters, cube and AOI table under <data dir>/stac",
    group_name="cube",
    kinds={"stac"},
)
def coherence_stac(context: dg.AssetExecutionContext, storage: CoherenceStorage) -> dg.MaterializeResult:
    from coherence_assets.stac.catalogue import (
        write_burst_stac,  # pystac, rasterio only here (see insar_pairs)
    )

    burst, store = context.partition_key, storage.store
    summary = write_burst_stac(store, burst, log=context.log)
    return dg.MaterializeResult(
        metadata={
            "items": summary.item_count,
            "items_without_polarisation": ", ".join(summary.items_without_polarisation) or "none",
            "catalog": dg.MetadataValue.path(store.fs.unstrip_protocol(summary.catalog_path)),
            "collection": dg.MetadataValue.path(store.fs.unstrip_protocol(summary.collection_path)),
        }
    )
