"""Kellndorfer et al. (2022)'s coherence decay model, fitted to many pixels at once.

The model of the Global Seasonal Sentinel-1 Interferometric Coherence data set
(Kellndorfer et al. 2022, Scientific Data, doi:10.1038/s41597-022-01189-6) is

    rho(t) = (1 - rho_inf) * exp(-t / tau) + rho_inf

for the coherence ``rho`` of a pair ``t`` days apart. For a fixed ``tau`` it is linear in
``rho_inf``, so the least-squares ``rho_inf`` has a closed form: the fit profiles the residual
over a log-spaced grid of ``tau`` for every pixel at once (matrix products of grid x baselines
by baselines x pixels), then refines the best grid point by a parabola through its neighbours
in log ``tau``. No pixel runs Python code of its own, so a burst of millions of pixels fits in
seconds. A pixel with fewer than three baselines, or whose best ``tau`` lies at an end of the
grid (the data do not bound it), gets NaN: a missing value is never a 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_BASELINES = 3
# tau is bounded by the data only inside a few times the baselines' range; beyond the grid's
# ends the residual is flat and the fit reports no value rather than an arbitrary one.
_TAU_GRID_BELOW_SHORTEST = 4.0
_TAU_GRID_ABOVE_LONGEST = 8.0
_TAU_GRID_SIZE = 96
# pixels profiled at once: the (grid x pixels) arrays stay near 50 MB whatever the burst's size
_PIXELS_PER_PASS = 65536


@dataclass(frozen=True)
class DecayFit:
    """Per-pixel fit results, each shaped like the pixels given (NaN where there is no fit)."""

    rho_inf: np.ndarray
    tau: np.ndarray
    rmse: np.ndarray
    baselines_used: np.ndarray  # int: baselines with a finite coherence


def decay_model(baseline_days: np.ndarray | float, rho_inf: np.ndarray | float, tau: np.ndarray | float):
    """Coherence after ``baseline_days`` under the model with long-term coherence ``rho_inf`` and decay ``tau``."""
    return (1.0 - rho_inf) * np.exp(-np.asarray(baseline_days) / tau) + rho_inf


def tau_grid(baseline_days: np.ndarray) -> np.ndarray:
    """The log-spaced ``tau`` values (days) every pixel is profiled over."""
    shortest, longest = float(np.min(baseline_days)), float(np.max(baseline_days))
    return np.geomspace(
        shortest / _TAU_GRID_BELOW_SHORTEST, longest * _TAU_GRID_ABOVE_LONGEST, _TAU_GRID_SIZE
    )


def fit_decay(baseline_days: np.ndarray, coherence: np.ndarray) -> DecayFit:
    """Fit the decay model to every pixel of ``coherence``.

    Parameters
    ----------
    baseline_days
        The temporal baselines, shape ``(B,)``, distinct and positive.
    coherence
        Coherence per baseline, shape ``(B, ...)`` (for example the season's median per baseline
        of every pixel); NaN where a baseline has no value for a pixel.
    """
    baselines = np.asarray(baseline_days, dtype=np.float64)
    if baselines.ndim != 1 or len(np.unique(baselines)) != len(baselines) or np.any(baselines <= 0):
        raise ValueError(f"baseline_days must be distinct positive days, got {baseline_days!r}")
    values = np.asarray(coherence, dtype=np.float64)
    if values.shape[:1] != baselines.shape:
        raise ValueError(
            f"coherence must have one row per baseline ({len(baselines)}), got shape {values.shape}"
        )
    pixel_shape = values.shape[1:]
    flat = values.reshape(len(baselines), -1)
    if flat.shape[1] == 0:
        empty = np.empty(pixel_shape)
        return DecayFit(empty, empty, empty, np.zeros(pixel_shape, dtype=np.int64))
    parts = [
        _fit_pixels(baselines, flat[:, first : first + _PIXELS_PER_PASS])
        for first in range(0, flat.shape[1], _PIXELS_PER_PASS)
    ]
    return DecayFit(*(np.concatenate(arrays).reshape(pixel_shape) for arrays in zip(*parts, strict=True)))


def _fit_pixels(baselines: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, ...]:
    """rho_inf, tau, rmse and baselines used of the pixels (columns) of ``flat``."""
    weights = np.isfinite(flat).astype(np.float64)
    observed = np.where(weights > 0, flat, 0.0)
    used = weights.sum(axis=0).astype(np.int64)

    taus = tau_grid(baselines)
    decay = np.exp(-baselines[None, :] / taus[:, None])  # (grid, baselines)
    residual = _profile_residual(decay, weights, observed)  # (grid, pixels)
    best = np.argmin(residual, axis=0)
    interior = (best > 0) & (best < len(taus) - 1)
    log_tau = _refine_log_tau(np.log(taus), residual, best)

    tau = np.exp(log_tau)
    rho_inf, sse = _fit_at(baselines, tau, weights, observed)
    grid_sse = residual[best, np.arange(residual.shape[1])]
    # the parabola can overshoot where the profile is not locally quadratic: keep the grid point then
    overshot = sse > grid_sse
    tau = np.where(overshot, taus[best], tau)
    rho_inf, sse = _fit_at(baselines, tau, weights, observed)

    fitted = interior & (used >= MIN_BASELINES)
    rmse = np.sqrt(np.maximum(sse, 0.0) / np.maximum(used, 1))
    nan = np.float64(np.nan)
    return np.where(fitted, rho_inf, nan), np.where(fitted, tau, nan), np.where(fitted, rmse, nan), used


def _best_rho_inf(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """The least-squares long-term coherence for a fixed tau, kept inside [0, 1] as a coherence is."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(np.where(denominator > 0, numerator / denominator, 0.0), 0.0, 1.0)


def _profile_residual(decay: np.ndarray, weights: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Sum of squared residuals of every pixel at every grid tau, with rho_inf at its optimum.

    With ``e = exp(-t/tau)`` the model is ``e + rho_inf (1 - e)``; every sum over baselines is a
    (grid x baselines) @ (baselines x pixels) product.
    """
    rest = 1.0 - decay
    weighted = weights * observed
    denominator = (rest**2) @ weights
    numerator = rest @ weighted - (decay * rest) @ weights
    rho_inf = _best_rho_inf(numerator, denominator)
    squares = (weighted * observed).sum(axis=0)[None, :] - 2.0 * (decay @ weighted) + (decay**2) @ weights
    return squares - 2.0 * rho_inf * numerator + rho_inf**2 * denominator


def _refine_log_tau(log_taus: np.ndarray, residual: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Vertex of the parabola through the best grid point and its neighbours, in log tau."""
    columns = np.arange(residual.shape[1])
    inner = np.clip(best, 1, len(log_taus) - 2)
    left, middle, right = (residual[inner + offset, columns] for offset in (-1, 0, 1))
    step = log_taus[1] - log_taus[0]
    curvature = left - 2.0 * middle + right
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(curvature > 0, 0.5 * (left - right) / curvature, 0.0)
    return log_taus[inner] + np.clip(shift, -1.0, 1.0) * step


def _fit_at(
    baselines: np.ndarray, tau: np.ndarray, weights: np.ndarray, observed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """rho_inf and the sum of squared residuals of each pixel at its own tau."""
    decay = np.exp(-baselines[:, None] / tau[None, :])  # (baselines, pixels)
    rest = 1.0 - decay
    numerator = (weights * (observed - decay) * rest).sum(axis=0)
    denominator = (weights * rest**2).sum(axis=0)
    rho_inf = _best_rho_inf(numerator, denominator)
    sse = (weights * (observed - decay - rho_inf * rest) ** 2).sum(axis=0)
    return rho_inf, sse
