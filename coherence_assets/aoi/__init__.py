"""Coherence statistics per area of interest (AOI): reading AOI files, zonal statistics, plots."""
