"""A PNG of each AOI's coherence over time, one panel per AOI, for the Dagster UI and beside the table."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from coherence_assets.cube.quicklook import series_with_gaps
from coherence_assets.decay.model import decay_model

# Panels beyond this many would make the PNG too large to embed; the table holds every AOI.
MAX_PANELS = 12
PANEL_COLUMNS = 3


def render_aoi_series_png(table: pd.DataFrame, burst: str) -> bytes:
    """Median coherence with its 10-90 % band per pair, one panel per AOI, one line per baseline."""
    aoi_ids, shown, figure, axes_grid, columns = _aoi_panels(table, f"the AOI series of {burst}")
    for axes, aoi_id in zip(axes_grid, shown, strict=False):
        for baseline, series in table[table["aoi_id"] == aoi_id].groupby("temporal_baseline"):
            # gaps in the series stay gaps (a NaN between pairs too far apart), in the line and the band
            dates = series["reference_date"].to_numpy()
            times, median = series_with_gaps(dates, series["median"].to_numpy(), int(baseline))
            _, p10 = series_with_gaps(dates, series["p10"].to_numpy(), int(baseline))
            _, p90 = series_with_gaps(dates, series["p90"].to_numpy(), int(baseline))
            line = axes.plot(times, median, marker=".", label=f"{baseline} d")[0]
            axes.fill_between(times, p10, p90, color=line.get_color(), alpha=0.2)
        locator = AutoDateLocator(maxticks=6)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        axes.set_ylim(0, 1)
        axes.set_title(aoi_id, fontsize="medium")
        axes.grid(True, alpha=0.3)
        axes.legend(title="baseline", fontsize="x-small", title_fontsize="x-small", loc="upper right")
    _label_panels(axes_grid, len(shown), columns, "coherence")
    more = f" (first {MAX_PANELS} of {len(aoi_ids)} AOIs)" if len(aoi_ids) > MAX_PANELS else ""
    figure.suptitle(f"{burst}: median coherence per AOI, 10-90 % band, by reference date{more}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def render_aoi_decay_png(decay_table: pd.DataFrame, burst: str) -> bytes:
    """Median coherence against temporal baseline per AOI and season, with the fitted decay curve."""
    _, shown, figure, axes_grid, columns = _aoi_panels(decay_table, f"the AOI decay table of {burst}")
    longest = float(decay_table["temporal_baseline"].max())
    curve_days = np.linspace(0.0, longest, 100)
    for axes, aoi_id in zip(axes_grid, shown, strict=False):
        # the latest seasons only: more lines than this cannot be told apart
        for season, rows_of_season in list(decay_table[decay_table["aoi_id"] == aoi_id].groupby("season"))[
            -4:
        ]:
            points = axes.plot(
                rows_of_season["temporal_baseline"], rows_of_season["median_coherence"], "o", label=season
            )[0]
            rho_inf, tau = rows_of_season["rho_inf"].iloc[0], rows_of_season["tau"].iloc[0]
            if np.isfinite(rho_inf) and np.isfinite(tau):
                axes.plot(curve_days, decay_model(curve_days, rho_inf, tau), color=points.get_color())
        axes.set_xlim(0, longest * 1.05)
        axes.set_ylim(0, 1)
        axes.set_title(aoi_id, fontsize="medium")
        axes.set_xlabel("temporal baseline (days)")
        axes.grid(True, alpha=0.3)
        axes.legend(title="season", fontsize="x-small", title_fontsize="x-small", loc="upper right")
    _label_panels(axes_grid, len(shown), columns, "median coherence")
    figure.suptitle(f"{burst}: seasonal coherence decay per AOI (points: medians, lines: fitted model)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _aoi_panels(table: pd.DataFrame, what: str) -> tuple[list[str], list[str], Figure, np.ndarray, int]:
    """Every AOI of ``table``, those drawn (at most MAX_PANELS), and a figure with one panel each."""
    aoi_ids = sorted(table["aoi_id"].unique())
    if not aoi_ids:
        raise ValueError(f"{what} has no rows; expected at least one AOI inside the burst")
    shown = aoi_ids[:MAX_PANELS]
    columns = min(PANEL_COLUMNS, len(shown))
    rows = math.ceil(len(shown) / columns)
    # A bare Figure renders with Agg and touches no pyplot state: safe in Dagster's worker threads.
    figure = Figure(figsize=(4.2 * columns, 2.8 * rows + 0.6), layout="constrained")
    axes_grid = np.atleast_1d(figure.subplots(rows, columns, sharey=True, squeeze=False)).ravel()
    return aoi_ids, shown, figure, axes_grid, columns


def _label_panels(axes_grid: np.ndarray, used: int, columns: int, y_label: str) -> None:
    """Hide the panels no AOI uses and label the y axis of each row's first panel."""
    for axes in axes_grid[used:]:
        axes.set_visible(False)
    for axes in axes_grid[::columns]:
        axes.set_ylabel(y_label)
