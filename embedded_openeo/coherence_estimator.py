"""The boxcar coherence estimator that the embedded backend applies to its synthetic SLC pairs.

Coherence is estimated as SNAP does, over a ``window_az`` (rows) x ``window_rg`` (columns)
boxcar::

    gamma = |sum s1 conj(s2)| / sqrt(sum |s1|^2 * sum |s2|^2)

The three window sums are separable running sums (:func:`scipy.ndimage.uniform_filter1d`,
which accumulates in double precision), so the cost per pixel does not grow with the window.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, special


def _window_mean_in_place(values: np.ndarray, window_rg: int, window_az: int) -> None:
    """Replace a real 2-D array by its window mean; zero padding truncates the window at the edges.

    The mean (not the sum) is enough: every term of the estimator is divided by the same window
    area, which cancels in the ratio.
    """
    ndimage.uniform_filter1d(values, window_rg, axis=1, output=values, mode="constant", cval=0.0)
    ndimage.uniform_filter1d(values, window_az, axis=0, output=values, mode="constant", cval=0.0)


def boxcar_coherence(
    reference: np.ndarray, secondary: np.ndarray, window_rg: int, window_az: int
) -> np.ndarray:
    """Coherence magnitude of two co-registered complex images over a boxcar window.

    Parameters
    ----------
    reference, secondary
        Complex 2-D arrays of the same shape (rows are azimuth, columns range).
    window_rg, window_az
        Window size in columns and rows. The window of pixel ``(i, j)`` covers rows
        ``i - window_az // 2 ... i + (window_az - 1) // 2`` and the same for columns, as
        :mod:`scipy.ndimage` centres its filters.

    Returns
    -------
    numpy.ndarray
        float32 coherence in [0, 1]. Edges use a truncated window: only the samples inside the
        image count, so edge pixels have fewer looks (and a higher bias) rather than reusing
        samples as a reflecting border would. A pixel is NaN where any sample in its window is NaN
        in either input, as a window over no-data has no estimate, and where either image is zero
        throughout the window.
    """
    if reference.shape != secondary.shape or reference.ndim != 2:
        raise ValueError(
            f"reference and secondary must be 2-D arrays of the same shape, got {reference.shape} "
            f"and {secondary.shape}"
        )
    if window_rg < 1 or window_az < 1:
        raise ValueError(f"window sizes must be positive, got window_rg={window_rg}, window_az={window_az}")
    reference = np.asarray(reference, dtype=np.complex64)
    secondary = np.asarray(secondary, dtype=np.complex64)

    cross = reference * secondary.conj()
    cross_re = np.ascontiguousarray(cross.real)
    cross_im = np.ascontiguousarray(cross.imag)
    power_reference = np.square(np.abs(reference))
    power_secondary = np.square(np.abs(secondary))

    invalid = np.isnan(power_reference) | np.isnan(power_secondary)
    has_invalid = bool(invalid.any())
    if has_invalid:
        # A running sum would carry a NaN to the end of its line, so zero the samples and mark
        # the windows that touch one instead.
        for values in (cross_re, cross_im, power_reference, power_secondary):
            values[invalid] = 0.0

    for values in (cross_re, cross_im, power_reference, power_secondary):
        _window_mean_in_place(values, window_rg, window_az)

    # sqrt(|c|^2 / (p1 p2)) needs one square root where |c| / sqrt(p1 p2) needs two (hypot is slow).
    coherence = np.square(cross_re, out=cross_re)
    coherence += np.square(cross_im, out=cross_im)
    denominator = np.multiply(power_reference, power_secondary, out=power_reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(coherence, denominator, out=coherence)
    np.sqrt(coherence, out=coherence)
    # Cauchy-Schwarz bounds the estimate by 1; rounding can exceed it by an ulp.
    np.minimum(coherence, 1.0, out=coherence)
    if has_invalid:
        window_invalid = ndimage.maximum_filter(
            invalid.view(np.uint8), size=(window_az, window_rg), mode="constant", cval=0
        )
        coherence[window_invalid.astype(bool)] = np.nan
    return coherence


def expected_decorrelated_coherence(looks: int) -> float:
    """Mean boxcar estimate over ``looks`` independent looks of fully decorrelated pixels.

    ``Gamma(N) Gamma(3/2) / Gamma(N + 1/2)`` (Touzi et al. 1999), about ``sqrt(pi / (4 N))`` for
    large N: what estimates of zero coherence average to, 0.0866 for
    the 21 x 5 default window. Log-gamma keeps it finite for any window size.
    """
    if looks < 1:
        raise ValueError(f"looks must be a positive number of pixels in the window, got {looks}")
    return float(np.exp(special.gammaln(looks) + special.gammaln(1.5) - special.gammaln(looks + 0.5)))
