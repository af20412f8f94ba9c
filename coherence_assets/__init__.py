"""Sentinel-1 InSAR coherence time series as Dagster assets."""
