"""The ``coherence_decay`` product of one burst, computed tile by tile from the cube's time-series layout.

Per season (a pair belongs to the season of its reference date) and pixel: the median coherence
of each temporal baseline, and the decay model fitted to those medians (``decay/model.py``).
The cube is read one spatial tile at a time with every pair, so memory stays flat whatever the
burst's size, and the result is written tile by tile into a sibling store that replaces the old
product only when complete: a reader never sees half a product.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dask.array as da
import fsspec
import numpy as np
import xarray as xr
import zarr

from coherence_assets.cube.stacking import open_zarr_store
from coherence_assets.decay.model import MIN_BASELINES, fit_decay
from coherence_assets.decay.seasons import season_of, season_start
from coherence_assets.storage import move_tree

log = logging.getLogger(__name__)

SEASON_DIM = "season"
BASELINE_DIM = "temporal_baseline"
# 128 x 128 pixels x every pair: a few tens of MB per tile even at 500 pairs
DEFAULT_TILE = 128
_PARTIAL_SUFFIX = ".partial"
_FIT_VARIABLES = ("rho_inf", "tau", "rmse")


@dataclass(frozen=True)
class DecaySummary:
    """What a user checks first: which seasons were fitted, and how many pixels got a fit in each."""

    path: str
    seasons: list[str]
    baselines: list[int]
    fitted_fraction: dict[str, float]  # season -> share of pixels with a fit
    median_rho_inf: dict[str, float]
    median_tau: dict[str, float]

    @property
    def seasons_without_fit(self) -> list[str]:
        """Seasons in which no pixel could be fitted (fewer than three baselines, or no bounded tau)."""
        return [season for season, fraction in self.fitted_fraction.items() if fraction == 0.0]


def write_seasonal_decay(
    fs: fsspec.AbstractFileSystem, cube: xr.Dataset, path: str, *, tile: int = DEFAULT_TILE
) -> DecaySummary:
    """Compute the seasonal decay product of ``cube`` and store it at ``path`` (Zarr), replacing any old one."""
    coherence = cube["coherence"]
    seasons = np.array([season_of(day) for day in cube["time"].values])
    season_labels = sorted(set(seasons), key=season_start)
    baselines = np.asarray(cube["temporal_baseline"].values, dtype=np.int64)
    baseline_values = sorted({int(value) for value in baselines})
    groups = [
        [np.flatnonzero((seasons == season) & (baselines == baseline)) for baseline in baseline_values]
        for season in season_labels
    ]
    partial = path.rstrip("/") + _PARTIAL_SUFFIX
    if fs.exists(partial):
        fs.rm(partial, recursive=True)
    store = open_zarr_store(fs, partial)
    _template(cube, season_labels, baseline_values, tile).to_zarr(
        store, mode="w-", compute=False, consolidated=False, zarr_format=2
    )
    height, width = coherence.shape[1:]
    for row in range(0, height, tile):
        for column in range(0, width, tile):
            rows, columns = slice(row, min(row + tile, height)), slice(column, min(column + tile, width))
            values = coherence.isel({"y": rows, "x": columns}).values
            _tile_dataset(values, groups, baseline_values).to_zarr(
                store, region={"y": rows, "x": columns}, consolidated=False
            )
    zarr.consolidate_metadata(store)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    move_tree(fs, partial, path)
    log.info(
        "decay of %d season(s) x %d baseline(s) written to %s", len(season_labels), len(baseline_values), path
    )
    return summarise_decay(xr.open_zarr(open_zarr_store(fs, path), consolidated=True), path)


def summarise_decay(decay: xr.Dataset, path: str) -> DecaySummary:
    """Per season: the share of pixels with a fit and the median fitted parameters."""
    fitted = decay["rho_inf"].notnull().mean(("y", "x")).values
    with _all_nan_is_an_answer():
        rho_inf = decay["rho_inf"].median(("y", "x")).values
        tau = decay["tau"].median(("y", "x")).values
    seasons = [str(season) for season in decay[SEASON_DIM].values]
    return DecaySummary(
        path=path,
        seasons=seasons,
        baselines=[int(value) for value in decay[BASELINE_DIM].values],
        fitted_fraction=dict(zip(seasons, (round(float(v), 4) for v in fitted), strict=True)),
        median_rho_inf=dict(zip(seasons, (float(v) for v in rho_inf), strict=True)),
        median_tau=dict(zip(seasons, (float(v) for v in tau), strict=True)),
    )


def _tile_dataset(values: np.ndarray, groups: list[list[np.ndarray]], baselines: list[int]) -> xr.Dataset:
    """Medians per season and baseline, and the fit per season, of one tile of every pair."""
    season_count, tile_shape = len(groups), values.shape[1:]
    medians = np.full((season_count, len(baselines), *tile_shape), np.nan, dtype=np.float32)
    pair_counts = np.zeros((season_count, *tile_shape), dtype=np.int16)
    fits = {name: np.full((season_count, *tile_shape), np.nan, dtype=np.float32) for name in _FIT_VARIABLES}
    for season, by_baseline in enumerate(groups):
        for position, pairs in enumerate(by_baseline):
            if len(pairs) == 0:
                continue
            season_values = values[pairs]
            valid = np.isfinite(season_values)
            pair_counts[season] += valid.sum(axis=0, dtype=np.int16)
            with _all_nan_is_an_answer():
                medians[season, position] = np.nanmedian(season_values, axis=0)
        fit = fit_decay(np.asarray(baselines, dtype=np.float64), medians[season])
        for name in _FIT_VARIABLES:
            fits[name][season] = getattr(fit, name)
    data = {
        "median_coherence": ((SEASON_DIM, BASELINE_DIM, "y", "x"), medians),
        "pair_count": ((SEASON_DIM, "y", "x"), pair_counts),
    }
    data |= {name: ((SEASON_DIM, "y", "x"), fits[name]) for name in _FIT_VARIABLES}
    return xr.Dataset(data)


@contextmanager
def _all_nan_is_an_answer() -> Iterator[None]:
    """A pixel (or season) without any value stays NaN: numpy's warning for that says nothing new."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="All-NaN slice encountered")
        yield


def _template(cube: xr.Dataset, seasons: list[str], baselines: list[int], tile: int) -> xr.Dataset:
    """The product's arrays, coordinates and attributes, with lazy placeholders for the data."""
    height, width = cube["coherence"].shape[1:]
    shape_fit = (len(seasons), height, width)
    shape_median = (len(seasons), len(baselines), height, width)

    def placeholder(shape: tuple[int, ...], dtype: str, fill: float) -> da.Array:
        return da.full(shape, fill, dtype=dtype, chunks=(*shape[:-2], tile, tile))

    attrs = {
        "rho_inf": {"long_name": "long-term coherence rho_inf of the decay model", "units": "1"},
        "tau": {"long_name": "decay time constant tau of the decay model", "units": "days"},
        "rmse": {"long_name": "root mean square residual of the decay fit", "units": "1"},
        "median_coherence": {
            "long_name": "median coherence of the season's pairs per temporal baseline",
            "units": "1",
        },
        "pair_count": {"long_name": "pairs with a coherence value in the season", "units": "1"},
    }
    data = {
        "median_coherence": (
            (SEASON_DIM, BASELINE_DIM, "y", "x"),
            placeholder(shape_median, "float32", np.nan),
        ),
        "pair_count": ((SEASON_DIM, "y", "x"), placeholder(shape_fit, "int16", 0)),
    }
    data |= {
        name: ((SEASON_DIM, "y", "x"), placeholder(shape_fit, "float32", np.nan)) for name in _FIT_VARIABLES
    }
    dataset = xr.Dataset(
        {name: (dims, array, attrs[name]) for name, (dims, array) in data.items()},
        coords={
            SEASON_DIM: np.array(seasons, dtype="U8"),  # fixed width: every Zarr reader knows it
            BASELINE_DIM: (BASELINE_DIM, np.array(baselines, dtype=np.int64), {"units": "days"}),
            "x": cube["x"],
            "y": cube["y"],
        },
        attrs={
            "title": "Seasonal Sentinel-1 coherence decay of one burst",
            "model": "rho(t) = (1 - rho_inf) * exp(-t / tau) + rho_inf",
            "references": "Kellndorfer et al. (2022), Scientific Data 9, 73, doi:10.1038/s41597-022-01189-6",
            "season": "meteorological (DJF, MAM, JJA, SON) of the pair's reference date; December opens the next year's DJF",
            "minimum_baselines": MIN_BASELINES,
        },
    )
    for name in ("rho_inf", "tau", "rmse", "median_coherence", "pair_count"):
        dataset[name].attrs["grid_mapping"] = "spatial_ref"
    if "spatial_ref" in cube.coords or "spatial_ref" in cube:
        dataset = dataset.assign_coords(spatial_ref=cube["spatial_ref"])
    for variable in dataset.variables.values():
        variable.encoding = {}  # the cube's own (Zarr codecs, chunks) would not fit this store
    return dataset
