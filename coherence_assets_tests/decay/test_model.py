"""The decay fit recovers Kellndorfer's model per pixel, vectorised, and says NaN where it cannot."""

import numpy as np
import pytest

from coherence_assets.decay.model import decay_model, fit_decay

BASELINES = np.array([12.0, 24.0, 36.0, 48.0])


def estimator_noise(rng: np.random.Generator, coherence: np.ndarray, looks: int = 105) -> np.ndarray:
    """Coherence plus the spread of a boxcar estimate of ``looks`` looks, (1 - rho^2) / sqrt(2 N) (Touzi 1999)."""
    return coherence + rng.normal(0.0, 1.0, coherence.shape) * (1.0 - coherence**2) / np.sqrt(2 * looks)


def test_noise_free_pixels_are_recovered_exactly_whatever_their_parameters():
    rng = np.random.default_rng(3)
    rho_inf, tau = rng.uniform(0.05, 0.7, 5000), rng.uniform(8.0, 60.0, 5000)

    fit = fit_decay(BASELINES, decay_model(BASELINES[:, None], rho_inf, tau))

    np.testing.assert_allclose(fit.rho_inf, rho_inf, atol=2e-3)
    np.testing.assert_allclose(fit.tau, tau, rtol=5e-3)
    assert np.nanmax(fit.rmse) < 1e-3
    assert (fit.baselines_used == 4).all()


@pytest.mark.parametrize(("rho_inf", "tau"), [(0.2, 15.0), (0.45, 30.0), (0.7, 40.0)])
def test_the_median_of_noisy_pixels_recovers_the_parameters_within_the_issue_bounds(rho_inf, tau):
    rng = np.random.default_rng(7)
    # a season's median of about seven pairs per baseline, each with the 105-look estimator's spread
    pairs = estimator_noise(
        rng, np.broadcast_to(decay_model(BASELINES, rho_inf, tau)[:, None, None], (4, 7, 4000))
    )

    fit = fit_decay(BASELINES, np.median(pairs, axis=1))

    assert abs(np.nanmedian(fit.rho_inf) - rho_inf) <= 0.03
    assert abs(np.nanmedian(fit.tau) - tau) <= 0.15 * tau
    assert np.isfinite(fit.tau).mean() > 0.9


def test_a_pixel_with_fewer_than_three_baselines_gets_nan_never_zero():
    values = decay_model(BASELINES[:, None], 0.3, 20.0) * np.ones((4, 3))
    values[:2, 0] = np.nan  # two baselines left
    values[:, 1] = np.nan  # nothing at all

    fit = fit_decay(BASELINES, values)

    assert np.isnan(fit.rho_inf[:2]).all() and np.isnan(fit.tau[:2]).all() and np.isnan(fit.rmse[:2]).all()
    assert list(fit.baselines_used) == [2, 0, 4]
    assert fit.rho_inf[2] == pytest.approx(0.3, abs=2e-3)


def test_coherence_that_does_not_decay_over_the_baselines_has_no_bounded_tau_and_is_nan():
    flat = np.full((4, 2), 0.9)
    rising = np.array([[0.3], [0.5], [0.7], [0.9]])

    fit = fit_decay(BASELINES, np.concatenate([flat, rising], axis=1))

    assert np.isnan(fit.tau).all() and np.isnan(fit.rho_inf).all()


def test_pixels_keep_their_shape_and_bad_baselines_are_refused():
    fit = fit_decay(BASELINES, np.full((4, 2, 3), 0.5))
    assert fit.tau.shape == (2, 3)
    with pytest.raises(ValueError, match="distinct positive days"):
        fit_decay(np.array([12.0, 12.0, 24.0]), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="one row per baseline"):
        fit_decay(BASELINES, np.zeros((3, 1)))
