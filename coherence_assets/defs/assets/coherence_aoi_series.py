"""``coherence_aoi_series``: coherence statistics per area of interest and pair, one table per burst."""

import dagster as dg

from coherence_assets.defs.assets.burst_catalogue import burst_catalogue
from coherence_assets.defs.assets.coherence_cube import coherence_cube
from coherence_assets.defs.assets.coherence_decay import coherence_decay
from coherence_assets.defs.partitions import burst_partitions
from coherence_assets.defs.resources import AoiFile, CoherenceStorage
from coherence_assets.defs.ui_images import inline_image_markdown


@dg.asset(
    partitions_def=burst_partitions,
    deps=[coherence_cube, coherence_decay, burst_catalogue],
    description="Mean, median, p10, p90 and valid share of coherence per AOI (the aoi_file resource, default: "
    "COHERENCE_AOI_FILE) and pair",
    group_name="cube",
    kinds={"parquet", "pandas"},
)
def coherence_aoi_series(
    context: dg.AssetExecutionContext, aoi_file: AoiFile, storage: CoherenceStorage
) -> dg.MaterializeResult:
    # geopandas, rioxarray only here (see insar_pairs)
    from coherence_assets.aoi.series import write_aoi_series

    burst, store = context.partition_key, storage.store
    output = write_aoi_series(store, burst, aoi_file.path, log=context.log)
    metadata = {
        **output.summary(),
        "aoi_file": aoi_file.path,
        "path": dg.MetadataValue.path(store.fs.unstrip_protocol(output.table_path)),
    }
    if output.plot_png is not None:
        metadata["plot"] = dg.MetadataValue.md(
            inline_image_markdown(
                context.instance, f"{burst}-aoi", output.plot_png, title=f"{burst} AOI coherence"
            )
        )
        metadata["plot_png"] = dg.MetadataValue.path(store.fs.unstrip_protocol(output.plot_path))
    if output.decay_table_path is not None:
        metadata["decay_table"] = dg.MetadataValue.path(store.fs.unstrip_protocol(output.decay_table_path))
    if output.decay_plot_png is not None:
        metadata["decay_plot"] = dg.MetadataValue.md(
            inline_image_markdown(
                context.instance, f"{burst}-aoi-decay", output.decay_plot_png, title=f"{burst} AOI decay"
            )
        )
    return dg.MaterializeResult(metadata=metadata)
