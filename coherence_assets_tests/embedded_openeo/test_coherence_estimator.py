import math

import numpy as np
import pytest

from embedded_openeo.coherence_estimator import (
    boxcar_coherence,
    expected_decorrelated_coherence,
)

WINDOW_RG, WINDOW_AZ = 21, 5


def circular_gaussian(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64) / np.sqrt(2)


def interior(image: np.ndarray, window_rg: int = WINDOW_RG, window_az: int = WINDOW_AZ) -> np.ndarray:
    """The pixels whose window lies wholly inside the image."""
    return image[
        window_az // 2 : image.shape[0] - window_az // 2, window_rg // 2 : image.shape[1] - window_rg // 2
    ]


def brute_force_coherence(
    reference: np.ndarray, secondary: np.ndarray, row: int, col: int, window_rg: int, window_az: int
) -> float:
    rows = slice(max(row - window_az // 2, 0), row + (window_az - 1) // 2 + 1)
    cols = slice(max(col - window_rg // 2, 0), col + (window_rg - 1) // 2 + 1)
    s1 = reference[rows, cols].astype(np.complex128)
    s2 = secondary[rows, cols].astype(np.complex128)
    return abs(np.sum(s1 * np.conj(s2))) / math.sqrt(np.sum(abs(s1) ** 2) * np.sum(abs(s2) ** 2))


def test_expected_decorrelated_coherence_is_0_0866_for_the_default_window():
    assert expected_decorrelated_coherence(WINDOW_RG * WINDOW_AZ) == pytest.approx(0.0866, abs=5e-5)


def test_expected_decorrelated_coherence_approaches_sqrt_pi_over_4n_for_many_looks():
    looks = 10**6
    assert expected_decorrelated_coherence(looks) == pytest.approx(math.sqrt(math.pi / (4 * looks)), rel=1e-5)


def test_expected_decorrelated_coherence_is_one_for_one_look():
    # With one look the estimate is always 1: |s1 s2*| / (|s1| |s2|).
    assert expected_decorrelated_coherence(1) == pytest.approx(1.0)


def test_expected_decorrelated_coherence_rejects_zero_looks():
    with pytest.raises(ValueError, match="looks"):
        expected_decorrelated_coherence(0)


def test_mean_estimate_of_decorrelated_pixels_matches_theory():
    rng = np.random.default_rng(1)
    reference, secondary = circular_gaussian(rng, (400, 800)), circular_gaussian(rng, (400, 800))

    coherence = boxcar_coherence(reference, secondary, WINDOW_RG, WINDOW_AZ)

    theory = expected_decorrelated_coherence(WINDOW_RG * WINDOW_AZ)
    assert float(interior(coherence).mean()) == pytest.approx(theory, rel=0.03)


def test_mean_estimate_of_coherence_0_8_is_0_8():
    rng = np.random.default_rng(2)
    reference, noise = circular_gaussian(rng, (400, 800)), circular_gaussian(rng, (400, 800))
    secondary = 0.8 * reference + 0.6 * noise

    coherence = boxcar_coherence(reference, secondary, WINDOW_RG, WINDOW_AZ)

    assert float(interior(coherence).mean()) == pytest.approx(0.8, abs=0.01)


@pytest.mark.parametrize(("window_rg", "window_az"), [(7, 3), (4, 2), (1, 1)])
def test_estimate_equals_brute_force_window_sum(window_rg: int, window_az: int):
    rng = np.random.default_rng(3)
    reference, secondary = circular_gaussian(rng, (20, 30)), circular_gaussian(rng, (20, 30))

    coherence = boxcar_coherence(reference, secondary, window_rg, window_az)

    for row, col in [(5, 5), (10, 15), (14, 24), (7, 20)]:
        expected = brute_force_coherence(reference, secondary, row, col, window_rg, window_az)
        assert coherence[row, col] == pytest.approx(expected, rel=1e-4)


def test_edge_pixels_use_the_part_of_the_window_inside_the_image():
    rng = np.random.default_rng(4)
    reference, secondary = circular_gaussian(rng, (20, 30)), circular_gaussian(rng, (20, 30))

    coherence = boxcar_coherence(reference, secondary, 7, 3)

    for row, col in [(0, 0), (19, 29), (0, 15), (10, 29)]:
        expected = brute_force_coherence(reference, secondary, row, col, 7, 3)
        assert coherence[row, col] == pytest.approx(expected, rel=1e-4)


def test_estimate_is_float32_within_zero_and_one():
    rng = np.random.default_rng(5)
    reference = circular_gaussian(rng, (50, 60))

    coherence = boxcar_coherence(reference, reference, WINDOW_RG, WINDOW_AZ)

    assert coherence.dtype == np.float32
    assert coherence.shape == (50, 60)
    assert np.all((coherence >= 0) & (coherence <= 1))
    np.testing.assert_allclose(coherence, 1.0, rtol=1e-5)


def test_nan_input_makes_exactly_the_windows_that_touch_it_nan():
    rng = np.random.default_rng(6)
    reference, secondary = circular_gaussian(rng, (40, 60)), circular_gaussian(rng, (40, 60))
    secondary[20, 30] = complex(np.nan, 0.0)

    coherence = boxcar_coherence(reference, secondary, WINDOW_RG, WINDOW_AZ)

    expected_nan = np.zeros((40, 60), dtype=bool)
    expected_nan[
        20 - WINDOW_AZ // 2 : 20 + WINDOW_AZ // 2 + 1, 30 - WINDOW_RG // 2 : 30 + WINDOW_RG // 2 + 1
    ] = True
    np.testing.assert_array_equal(np.isnan(coherence), expected_nan)
    # The NaN must not leak into the running sums of the pixels after it.
    assert coherence[20, 59] == pytest.approx(
        brute_force_coherence(reference, secondary, 20, 59, 21, 5), rel=1e-4
    )


def test_window_where_an_image_is_zero_is_nan():
    reference = np.zeros((10, 30), dtype=np.complex64)
    secondary = np.ones((10, 30), dtype=np.complex64)

    assert np.isnan(boxcar_coherence(reference, secondary, WINDOW_RG, WINDOW_AZ)).all()


def test_images_of_different_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"\(10, 30\) and \(10, 31\)"):
        boxcar_coherence(np.ones((10, 30), np.complex64), np.ones((10, 31), np.complex64), 21, 5)


def test_empty_window_is_rejected():
    with pytest.raises(ValueError, match="window_rg=0"):
        boxcar_coherence(np.ones((10, 30), np.complex64), np.ones((10, 30), np.complex64), 0, 5)
