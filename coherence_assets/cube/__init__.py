"""The coherence cube: grid alignment checks, stacking rasters into Zarr, and its quicklook."""
