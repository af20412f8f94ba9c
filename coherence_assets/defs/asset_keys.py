"""The assets' keys (their names are ``asset_names.py``'s), for the Dagster layer: jobs, sensors, partitions, checks, the demo and
the backfill command refer to them here.

The asset modules define each asset under its key's name (the function's name; ``test_definitions``
checks that the two agree), and import the partitions, so ``partitions.py`` could not import them.
"""

import dagster as dg

from coherence_assets import asset_names

BURST_CATALOGUE = dg.AssetKey(asset_names.BURST_CATALOGUE)
INSAR_PAIRS = dg.AssetKey(asset_names.INSAR_PAIRS)
COHERENCE_JOB = dg.AssetKey(asset_names.COHERENCE_JOB)
COHERENCE_RASTERS = dg.AssetKey(asset_names.COHERENCE_RASTERS)
COHERENCE_CUBE = dg.AssetKey(asset_names.COHERENCE_CUBE)
COHERENCE_DECAY = dg.AssetKey(asset_names.COHERENCE_DECAY)
COHERENCE_AOI_SERIES = dg.AssetKey(asset_names.COHERENCE_AOI_SERIES)
COHERENCE_STAC = dg.AssetKey(asset_names.COHERENCE_STAC)
ASSET_KEYS = (
    BURST_CATALOGUE,
    INSAR_PAIRS,
    COHERENCE_JOB,
    COHERENCE_RASTERS,
    COHERENCE_CUBE,
    COHERENCE_DECAY,
    COHERENCE_AOI_SERIES,
    COHERENCE_STAC,
)
# the assets partitioned by burst x window (the backfill command's choices)
BURST_WINDOW_ASSETS = (INSAR_PAIRS, COHERENCE_JOB, COHERENCE_RASTERS)
