"""The stand-in's coherence follows its documented season model and its glaciers follow the packaged AOIs."""

from __future__ import annotations

import datetime
from functools import cache

import geopandas
import numpy as np
import pytest
import shapely
from scipy import ndimage, optimize

from coherence_assets.settings import packaged_demo_bursts_file
from embedded_openeo.coherence_estimator import boxcar_coherence
from embedded_openeo.synthetic_scene import (
    GLACIER_OUTLINES_FILE,
    SEASON_MODEL,
    LandCover,
    Season,
    compute_pair_coherence,
    glacier_mask,
    land_cover_map,
    scene_grid_for_footprint,
    synthetic_slc_pair,
)

PRODUCT_AOIS = "coherence_assets/data/glacier_aois_southtyrol.geojson"
BURST = "t015_030344_iw2"  # holds Hintereisferner and Schalfferner
PIXEL_SIZE = 60.0
WINDOW = (21, 5)
BASELINES = (12, 24, 36, 48)
AUTUMN = datetime.date(2023, 9, 20)


@cache
def footprint() -> shapely.Geometry:
    bursts = geopandas.read_file(packaged_demo_bursts_file())
    return bursts[(bursts.burst_id == 30344) & (bursts.subswath_name == "IW2")].geometry.iloc[0]


def test_the_packaged_glacier_outlines_are_the_products_default_aois() -> None:
    ours = geopandas.read_file(GLACIER_OUTLINES_FILE).set_index("aoi_id").geometry
    product = geopandas.read_file(PRODUCT_AOIS).set_index("aoi_id").geometry

    assert sorted(ours.index) == sorted(product.index)
    assert all(ours[aoi].equals_exact(product[aoi], tolerance=1e-9) for aoi in product.index)


def test_land_cover_is_glacier_inside_the_glacier_outlines() -> None:
    grid = scene_grid_for_footprint(footprint(), pixel_size=PIXEL_SIZE)
    land_cover = land_cover_map(BURST, grid)
    glaciers = glacier_mask(grid)

    assert glaciers.sum() > 100  # two of the demo's AOIs lie in this burst
    assert (land_cover[glaciers] == LandCover.GLACIER).all()


@cache
def estimator_mean(true_coherence: float) -> float:
    """What the 21 x 5 boxcar estimate of a uniform true coherence averages to (it is biased upwards)."""
    truth = np.full((200, 400), true_coherence, dtype=np.float32)
    reference, secondary = synthetic_slc_pair(
        "calibration", AUTUMN, AUTUMN + datetime.timedelta(days=12), truth
    )
    return float(boxcar_coherence(reference, secondary, *WINDOW).mean())


def debiased(measured: float) -> float:
    """The true coherence whose estimates average to ``measured`` (the estimator's mean is monotonic)."""
    grid = np.linspace(0.0, 0.99, 34)
    means = np.array([estimator_mean(round(float(value), 4)) for value in grid])
    return float(np.interp(measured, means, grid))


@cache
def class_means_by_baseline() -> dict[LandCover, list[float]]:
    """Mean estimated coherence over the pixels whose whole window lies in one class, per baseline."""
    grid = scene_grid_for_footprint(footprint(), pixel_size=PIXEL_SIZE)
    land_cover = land_cover_map(BURST, grid)
    means: dict[LandCover, list[float]] = {land_class: [] for land_class in LandCover}
    for days in BASELINES:
        coherence, _ = compute_pair_coherence(
            BURST, footprint(), AUTUMN, AUTUMN + datetime.timedelta(days=days), pixel_size=PIXEL_SIZE
        )
        for land_class in LandCover:
            pure = ndimage.binary_erosion(land_cover == land_class, np.ones(WINDOW[::-1]), border_value=0)
            pure &= np.isfinite(coherence)
            means[land_class].append(float(coherence[pure].mean()))
    return means


@pytest.mark.parametrize("land_class", list(LandCover), ids=lambda land_class: land_class.name)
def test_class_means_follow_the_season_model_at_every_baseline(land_class: LandCover) -> None:
    model = SEASON_MODEL[land_class][Season.of(AUTUMN)]
    for days, measured in zip(BASELINES, class_means_by_baseline()[land_class], strict=True):
        expected = estimator_mean(round(model.coherence(days), 4))
        # thousands of pixels: the mean's noise is far below the estimator's per-pixel spread
        assert measured == pytest.approx(expected, abs=0.015), f"{days} days"


@pytest.mark.parametrize(
    "land_class",
    [LandCover.ROCK, LandCover.GLACIER, LandCover.MEADOW],
    ids=lambda land_class: land_class.name,
)
def test_a_decay_fit_over_12_to_48_days_recovers_the_season_models_parameters(land_class: LandCover) -> None:
    """For the classes whose tau lies within the baselines, where a fit can see it."""
    model = SEASON_MODEL[land_class][Season.of(AUTUMN)]
    truth = [debiased(measured) for measured in class_means_by_baseline()[land_class]]

    def decay(days: np.ndarray, rho_inf: float, tau: float) -> np.ndarray:
        return (1 - rho_inf) * np.exp(-days / tau) + rho_inf

    (rho_inf, tau), _ = optimize.curve_fit(decay, np.array(BASELINES, float), truth, p0=(0.3, 20.0))

    assert 12 <= model.tau <= 48
    assert rho_inf == pytest.approx(model.rho_inf, abs=0.03)
    assert tau == pytest.approx(model.tau, rel=0.15)


def test_glaciers_decorrelate_in_summer_while_rock_stays_high() -> None:
    summer = datetime.date(2023, 7, 15)
    for land_class, low, high in ((LandCover.GLACIER, 0.0, 0.3), (LandCover.ROCK, 0.8, 1.0)):
        assert low <= SEASON_MODEL[land_class][Season.of(summer)].coherence(12) <= high
