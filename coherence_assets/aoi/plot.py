"""A PNG of each AOI's coherence over time, one panel per AOI, for the Dagster UI and beside the table."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

# Panels beyond this many would make the PNG too large to embed; the table holds every AOI.
MAX_PANELS = 12
PANEL_COLUMNS = 3
# A gap longer than this many baselines between consecutive pairs is drawn as a gap, not a line.
GAP_IN_BASELINES = 1.5


def render_aoi_series_png(table: pd.DataFrame, burst: str) -> bytes:
    """Median coherence with its 10-90 % band per pair, one panel per AOI, one line per baseline."""
    aoi_ids = sorted(table["aoi_id"].unique())
    if not aoi_ids:
        raise ValueError(f"the AOI series of {burst} has no rows; expected at least one AOI inside the burst")
    shown = aoi_ids[:MAX_PANELS]
    columns = min(PANEL_COLUMNS, len(shown))
    rows = math.ceil(len(shown) / columns)
    # A bare Figure renders with Agg and touches no pyplot state: safe in Dagster's worker threads.
    figure = Figure(figsize=(4.2 * columns, 2.8 * rows + 0.6), layout="constrained")
    axes_grid = np.atleast_1d(figure.subplots(rows, columns, sharey=True, squeeze=False)).ravel()
    for axes, aoi_id in zip(axes_grid, shown, strict=False):
        for baseline, series in table[table["aoi_id"] == aoi_id].groupby("temporal_baseline"):
            series = _with_gaps(series.sort_values("reference_date"), int(baseline))
            line = axes.plot(series["reference_date"], series["median"], marker=".", label=f"{baseline} d")[0]
            axes.fill_between(
                series["reference_date"], series["p10"], series["p90"], color=line.get_color(), alpha=0.2
            )
        locator = AutoDateLocator(maxticks=6)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        axes.set_ylim(0, 1)
        axes.set_title(aoi_id, fontsize="medium")
        axes.grid(True, alpha=0.3)
        axes.legend(title="baseline", fontsize="x-small", title_fontsize="x-small", loc="upper right")
    for axes in axes_grid[len(shown) :]:
        axes.set_visible(False)
    for axes in axes_grid[::columns]:
        axes.set_ylabel("coherence")
    more = f" (first {MAX_PANELS} of {len(aoi_ids)} AOIs)" if len(aoi_ids) > MAX_PANELS else ""
    figure.suptitle(f"{burst}: median coherence per AOI, 10-90 % band, by reference date{more}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _with_gaps(series: pd.DataFrame, baseline_days: int) -> pd.DataFrame:
    """``series`` with a NaN row inside every gap of more than GAP_IN_BASELINES baselines."""
    steps = series["reference_date"].diff() > pd.Timedelta(days=GAP_IN_BASELINES * max(baseline_days, 1))
    if not steps.any():
        return series
    breaks = series.loc[steps, ["reference_date"]].assign(
        reference_date=lambda frame: frame["reference_date"] - pd.Timedelta(days=1)
    )
    return pd.concat([series, breaks]).sort_values("reference_date")
