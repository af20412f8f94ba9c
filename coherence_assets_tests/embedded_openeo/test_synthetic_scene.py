import datetime
from functools import cache

import geopandas
import numpy as np
import pytest
import shapely
from scipy import ndimage

from coherence_assets.settings import packaged_demo_bursts_file
from embedded_openeo.coherence_estimator import expected_decorrelated_coherence
from embedded_openeo.synthetic_scene import (
    LandCover,
    SceneGrid,
    compute_pair_coherence,
    footprint_mask,
    land_cover_map,
    scene_grid_for_footprint,
    synthetic_slc_pair,
    target_coherence,
)

BURST = "t015_030343_iw2"
SUMMER = datetime.date(2023, 7, 3)
SUMMER_12_DAYS = datetime.date(2023, 7, 15)
# Whole bursts at 20 m are 8 million pixels; the scene's behaviour does not depend on the spacing.
COARSE = 40.0


@cache
def demo_footprint() -> shapely.Polygon:
    bursts = geopandas.read_file(packaged_demo_bursts_file())
    row = bursts[(bursts.burst_id == 30343) & (bursts.subswath_name == "IW2")].iloc[0]
    return row.geometry


@cache
def demo_grid() -> SceneGrid:
    return scene_grid_for_footprint(demo_footprint(), pixel_size=COARSE)


@cache
def demo_land_cover() -> np.ndarray:
    return land_cover_map(BURST, demo_grid())


def small_footprint() -> shapely.Polygon:
    """The demo burst shrunk to 8 km x 2 km, so its whole tilted bounding box fits one scene."""
    return shapely.affinity.scale(demo_footprint(), 0.1, 0.1)


def test_grid_is_20_m_utm_32n_with_an_origin_on_multiples_of_20_m():
    grid = scene_grid_for_footprint(demo_footprint())

    assert grid.crs_epsg == 32632
    assert (grid.transform.a, grid.transform.e) == (20.0, -20.0)
    assert grid.transform.c % 20 == 0 and grid.transform.f % 20 == 0


def test_grid_covers_the_whole_burst_and_a_max_shape_crops_it_inside_its_bounding_box():
    full = scene_grid_for_footprint(demo_footprint())
    cropped = scene_grid_for_footprint(demo_footprint(), max_shape=(400, 800))

    # the whole tilted burst, about 85 km x 20 km, in its UTM bounding box
    assert full.width * 20 > 80_000 and full.height * 20 > 20_000
    assert cropped.shape == (400, 800)
    assert full.width > cropped.width and full.height > cropped.height
    assert full.transform.c <= cropped.transform.c
    assert cropped.transform.c + 20 * cropped.width <= full.transform.c + 20 * full.width
    assert full.transform.f >= cropped.transform.f
    assert cropped.transform.f - 20 * cropped.height >= full.transform.f - 20 * full.height


def test_grid_of_a_burst_is_the_same_on_every_call():
    assert scene_grid_for_footprint(demo_footprint()) == scene_grid_for_footprint(demo_footprint())


def test_a_coarser_spacing_covers_the_same_box():
    fine, coarse = scene_grid_for_footprint(demo_footprint()), demo_grid()

    assert coarse.transform.a == COARSE
    assert abs(fine.width * 20 - coarse.width * COARSE) <= COARSE
    assert abs(fine.height * 20 - coarse.height * COARSE) <= COARSE


def test_grid_of_a_southern_footprint_is_in_a_southern_utm_zone():
    footprint = shapely.box(-70.1, -33.1, -70.0, -33.0)

    assert scene_grid_for_footprint(footprint).crs_epsg == 32719


def test_footprint_in_projected_coordinates_is_rejected():
    with pytest.raises(ValueError, match="longitude/latitude"):
        scene_grid_for_footprint(shapely.box(600000, 5100000, 610000, 5110000))


def test_footprint_mask_is_true_inside_the_tilted_burst_only():
    grid = scene_grid_for_footprint(small_footprint())
    mask = footprint_mask(small_footprint(), grid)

    assert mask.shape == grid.shape
    assert mask[grid.height // 2, grid.width // 2]
    assert not mask[0, 0] and not mask[-1, -1]
    assert 0.3 < mask.mean() < 0.9


def test_land_cover_is_the_same_for_the_same_burst_and_differs_between_bursts():
    grid = demo_grid()

    np.testing.assert_array_equal(land_cover_map(BURST, grid), demo_land_cover())
    assert (land_cover_map("t015_030344_iw2", grid) != demo_land_cover()).mean() > 0.3


def test_land_cover_has_every_class_in_a_typical_burst():
    shares = np.bincount(demo_land_cover().ravel(), minlength=len(LandCover)) / demo_land_cover().size

    assert demo_land_cover().dtype == np.uint8
    for land_class in LandCover:
        assert shares[land_class] > 0.01, f"{land_class.name} covers only {shares[land_class]:.1%}"


def test_land_cover_forms_smooth_regions_not_salt_and_pepper():
    land_cover = demo_land_cover()

    same_as_right_neighbour = (land_cover[:, 1:] == land_cover[:, :-1]).mean()

    assert same_as_right_neighbour > 0.95


def true_coherence_of(land_class: LandCover, reference_date: datetime.date, days: int) -> float:
    land_cover = np.array([[land_class]], dtype=np.uint8)
    return float(
        target_coherence(land_cover, reference_date, reference_date + datetime.timedelta(days=days))[0, 0]
    )


def test_glacier_in_the_summer_melt_has_less_coherence_than_rock():
    assert (
        true_coherence_of(LandCover.GLACIER, SUMMER, 12)
        < 0.2
        < 0.7
        < true_coherence_of(LandCover.ROCK, SUMMER, 12)
    )


def test_glacier_loses_coherence_in_summer_melt_and_under_winter_snow():
    autumn = true_coherence_of(LandCover.GLACIER, datetime.date(2023, 10, 3), 12)

    assert true_coherence_of(LandCover.GLACIER, SUMMER, 12) < autumn
    assert true_coherence_of(LandCover.GLACIER, datetime.date(2023, 1, 3), 12) < autumn


def test_vegetation_has_less_coherence_in_the_growing_season():
    for land_class in (LandCover.MEADOW, LandCover.FOREST):
        assert true_coherence_of(land_class, SUMMER, 12) < true_coherence_of(
            land_class, datetime.date(2023, 10, 3), 12
        )


@pytest.mark.parametrize("month", range(1, 13))
def test_water_has_no_coherence_and_rock_stays_high(month: int):
    reference_date = datetime.date(2023, month, 3)

    assert true_coherence_of(LandCover.WATER, reference_date, 12) == 0.0
    assert 0.7 <= true_coherence_of(LandCover.ROCK, reference_date, 12) <= 0.9


@pytest.mark.parametrize("month", range(1, 13))
def test_longer_baselines_never_have_more_coherence(month: int):
    reference_date = datetime.date(2023, month, 20)
    for land_class in LandCover:
        by_baseline = [
            true_coherence_of(land_class, reference_date, days) for days in (6, 12, 24, 48, 96, 400)
        ]
        assert by_baseline == sorted(by_baseline, reverse=True), land_class.name


def test_pair_with_secondary_before_reference_is_rejected():
    with pytest.raises(ValueError, match="2023-07-15"):
        target_coherence(demo_land_cover(), SUMMER_12_DAYS, SUMMER)


def test_slc_pair_is_complex64_and_the_same_on_every_call():
    coherence = np.full((30, 40), 0.5, dtype=np.float32)

    reference, secondary = synthetic_slc_pair(BURST, SUMMER, SUMMER_12_DAYS, coherence)
    again = synthetic_slc_pair(BURST, SUMMER, SUMMER_12_DAYS, coherence)

    assert reference.dtype == secondary.dtype == np.complex64
    np.testing.assert_array_equal(reference, again[0])
    np.testing.assert_array_equal(secondary, again[1])


def test_slc_pairs_share_the_reference_image_of_their_reference_date_only():
    coherence = np.full((30, 40), 0.5, dtype=np.float32)

    reference, secondary = synthetic_slc_pair(BURST, SUMMER, SUMMER_12_DAYS, coherence)
    longer = synthetic_slc_pair(BURST, SUMMER, SUMMER_12_DAYS + datetime.timedelta(days=12), coherence)
    other_burst = synthetic_slc_pair("t015_030344_iw2", SUMMER, SUMMER_12_DAYS, coherence)

    np.testing.assert_array_equal(reference, longer[0])
    assert not np.array_equal(secondary, longer[1])
    assert not np.array_equal(reference, other_burst[0])


def test_slc_pair_rejects_coherence_above_one():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        synthetic_slc_pair(BURST, SUMMER, SUMMER_12_DAYS, np.full((3, 4), 1.5, dtype=np.float32))


def test_pair_coherence_is_float32_on_the_burst_grid_and_the_same_on_every_call():
    coherence, grid = compute_pair_coherence(
        BURST, demo_footprint(), SUMMER, SUMMER_12_DAYS, pixel_size=COARSE
    )
    again, _ = compute_pair_coherence(BURST, demo_footprint(), SUMMER, SUMMER_12_DAYS, pixel_size=COARSE)

    assert grid == demo_grid()
    assert coherence.dtype == np.float32
    assert coherence.shape == grid.shape
    np.testing.assert_array_equal(coherence, again)


def test_pair_coherence_differs_between_dates():
    coherence, _ = compute_pair_coherence(BURST, demo_footprint(), SUMMER, SUMMER_12_DAYS, pixel_size=COARSE)
    later, _ = compute_pair_coherence(
        BURST,
        demo_footprint(),
        SUMMER_12_DAYS,
        SUMMER_12_DAYS + datetime.timedelta(days=12),
        pixel_size=COARSE,
    )

    assert not np.array_equal(coherence, later, equal_nan=True)


def test_pair_coherence_is_nan_outside_the_footprint_only():
    coherence, grid = compute_pair_coherence(BURST, small_footprint(), SUMMER, SUMMER_12_DAYS)

    np.testing.assert_array_equal(np.isnan(coherence), ~footprint_mask(small_footprint(), grid))


@pytest.mark.parametrize(
    "land_class", [LandCover.ROCK, LandCover.MEADOW, LandCover.WATER], ids=lambda land_class: land_class.name
)
def test_estimate_inside_a_class_matches_its_true_coherence(land_class: LandCover):
    coherence, _ = compute_pair_coherence(BURST, demo_footprint(), SUMMER, SUMMER_12_DAYS, pixel_size=COARSE)
    # Only pixels whose whole 21 x 5 window lies in the class, away from the scene edges.
    pure = ndimage.binary_erosion(demo_land_cover() == land_class, np.ones((5, 21)), border_value=0)
    pure &= np.isfinite(coherence)  # the whole burst's box: NaN outside its footprint

    truth = true_coherence_of(land_class, SUMMER, 12)
    # The boxcar estimate is biased upwards, most at low coherence; water sits at the theoretical floor.
    expected = expected_decorrelated_coherence(105) if truth == 0 else truth
    assert pure.sum() > 500
    assert float(coherence[pure].mean()) == pytest.approx(expected, abs=0.1 * expected + 0.005)


def test_a_whole_burst_scene_is_nan_outside_the_swath_and_valid_inside():
    coherence, grid = compute_pair_coherence(
        BURST, demo_footprint(), SUMMER, SUMMER_12_DAYS, pixel_size=COARSE
    )

    inside = footprint_mask(demo_footprint(), grid)
    assert 0.3 < np.isnan(coherence).mean() < 0.7  # a tilted burst fills about half its bounding box
    assert np.isnan(coherence[~inside]).all()
    assert np.isfinite(coherence[inside]).mean() > 0.99


def test_unknown_land_cover_code_is_rejected():
    with pytest.raises(ValueError, match=r"codes 7\.\.7, expected LandCover codes 0\.\.4"):
        target_coherence(np.array([[7]], dtype=np.uint8), SUMMER, SUMMER_12_DAYS)
