"""Throughput of the embedded backend's boxcar coherence estimator against plain scipy filtering.

The reference is the least work any boxcar estimator must do: :func:`scipy.ndimage.uniform_filter`
over the four real images it sums (Re and Im of ``s1 conj(s2)``, ``|s1|^2``, ``|s2|^2``), computed
beforehand and not timed. The ratio shows what the estimator adds on top: the products, the NaN
check and the final division.

Run: ``.venv/bin/python benchmarks/estimator_throughput.py [--window-rg 21] [--window-az 5]``
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from embedded_openeo.coherence_estimator import boxcar_coherence

SHAPES = ((200, 400), (400, 800), (1000, 2000), (2000, 4000))
REPEATS = 5


def best_seconds(function: Callable[[], object]) -> float:
    """Best time of one call over ``REPEATS`` rounds, each long enough for the timer (as ``timeit`` does)."""
    timer = timeit.Timer(function)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=REPEATS, number=number)) / number


def circular_gaussian(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.standard_normal((*shape, 2), dtype=np.float32).view(np.complex64)[..., 0]


def seconds_per_call(shape: tuple[int, int], window_rg: int, window_az: int) -> tuple[float, float]:
    """Seconds per call of the estimator and of the four reference filters, on the same random pair."""
    rng = np.random.default_rng(0)
    reference, secondary = circular_gaussian(rng, shape), circular_gaussian(rng, shape)
    cross = reference * secondary.conj()
    real_images = [
        np.ascontiguousarray(image)
        for image in (cross.real, cross.imag, np.abs(reference) ** 2, np.abs(secondary) ** 2)
    ]
    estimator = best_seconds(lambda: boxcar_coherence(reference, secondary, window_rg, window_az))
    filters = best_seconds(
        lambda: [
            ndimage.uniform_filter(image, (window_az, window_rg), mode="constant") for image in real_images
        ]
    )
    return estimator, filters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-rg", type=int, default=21)
    parser.add_argument("--window-az", type=int, default=5)
    args = parser.parse_args()

    print(f"window {args.window_rg} (rg) x {args.window_az} (az), best of {REPEATS} rounds")
    print(f"{'rows x cols':>13} {'boxcar Mpx/s':>13} {'4x uniform_filter Mpx/s':>24} {'ratio':>6}")
    for shape in SHAPES:
        estimator, filters = seconds_per_call(shape, args.window_rg, args.window_az)
        megapixels = shape[0] * shape[1] / 1e6
        print(
            f"{shape[0]:>5} x {shape[1]:<5} {megapixels / estimator:>13.1f} {megapixels / filters:>24.1f}"
            f" {filters / estimator:>6.2f}"
        )


if __name__ == "__main__":
    main()
