"""``coherence_rasters``: the GeoTIFFs of a partition's finished jobs, one per pair, validated.

The work is ``rasters.partition_download``; this module only turns its result into Dagster's
materialisation and asset check.
"""

import warnings
from typing import TYPE_CHECKING

import dagster as dg

from coherence_assets.defs.asset_keys import COHERENCE_JOB, COHERENCE_RASTERS
from coherence_assets.defs.partitions import burst_and_window, burst_window_partitions
from coherence_assets.defs.resources import CoherenceStorage, OpenEOBackend
from coherence_assets.pairs.pair import format_pair
from coherence_assets.storage import one_line_store_errors

if TYPE_CHECKING:
    from coherence_assets.rasters.partition_download import PartitionRasters, RasterCheck

EVERY_PAIR_HAS_A_RASTER = "every_pair_has_a_raster"
# Partitioned, so that each execution names its partition in the UI: a preview feature of Dagster
# 1.13 (whose exact version the project pins), whose warning would otherwise open every command's output.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.PreviewWarning)
    EVERY_PAIR_HAS_A_RASTER_SPEC = dg.AssetCheckSpec(
        EVERY_PAIR_HAS_A_RASTER,
        asset=COHERENCE_RASTERS,
        description="Every pair of the pair table whose job is no longer running has a raster",
        partitions_def=burst_window_partitions,
    )


@dg.asset(
    partitions_def=burst_window_partitions,
    deps=[COHERENCE_JOB],
    description="One validated coherence GeoTIFF per pair, <reference>_<secondary>.tif, from the finished jobs",
    group_name="rasters",
    kinds={"geotiff"},
    check_specs=[EVERY_PAIR_HAS_A_RASTER_SPEC],
)
def coherence_rasters(
    context: dg.AssetExecutionContext, storage: CoherenceStorage, openeo_backend: OpenEOBackend
):
    from coherence_assets.rasters.partition_download import download_and_check_partition  # see insar_pairs

    burst, window = burst_and_window(context)
    with one_line_store_errors():  # a store that stops answering: one line, the trace in the run's log
        checked = download_and_check_partition(
            storage.store,
            openeo_backend.connect,
            burst,
            window,
            backend_url=openeo_backend.root_url,
            log=context.log,
        )
        if checked.rasters is not None:
            yield dg.MaterializeResult(metadata=materialisation_metadata(checked.rasters))
        # the check is reported whatever broke, naming the cause; the run still fails (red) and the
        # openeo_job_sensor requests it again while its retries last
        yield check_result(checked.check)
        if checked.error is not None:
            raise checked.error


def materialisation_metadata(rasters: "PartitionRasters") -> dict:
    import pandas as pd

    table = pd.DataFrame(
        [
            {
                "pair": format_pair(pair),
                "mean_coherence": round(summary.mean_coherence, 4),
                "valid_fraction": round(summary.valid_fraction, 4),
            }
            for pair, summary in sorted(rasters.summaries.items())
        ]
    )
    return {
        "files": len(rasters.summaries),
        "bytes": sum(outcome.size for outcome in rasters.outcomes),
        "downloaded_now": sum(outcome.action != "skipped" for outcome in rasters.outcomes),
        "pairs_waiting_for_jobs": len(rasters.waiting),
        "folder": dg.MetadataValue.path(rasters.folder),
        "per_pair": dg.MetadataValue.md(
            table.to_markdown(index=False) if not table.empty else "(no rasters yet)"
        ),
        "job_usage_and_costs": dg.MetadataValue.json(rasters.usage),
    }


def check_result(check: "RasterCheck") -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=EVERY_PAIR_HAS_A_RASTER,
        passed=check.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=check.description,
        metadata={
            "partition": check.partition,
            "missing_pairs": ", ".join(format_pair(pair) for pair in check.missing) or "none",
            "waiting_pairs": len(check.waiting),
            "error": check.cause or "none",
        },
    )
