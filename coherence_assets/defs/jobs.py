"""Asset jobs that sensors and schedules request, one per step of the chain."""

import dagster as dg

from coherence_assets.defs.asset_keys import (
    BURST_CATALOGUE,
    COHERENCE_AOI_SERIES,
    COHERENCE_CUBE,
    COHERENCE_DECAY,
    COHERENCE_JOB,
    COHERENCE_RASTERS,
    COHERENCE_STAC,
    INSAR_PAIRS,
)

# deploy/dagster.yaml caps the runs carrying this tag (parallel downloads) in the run queue.
STEP_TAG = "coherence/step"
BACKFILL_TAG = "dagster/backfill"  # the tag Dagster puts on every run of a backfill

submit_coherence_jobs = dg.define_asset_job(
    "submit_coherence_jobs",
    selection=dg.AssetSelection.assets(INSAR_PAIRS, COHERENCE_JOB),
    description="Refresh the pair table and submit openEO jobs for pairs no job covers yet",
)

resubmit_coherence_jobs = dg.define_asset_job(
    "resubmit_coherence_jobs",
    selection=dg.AssetSelection.assets(COHERENCE_JOB),
    description="Resubmit the pairs of jobs that ended in error (requested by openeo_job_sensor)",
)

download_coherence_rasters = dg.define_asset_job(
    "download_coherence_rasters",
    selection=dg.AssetSelection.assets(COHERENCE_RASTERS),
    description="Download and validate the rasters of finished jobs (requested by openeo_job_sensor)",
    tags={STEP_TAG: "download"},
)

stack_coherence_cube = dg.define_asset_job(
    "stack_coherence_cube",
    # the decay, the AOI series and the STAC collection follow the cube in the same run, never older than it
    selection=dg.AssetSelection.assets(COHERENCE_CUBE, COHERENCE_DECAY, COHERENCE_AOI_SERIES, COHERENCE_STAC),
    description="Stack a burst's downloaded rasters into its Zarr cube, fit its seasonal decay, summarise it "
    "per AOI and describe it in STAC (requested by coherence_cube_sensor)",
)

refresh_burst_catalogue = dg.define_asset_job(
    "refresh_burst_catalogue",
    selection=dg.AssetSelection.assets(BURST_CATALOGUE),
    description="Re-read the burst file and add burst partitions",
)
