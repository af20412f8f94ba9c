"""The assets' names, written once (DESIGN: names are contracts).

Each is both the Dagster asset key (``defs/asset_keys.py``) and the folder or file name its output is
stored under in the data folder (``storage.py``); a base module, so that the domain steps, which may
not import the Dagster layer, name the asset to materialise from here too.
"""

BURST_CATALOGUE = "burst_catalogue"
INSAR_PAIRS = "insar_pairs"
COHERENCE_JOB = "coherence_job"
COHERENCE_RASTERS = "coherence_rasters"
COHERENCE_CUBE = "coherence_cube"
COHERENCE_DECAY = "coherence_decay"
COHERENCE_AOI_SERIES = "coherence_aoi_series"
COHERENCE_STAC = "coherence_stac"  # stored under stac/, the STAC convention's own name
