"""A PNG of the latest season's decay maps (rho_inf and tau), for the asset's metadata in the UI."""

from __future__ import annotations

import io

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from coherence_assets.cube.quicklook import MAX_MAP_PIXELS
from coherence_assets.decay.seasonal import SEASON_DIM

# tau beyond the longest baseline's few multiples is not bounded by the data: the scale stops there
_TAU_COLOUR_LIMIT_IN_LONGEST_BASELINES = 4


def render_decay_png(decay: xr.Dataset) -> bytes:
    """rho_inf and tau of the latest season with a fit, side by side; NaN (no fit) left blank."""
    fitted = [
        season
        for season in decay[SEASON_DIM].values
        if bool(decay["rho_inf"].sel(season=season).notnull().any())
    ]
    season = fitted[-1] if fitted else decay[SEASON_DIM].values[-1]
    latest = decay.sel({SEASON_DIM: season})
    step = max(1, int(np.ceil(max(latest.sizes["y"], latest.sizes["x"]) / MAX_MAP_PIXELS)))
    latest = latest.isel(y=slice(None, None, step), x=slice(None, None, step))
    longest = float(decay["temporal_baseline"].max())
    figure = Figure(figsize=(10, 4), layout="tight")
    rho_axes, tau_axes = figure.subplots(1, 2)
    for axes, name, limits, label in (
        (rho_axes, "rho_inf", (0.0, 1.0), "rho_inf (long-term coherence)"),
        (tau_axes, "tau", (0.0, longest * _TAU_COLOUR_LIMIT_IN_LONGEST_BASELINES), "tau (days)"),
    ):
        image = axes.imshow(latest[name].values, vmin=limits[0], vmax=limits[1], cmap="viridis")
        axes.set_title(f"{season}: {label}")
        axes.set_axis_off()
        figure.colorbar(image, ax=axes, shrink=0.8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
