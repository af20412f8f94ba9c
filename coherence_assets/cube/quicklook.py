"""A PNG quicklook of a coherence cube, small enough to embed in the Dagster UI as Markdown.

It shows what an operator checks first: whether mean coherence over time looks plausible
(drops with snow and melt, stays high on rock), and the latest coherence map.
"""

from __future__ import annotations

import base64
import io

import matplotlib.dates as mdates
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

# The map is decimated to at most this many pixels per side: a quicklook needs no more, and
# it keeps memory and PNG size bounded for any burst.
MAX_MAP_PIXELS = 800
COHERENCE_COLORMAP = "viridis"
# Consecutive pairs further apart than this many baselines have missing acquisitions between them:
# the line breaks there instead of bridging the gap as if coherence had been measured.
GAP_IN_BASELINES = 1.5


def render_quicklook_png(cube: xr.Dataset) -> bytes:
    """Mean coherence per date (one line per temporal baseline) beside the latest map."""
    if cube.coherence.shape[0] == 0:
        raise ValueError("the coherence cube holds no pairs; expected at least one to draw a quicklook")
    # A bare Figure renders with Agg and touches no pyplot global state, so it is safe in
    # Dagster's worker threads and processes without a display.
    figure = Figure(figsize=(11, 4), layout="tight")
    series_axes, map_axes = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    _plot_mean_series(series_axes, cube)
    _plot_latest_map(figure, map_axes, cube)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def quicklook_markdown(png: bytes, title: str = "coherence quicklook") -> str:
    """Markdown that shows ``png`` inline (``MetadataValue.md`` renders data URLs)."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def series_with_gaps(
    times: np.ndarray, values: np.ndarray, baseline_days: float
) -> tuple[np.ndarray, np.ndarray]:
    """``times`` and ``values`` sorted, with a NaN inserted wherever a date step exceeds the gap size."""
    order = np.argsort(times)
    times = np.asarray(times[order], dtype="datetime64[D]")
    values = np.asarray(values[order], dtype=float)
    steps = np.diff(times).astype(float)
    gaps = np.flatnonzero(steps > GAP_IN_BASELINES * baseline_days) + 1
    gap_times = times[gaps - 1] + (times[gaps] - times[gaps - 1]) // 2
    return np.insert(times, gaps, gap_times), np.insert(values, gaps, np.nan)


def _plot_mean_series(axes: Axes, cube: xr.Dataset) -> None:
    leading = cube.coherence.dims[0]
    means = _mean_coherence(cube, leading)
    times = cube["time"].values
    baselines = cube["temporal_baseline"].values
    for baseline in np.unique(baselines):
        selected = baselines == baseline
        line_times, line_values = series_with_gaps(times[selected], means[selected], float(baseline))
        axes.plot(line_times, line_values, marker="o", label=f"{baseline} days")
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.set_ylim(0, 1)
    axes.set_ylabel("mean coherence")
    axes.set_xlabel("reference date")
    axes.set_title("spatial mean coherence per pair (breaks where acquisitions are missing)")
    axes.legend(title="temporal baseline", fontsize="small")
    axes.grid(True, alpha=0.3)


def _plot_latest_map(figure: Figure, axes: Axes, cube: xr.Dataset) -> None:
    leading = cube.coherence.dims[0]
    latest = int(np.argmax(cube["time"].values))
    layer = cube.coherence.isel({leading: latest})
    step = max(1, int(np.ceil(max(layer.sizes["y"], layer.sizes["x"]) / MAX_MAP_PIXELS)))
    layer = layer.isel(y=slice(None, None, step), x=slice(None, None, step))
    x, y = layer["x"].values, layer["y"].values
    image = axes.imshow(
        np.asarray(layer.values),
        vmin=0,
        vmax=1,
        cmap=COHERENCE_COLORMAP,
        extent=(x[0], x[-1], y[-1], y[0]),
        interpolation="nearest",
    )
    reference = np.datetime_as_string(cube["time"].values[latest], unit="D")
    secondary = np.datetime_as_string(cube["secondary_time"].values[latest], unit="D")
    axes.set_title(f"coherence {reference} / {secondary}")
    # UTM metres have six or seven digits: in km, with few ticks, the labels never run together
    kilometres = FuncFormatter(lambda value, _: f"{value / 1000:g}")
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=4))
        axis.set_major_formatter(kilometres)
    axes.set_xlabel("x (km, UTM)")
    axes.set_ylabel("y (km, UTM)")
    axes.tick_params(labelsize="small")
    figure.colorbar(image, ax=axes, label="coherence")


def _mean_coherence(cube: xr.Dataset, leading: str) -> np.ndarray:
    """The stored per-pair means, or computed ones for a cube written without them."""
    if "mean_coherence" in cube.coords:
        return np.asarray(cube["mean_coherence"].values, dtype=float)
    return np.asarray(
        cube.coherence.mean(dim=[name for name in cube.coherence.dims if name != leading]).values
    )
