"""The seasonal decay of each area of interest: the medians over its pixels of the burst's decay product."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from coherence_assets.aoi.areas import AOI_ID
from coherence_assets.aoi.statistics import pixel_centres_inside

DECAY_COLUMNS = (
    "aoi_id",
    "burst",
    "season",
    "temporal_baseline",
    "median_coherence",
    "rho_inf",
    "tau",
    "rmse",
    "fitted_fraction",
)
_FIT_VARIABLES = ("rho_inf", "tau", "rmse")


def aoi_decay_table(decay: xr.Dataset, aois: gpd.GeoDataFrame, burst: str) -> pd.DataFrame:
    """One row per AOI, season and baseline: medians over the AOI's pixels (centres inside), NaN left out.

    ``median_coherence`` is the median of the pixels' seasonal medians at that baseline; ``rho_inf``,
    ``tau`` and ``rmse`` the medians of the pixels' fits in the season (repeated on its baseline
    rows), ``fitted_fraction`` the share of the AOI's pixels that have a fit.
    """
    grid = decay["rho_inf"]
    transform = grid.rio.transform(recalc=False)
    height, width = grid.sizes["y"], grid.sizes["x"]
    seasons = [str(season) for season in decay["season"].values]
    baselines = [int(baseline) for baseline in decay["temporal_baseline"].values]
    tables = []
    for aoi_id, polygon in zip(aois[AOI_ID], aois.to_crs(grid.rio.crs).geometry, strict=True):
        rows, columns, inside = pixel_centres_inside(polygon, transform, height, width)
        if not inside.any():
            continue
        window = decay.isel(y=rows, x=columns).load()
        with warnings.catch_warnings():
            # an AOI without any value in a season has NaN medians there, which is the answer
            warnings.filterwarnings("ignore", message="All-NaN slice encountered")
            medians = np.nanmedian(
                window["median_coherence"].values[..., inside], axis=-1
            )  # (season, baseline)
            fits = {name: np.nanmedian(window[name].values[..., inside], axis=-1) for name in _FIT_VARIABLES}
        fitted = np.isfinite(window["rho_inf"].values[..., inside]).mean(axis=-1)
        tables.append(
            pd.DataFrame(
                {
                    "aoi_id": aoi_id,
                    "burst": burst,
                    "season": np.repeat(seasons, len(baselines)),
                    "temporal_baseline": np.tile(np.asarray(baselines, dtype=np.int32), len(seasons)),
                    "median_coherence": medians.ravel(),
                    **{name: np.repeat(values, len(baselines)) for name, values in fits.items()},
                    "fitted_fraction": np.repeat(fitted, len(baselines)),
                }
            )
        )
    if not tables:
        return pd.DataFrame({column: pd.Series(dtype=_dtype(column)) for column in DECAY_COLUMNS})
    return pd.concat(tables, ignore_index=True)[list(DECAY_COLUMNS)]


def _dtype(column: str) -> str:
    return {"aoi_id": "str", "burst": "str", "season": "str", "temporal_baseline": "int32"}.get(
        column, "float64"
    )
