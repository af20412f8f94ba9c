"""Sentinel-1 burst identities and burst maps (no Dagster here)."""
