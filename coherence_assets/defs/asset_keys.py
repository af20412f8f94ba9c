"""The assets' keys, named once for the Dagster layer: jobs, sensors, partitions, checks, the demo and
the backfill command refer to them here.

The asset modules define each asset under its key's name (the function's name; ``test_definitions``
checks that the two agree), and import the partitions, so ``partitions.py`` could not import them.
"""

import dagster as dg

BURST_CATALOGUE = dg.AssetKey("burst_catalogue")
INSAR_PAIRS = dg.AssetKey("insar_pairs")
COHERENCE_JOB = dg.AssetKey("coherence_job")
COHERENCE_RASTERS = dg.AssetKey("coherence_rasters")
COHERENCE_CUBE = dg.AssetKey("coherence_cube")
COHERENCE_DECAY = dg.AssetKey("coherence_decay")
COHERENCE_AOI_SERIES = dg.AssetKey("coherence_aoi_series")
COHERENCE_STAC = dg.AssetKey("coherence_stac")
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
