"""The ``coherence_cube`` step without Dagster: a burst's rasters of every window stacked, and its quick-look."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from coherence_assets.cube.quicklook import render_quicklook_png
from coherence_assets.cube.stacking import (
    AttributeValue,
    CubeSummary,
    find_pair_rasters,
    open_coherence_cube,
    stack_coherence_cube,
)
from coherence_assets.storage import DataStore

module_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StackedBurst:
    """What stacking a burst left: the stacking summary, the cube's path, and the quick-look written beside it."""

    summary: CubeSummary
    path: str
    quicklook: bytes
    quicklook_path: str


def stack_burst(
    store: DataStore,
    burst: str,
    pair_dim: bool,
    *,
    log: logging.Logger | logging.LoggerAdapter = module_log,
    global_attributes: Mapping[str, AttributeValue] | None = None,
) -> StackedBurst:
    """Stack every raster of the burst into its cube (appending new pairs) and write the quick-look PNG.

    ``global_attributes`` (provenance such as ``history``, ``source``, ``references``) land in
    the global attributes of both of the cube's layouts with the stacking's commit.
    """
    rasters = find_pair_rasters(store.fs, store.coherence_rasters_root(burst))
    if not rasters:
        raise FileNotFoundError(
            f"no coherence rasters under {store.coherence_rasters_root(burst)}: materialise coherence_rasters "
            f"for {burst} first (the openeo_job_sensor does so when its jobs finish)"
        )
    path = store.coherence_cube_path(burst)
    summary = stack_coherence_cube(
        store.fs, rasters, path, pair_dim=pair_dim, global_attributes=global_attributes
    )
    log.info(
        f"{burst}: stacked {summary.added_pairs} new pair(s), {summary.pair_count} in all, grid {summary.grid_shape}"
        + (f" ({summary.rewrite_reason})" if summary.rewritten else "")
    )
    quicklook = render_quicklook_png(open_coherence_cube(store.fs, path))
    quicklook_path = store.coherence_quicklook_path(burst)
    store.write_bytes_atomically(quicklook_path, quicklook)
    return StackedBurst(summary, path, quicklook, quicklook_path)
