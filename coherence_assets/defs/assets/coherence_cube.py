"""``coherence_cube``: all pairs of all windows of a burst, stacked into one Zarr cube (the work is ``cube.burst_cube``)."""

import warnings
from typing import TYPE_CHECKING

import dagster as dg

from coherence_assets.defs.assets.coherence_rasters import coherence_rasters
from coherence_assets.defs.partitions import BURST_DIMENSION, burst_partitions
from coherence_assets.defs.resources import CoherenceParameters, CoherenceStorage
from coherence_assets.defs.ui_images import inline_image_markdown

if TYPE_CHECKING:
    import fsspec

    from coherence_assets.cube.burst_cube import StackedBurst

with warnings.catch_warnings():
    # beta in Dagster 1.13, yet the documented way to map a burst to all its burst x window partitions
    warnings.simplefilter("ignore", dg.BetaWarning)
    ALL_WINDOWS_OF_THE_BURST = dg.MultiToSingleDimensionPartitionMapping(
        partition_dimension_name=BURST_DIMENSION
    )


@dg.asset(
    partitions_def=burst_partitions,
    deps=[dg.AssetDep(coherence_rasters, partition_mapping=ALL_WINDOWS_OF_THE_BURST)],
    description=(
        "Coherence of every pair of the burst on (time, y, x), sorted by date, chunked for images at the "
        "root and for pixel series in the group 'timeseries'"
    ),
    group_name="cube",
    kinds={"zarr", "xarray"},
)
def coherence_cube(
    context: dg.AssetExecutionContext, storage: CoherenceStorage, coherence: CoherenceParameters
) -> dg.MaterializeResult:
    from coherence_assets.cube.burst_cube import stack_burst  # xarray, zarr, dask only here (see insar_pairs)
    from coherence_assets.cube.provenance import burst_attributes  # rasterio, pyarrow: as stack_burst

    burst, store = context.partition_key, storage.store
    pair_dim = len(set(coherence.temporal_baselines_days)) > 1
    stacked = stack_burst(
        store, burst, pair_dim, log=context.log, global_attributes=burst_attributes(store, burst)
    )
    return dg.MaterializeResult(metadata=cube_metadata(context.instance, store.fs, burst, stacked))


def cube_metadata(
    instance: dg.DagsterInstance, fs: "fsspec.AbstractFileSystem", burst: str, stacked: "StackedBurst"
) -> dict:
    summary = stacked.summary
    return {
        "pairs": summary.pair_count,
        "pairs_added": summary.added_pairs,
        "dates": ", ".join(day.isoformat() for day in summary.dates),
        "grid_shape": str(summary.grid_shape),
        "rewritten": summary.rewritten,
        "path": dg.MetadataValue.path(fs.unstrip_protocol(stacked.path)),
        "mean_coherence": dg.MetadataValue.md(summary.pairs.round(4).to_markdown(index=False)),
        "quicklook": dg.MetadataValue.md(
            inline_image_markdown(instance, burst, stacked.quicklook, title=f"{burst} coherence")
        ),
        "quicklook_png": dg.MetadataValue.path(fs.unstrip_protocol(stacked.quicklook_path)),
    }
