"""The ``coherence_decay`` step without Dagster: a burst's cube summarised per season, and its quick-look."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import xarray as xr

from coherence_assets.asset_names import COHERENCE_CUBE
from coherence_assets.cube.stacking import open_coherence_cube, open_zarr_store
from coherence_assets.decay.quicklook import render_decay_png
from coherence_assets.decay.seasonal import DecaySummary, write_seasonal_decay
from coherence_assets.storage import DataStore

module_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BurstDecay:
    """What the step wrote: the product's summary, and the quick-look beside it."""

    summary: DecaySummary
    quicklook: bytes
    quicklook_path: str


def decay_burst(
    store: DataStore, burst: str, *, log: logging.Logger | logging.LoggerAdapter = module_log
) -> BurstDecay:
    """Write ``coherence_decay/<burst>.zarr`` from the burst's cube (its time-series layout) and the PNG."""
    cube_path = store.coherence_cube_path(burst)
    store.require_output(cube_path, COHERENCE_CUBE, burst)
    # every pair of one tile at a time: the layout chunked along pairs reads that in a few chunks
    cube = open_coherence_cube(store.fs, cube_path, layout="timeseries")
    path = store.coherence_decay_path(burst)
    summary = write_seasonal_decay(store.fs, cube, path)
    without_fit = summary.seasons_without_fit
    log.info(
        f"{burst}: decay of {len(summary.seasons)} season(s) over baselines {summary.baselines}"
        + (f"; no pixel fitted in {', '.join(without_fit)} (fewer than 3 baselines)" if without_fit else "")
    )
    quicklook = render_decay_png(open_decay(store, burst))
    quicklook_path = store.coherence_decay_quicklook_path(burst)
    store.write_bytes_atomically(quicklook_path, quicklook)
    return BurstDecay(summary, quicklook, quicklook_path)


def open_decay(store: DataStore, burst: str) -> xr.Dataset:
    """The stored decay product of a burst, lazily."""
    return xr.open_zarr(open_zarr_store(store.fs, store.coherence_decay_path(burst)), consolidated=True)
