"""The seasonal decay fit on a burst-sized season against scipy's per-pixel least squares.

Both fit rho(t) = (1 - rho_inf) exp(-t / tau) + rho_inf to the same medians at baselines 12, 24, 36
and 48 days, with the estimator's noise. The floor is what a user writes without us:
``scipy.optimize.curve_fit`` in a loop over pixels, bounded as ours is (0 <= rho_inf <= 1), timed
on a sample of pixels (a whole burst would take hours) and reported per pixel, with the time it
would take for the burst. The step (``write_seasonal_decay``: read the cube tile by tile, medians,
fit, write Zarr) is timed on a cube of ``--pairs`` pairs of the burst's size, so the table shows
what the fit costs within the whole step.

Run: ``.venv/bin/python benchmarks/decay_fit.py [--height 1000] [--width 4000] [--sample 2000] [--pairs 96]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import fsspec
import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import OptimizeWarning, curve_fit

from coherence_assets.decay.model import decay_model, fit_decay
from coherence_assets.decay.seasonal import write_seasonal_decay

BASELINES = np.array([12.0, 24.0, 36.0, 48.0])


def noisy_medians(rng: np.random.Generator, pixels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rho_inf, tau = rng.uniform(0.1, 0.6, pixels), rng.uniform(8.0, 45.0, pixels)
    truth = decay_model(BASELINES[:, None], rho_inf, tau)
    # the median of about 7 pairs of 105 looks each: the estimator's spread over sqrt(7)
    noise = rng.normal(0.0, 1.0, truth.shape) * (1.0 - truth**2) / np.sqrt(2 * 105 * 7)
    return (truth + noise).astype(np.float32), rho_inf, tau


def scipy_per_pixel(medians: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rho_inf, tau = np.full(medians.shape[1], np.nan), np.full(medians.shape[1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        for pixel in range(medians.shape[1]):
            try:
                (rho_inf[pixel], tau[pixel]), _ = curve_fit(
                    decay_model, BASELINES, medians[:, pixel], p0=(0.3, 20.0), bounds=([0, 1], [1, 1000])
                )
            except RuntimeError:  # no convergence: NaN, as ours
                continue
    return rho_inf, tau


def synthetic_cube(rng: np.random.Generator, height: int, width: int, pairs: int) -> xr.Dataset:
    references = pd.date_range("2023-06-01", periods=pairs // len(BASELINES), freq="6D")
    times = np.repeat(references.values, len(BASELINES))
    baselines = np.tile(BASELINES.astype(np.int64), len(references))
    values = np.empty((len(times), height, width), dtype=np.float32)
    for index, baseline in enumerate(baselines):
        values[index] = decay_model(baseline, 0.3, 20.0) + rng.normal(0, 0.05, (height, width))
    return xr.Dataset(
        {"coherence": (("pair", "y", "x"), values)},
        coords={
            "time": ("pair", times),
            "temporal_baseline": ("pair", baselines),
            "y": -20.0 * np.arange(height),
            "x": 20.0 * np.arange(width),
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--sample", type=int, default=2000, help="pixels fitted with scipy")
    parser.add_argument("--pairs", type=int, default=96, help="pairs of the cube the whole step reads")
    arguments = parser.parse_args()
    rng = np.random.default_rng(0)
    pixels = arguments.height * arguments.width
    medians, rho_inf, tau = noisy_medians(rng, pixels)

    started = time.perf_counter()
    ours = fit_decay(BASELINES, medians)
    ours_seconds = time.perf_counter() - started
    sample = slice(0, arguments.sample)
    started = time.perf_counter()
    scipy_rho, scipy_tau = scipy_per_pixel(medians[:, sample])
    scipy_seconds_per_pixel = (time.perf_counter() - started) / arguments.sample

    def accuracy(found_rho: np.ndarray, found_tau: np.ndarray, truth: slice) -> str:
        return (
            f"median |d rho_inf| {np.nanmedian(np.abs(found_rho - rho_inf[truth])):.4f}, "
            f"median |d tau|/tau {np.nanmedian(np.abs(found_tau - tau[truth]) / tau[truth]):.3f}, "
            f"fitted {np.isfinite(found_tau).mean():.3f}"
        )

    print(
        f"season of {arguments.height} x {arguments.width} pixels, baselines {BASELINES.astype(int).tolist()} d"
    )
    print(f"{'':28}{'seconds':>12}{'us/pixel':>12}   accuracy")
    print(
        f"{'fit_decay (all pixels)':28}{ours_seconds:12.2f}{1e6 * ours_seconds / pixels:12.2f}   "
        f"{accuracy(ours.rho_inf, ours.tau, slice(None))}"
    )
    print(
        f"{'scipy curve_fit per pixel':28}{scipy_seconds_per_pixel * pixels:12.0f}{1e6 * scipy_seconds_per_pixel:12.2f}   "
        f"{accuracy(scipy_rho, scipy_tau, sample)} (on {arguments.sample} pixels, burst time extrapolated)"
    )
    print(f"scipy / fit_decay per pixel: {scipy_seconds_per_pixel * pixels / ours_seconds:.0f}x")

    cube = synthetic_cube(rng, arguments.height, arguments.width, arguments.pairs)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_seasonal_decay(fsspec.filesystem("file"), cube, f"{folder}/decay.zarr")
        step_seconds = time.perf_counter() - started
    print(
        f"whole step on {cube.coherence.shape[0]} pairs (in-memory cube: reads not counted): {step_seconds:.1f} s, "
        f"the fit {ours_seconds / step_seconds:.0%} of it for one season"
    )


if __name__ == "__main__":
    main()
