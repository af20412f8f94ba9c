"""Synthetic scenes for the embedded backend: a grid, a land cover, a season model and SLC pairs.

The backend cannot process real Sentinel-1 data, so it simulates a burst well enough for the
coherence to behave as it does over the Alps: rock keeps coherence, meadow and forest lose it in
the growing season, glaciers lose it in the summer melt and under wet snow, water has none, and
all of it decays with the temporal baseline following Kellndorfer et al. (2022)'s model
``rho(t) = (1 - rho_inf) exp(-t / tau) + rho_inf`` with known parameters per land cover and
meteorological season (:data:`SEASON_MODEL`), so that tests can check a decay fit recovers them.

A scene covers the burst's whole bounding box, NaN outside the burst's footprint, as SNAP's
terrain-corrected outputs do; the pixel spacing is a setting (CDSE delivers 20 m). The packaged
glacier outlines (``data/glacier_outlines_southtyrol.geojson``, a copy of the product's default
AOIs) are glacier wherever they fall in a scene.

The scene is simulated directly on the 20 m UTM grid that SNAP's terrain correction would
produce, so the coherence window counts map pixels rather than SLC samples. Each pixel is an
independent look, which makes the estimate match the theory for N = ``window_rg * window_az``
looks exactly.

Everything is deterministic: random numbers are seeded from a stable hash of the burst key and
the dates, so a restarted backend recomputes identical results.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import math
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import affine
import geopandas
import numpy as np
import rasterio.features
import shapely
from pyproj import Transformer
from scipy import ndimage

from coherence_assets.cdse_facts import CDSE_PIXEL_SIZE
from embedded_openeo.coherence_estimator import boxcar_coherence

GLACIER_OUTLINES_FILE = Path(__file__).parent / "data" / "glacier_outlines_southtyrol.geojson"

# (correlation length in metres, weight) of the octaves of the elevation-like field: valleys and ridges.
ELEVATION_OCTAVES = ((4000.0, 1.0), (1000.0, 0.5))
ROUGHNESS_CORRELATION_M = 600.0


class LandCover(enum.IntEnum):
    """Land-cover classes of the season model, stored as uint8 codes."""

    ROCK = 0
    GLACIER = 1
    MEADOW = 2
    FOREST = 3
    WATER = 4


@dataclass(frozen=True)
class SceneGrid:
    """The north-up UTM raster grid that a burst's coherence is computed and delivered on."""

    crs_epsg: int
    transform: affine.Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols), the shape of every array on this grid."""
        return self.height, self.width


def _stable_seed(*parts: str) -> np.random.SeedSequence:
    """A seed that is the same in every process, unlike ``hash()``, which Python salts per run."""
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=16).digest()
    return np.random.SeedSequence(int.from_bytes(digest, "little"))


def _rng(*parts: str) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(_stable_seed(*parts)))


def _date_key(date: datetime.date) -> str:
    """The calendar day of a date or datetime, so a time of day never changes a seed."""
    return date.strftime("%Y-%m-%d")


def _utm_epsg(longitude: float, latitude: float) -> int:
    """EPSG code of the standard UTM zone of a point (without the Norway and Svalbard exceptions)."""
    zone = min(int((longitude + 180.0) // 6.0) + 1, 60)
    return (32600 if latitude >= 0 else 32700) + zone


def _validated_footprint(footprint_lonlat: shapely.Geometry) -> shapely.Geometry:
    if footprint_lonlat.is_empty or footprint_lonlat.geom_type not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"the footprint must be a non-empty polygon, got {footprint_lonlat.geom_type}")
    min_lon, min_lat, max_lon, max_lat = footprint_lonlat.bounds
    if min_lon < -180 or max_lon > 180 or min_lat < -90 or max_lat > 90:
        raise ValueError(
            f"the footprint must be in longitude/latitude degrees (EPSG:4326), got bounds "
            f"{footprint_lonlat.bounds}"
        )
    return footprint_lonlat


def _footprint_in_utm(footprint_lonlat: shapely.Geometry, crs_epsg: int) -> shapely.Geometry:
    """The footprint in a UTM zone, its edges densified to about 1 km so they project as curves."""
    transformer = Transformer.from_crs(4326, crs_epsg, always_xy=True)
    densified = shapely.segmentize(footprint_lonlat, max_segment_length=0.01)
    return shapely.transform(densified, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


def scene_grid_for_footprint(
    footprint_lonlat: shapely.Polygon,
    pixel_size: float = CDSE_PIXEL_SIZE,
    max_shape: tuple[int, int] | None = None,
) -> SceneGrid:
    """The grid of a burst: its whole UTM bounding box at ``pixel_size``, as CDSE delivers it.

    The zone is that of the footprint's centroid. Pixel edges lie on multiples of ``pixel_size``
    (the box is snapped outwards), so every grid of the same burst is identical and grids of
    overlapping bursts in the same zone share pixel edges. With ``max_shape`` (rows, cols) a larger
    box is cropped to that size around the projected centroid, kept inside the box: tests use it to
    bound the cost of a pair where the burst's edges do not matter.
    """
    footprint_lonlat = _validated_footprint(footprint_lonlat)
    if pixel_size <= 0:
        raise ValueError(f"pixel_size must be positive, got {pixel_size}")
    max_rows, max_cols = max_shape or (math.inf, math.inf)
    if max_rows < 1 or max_cols < 1:
        raise ValueError(f"max_shape must be positive (rows, cols), got {max_shape}")
    centroid = footprint_lonlat.centroid
    crs_epsg = _utm_epsg(centroid.x, centroid.y)
    footprint_utm = _footprint_in_utm(footprint_lonlat, crs_epsg)

    min_x, min_y, max_x, max_y = footprint_utm.bounds
    first_col, last_col = math.floor(min_x / pixel_size), math.ceil(max_x / pixel_size)
    first_row, last_row = math.floor(min_y / pixel_size), math.ceil(max_y / pixel_size)
    centre = footprint_utm.centroid
    # Column and row indices here count pixels from the UTM origin; rows count northwards.
    cols = int(min(last_col - first_col, max_cols))
    rows = int(min(last_row - first_row, max_rows))
    left = math.floor(centre.x / pixel_size) - cols // 2
    bottom = math.floor(centre.y / pixel_size) - rows // 2
    left = min(max(left, first_col), last_col - cols)
    bottom = min(max(bottom, first_row), last_row - rows)

    transform = affine.Affine(
        pixel_size, 0.0, left * pixel_size, 0.0, -pixel_size, (bottom + rows) * pixel_size
    )
    return SceneGrid(crs_epsg=crs_epsg, transform=transform, width=cols, height=rows)


def footprint_mask(footprint_lonlat: shapely.Polygon, grid: SceneGrid) -> np.ndarray:
    """True where a pixel's centre lies inside the footprint.

    Outside it the outputs are NaN, as in SNAP's terrain-corrected products, whose bounding box
    is larger than the tilted burst.
    """
    footprint_utm = _footprint_in_utm(_validated_footprint(footprint_lonlat), grid.crs_epsg)
    return rasterio.features.geometry_mask(
        [footprint_utm], out_shape=grid.shape, transform=grid.transform, invert=True
    )


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], correlation_px: float) -> np.ndarray:
    """Spatially smooth float32 noise: white noise on a coarse lattice, cubic-spline interpolated."""
    rows, cols = shape
    coarse_shape = (math.ceil(rows / correlation_px) + 1, math.ceil(cols / correlation_px) + 1)
    coarse = rng.standard_normal(coarse_shape, dtype=np.float32)
    zoom = (rows / coarse_shape[0], cols / coarse_shape[1])
    return ndimage.zoom(coarse, zoom, order=3, output=np.float32)


# Elevation bands from the valley floor up, and what a rough patch in each band becomes
# (clearings in the forest, outcrops in the meadow, nunataks in the glacier).
_CLASS_OF_BAND = np.array(
    [LandCover.WATER, LandCover.FOREST, LandCover.MEADOW, LandCover.ROCK, LandCover.GLACIER], dtype=np.uint8
)
_ROUGH_CLASS_OF_BAND = np.array(
    [LandCover.WATER, LandCover.MEADOW, LandCover.ROCK, LandCover.ROCK, LandCover.ROCK], dtype=np.uint8
)


@cache
def glacier_outlines() -> shapely.Geometry:
    """The packaged glacier outlines (EPSG:4326) as one geometry."""
    return shapely.union_all(geopandas.read_file(GLACIER_OUTLINES_FILE).to_crs(4326).geometry.values)


def glacier_mask(grid: SceneGrid) -> np.ndarray:
    """True where a pixel's centre lies inside a packaged glacier outline."""
    outlines = glacier_outlines()
    west, south, east, north = _grid_bounds_lonlat(grid)
    if not outlines.intersects(shapely.box(west, south, east, north)):
        return np.zeros(grid.shape, dtype=bool)
    outlines_utm = _footprint_in_utm(outlines, grid.crs_epsg)
    return rasterio.features.geometry_mask(
        [outlines_utm], out_shape=grid.shape, transform=grid.transform, invert=True
    )


def _grid_bounds_lonlat(grid: SceneGrid) -> tuple[float, float, float, float]:
    left, top = grid.transform @ (0, 0)
    right, bottom = grid.transform @ (grid.width, grid.height)
    transformer = Transformer.from_crs(grid.crs_epsg, 4326, always_xy=True)
    return transformer.transform_bounds(left, bottom, right, top)


# A burst's land cover is the same for each of its pairs: a job computes it once.
@lru_cache(maxsize=4)
def land_cover_map(burst_key: str, grid: SceneGrid) -> np.ndarray:
    """uint8 :class:`LandCover` codes on ``grid``, the same for every call with the same burst key.

    An elevation-like field (two octaves of smooth noise) is cut into bands at quantiles drawn per
    burst: water in the lowest hollows, then forest, meadow, rock, and glaciers on top. A second,
    finer field turns its roughest patches into the next more open class. Cutting at quantiles
    keeps every class present in every scene while their shares still differ between bursts.
    Inside the packaged glacier outlines the land cover is glacier, so the product's default AOIs
    show a glacier's seasons. The array is read-only: it is shared between calls.
    """
    rng = _rng("land-cover", burst_key)
    pixel_size = abs(grid.transform.a)
    elevation = sum(
        weight * _smooth_noise(rng, grid.shape, correlation_m / pixel_size)
        for correlation_m, weight in ELEVATION_OCTAVES
    )
    roughness = _smooth_noise(rng, grid.shape, ROUGHNESS_CORRELATION_M / pixel_size)

    water_share = rng.uniform(0.02, 0.06)
    forest_share = rng.uniform(0.15, 0.30)
    meadow_share = rng.uniform(0.15, 0.30)
    glacier_share = rng.uniform(0.10, 0.25)
    band_edges = [
        water_share,
        water_share + forest_share,
        water_share + forest_share + meadow_share,
        1.0 - glacier_share,
    ]
    band = np.digitize(elevation, np.quantile(elevation, band_edges))
    rough = roughness > np.quantile(roughness, 0.85)
    land_cover = np.where(rough, _ROUGH_CLASS_OF_BAND[band], _CLASS_OF_BAND[band]).astype(np.uint8)
    land_cover[glacier_mask(grid)] = LandCover.GLACIER
    land_cover.flags.writeable = False
    return land_cover


@dataclass(frozen=True)
class DecayParameters:
    """Kellndorfer et al. (2022)'s temporal decay ``rho(t) = (1 - rho_inf) exp(-t / tau) + rho_inf``.

    ``rho_inf`` is the long-term coherence, ``tau`` the decorrelation time in days.
    """

    rho_inf: float
    tau: float

    def coherence(self, baseline_days: float) -> float:
        return (1.0 - self.rho_inf) * math.exp(-baseline_days / self.tau) + self.rho_inf


class Season(enum.Enum):
    """Meteorological seasons, as the Global Seasonal Sentinel-1 Coherence data set uses them."""

    DJF = (12, 1, 2)
    MAM = (3, 4, 5)
    JJA = (6, 7, 8)
    SON = (9, 10, 11)

    @classmethod
    def of(cls, day: datetime.date) -> Season:
        return next(season for season in cls if day.month in season.value)


def _all_year(parameters: DecayParameters) -> dict[Season, DecayParameters]:
    return dict.fromkeys(Season, parameters)


# The known parameters of the season model, per land cover and season of the pair's reference date.
# Chosen to look like the Alps in Kellndorfer's maps: rock keeps coherence all year; glaciers
# decorrelate within days in the summer melt (JJA) and lose much under winter and spring snow;
# meadow and forest lose it in the growing season; water decorrelates within minutes. Where
# ``tau`` lies within 12-48 days a decay fit over those baselines recovers it.
SEASON_MODEL: dict[LandCover, dict[Season, DecayParameters]] = {
    LandCover.ROCK: _all_year(DecayParameters(0.65, 30.0)) | {Season.DJF: DecayParameters(0.60, 24.0)},
    LandCover.GLACIER: {
        Season.DJF: DecayParameters(0.30, 16.0),
        Season.MAM: DecayParameters(0.20, 12.0),
        Season.JJA: DecayParameters(0.05, 6.0),
        Season.SON: DecayParameters(0.40, 24.0),
    },
    LandCover.MEADOW: {
        Season.DJF: DecayParameters(0.30, 18.0),
        Season.MAM: DecayParameters(0.20, 12.0),
        Season.JJA: DecayParameters(0.15, 10.0),
        Season.SON: DecayParameters(0.25, 14.0),
    },
    LandCover.FOREST: {
        Season.DJF: DecayParameters(0.15, 12.0),
        Season.MAM: DecayParameters(0.10, 8.0),
        Season.JJA: DecayParameters(0.10, 6.0),
        Season.SON: DecayParameters(0.12, 10.0),
    },
    LandCover.WATER: _all_year(DecayParameters(0.0, 0.01)),
}


def target_coherence(
    land_cover: np.ndarray, reference_date: datetime.date, secondary_date: datetime.date
) -> np.ndarray:
    """The true coherence of each pixel for a pair, from its land cover and the season model.

    A pair belongs to the season of its reference date (as the decay product groups pairs), so
    longer intervals of the same reference never gain coherence.
    """
    if secondary_date <= reference_date:
        raise ValueError(
            f"the secondary date must follow the reference date, got reference {reference_date} "
            f"and secondary {secondary_date}"
        )
    if land_cover.size and (land_cover.min() < 0 or land_cover.max() >= len(LandCover)):
        raise ValueError(
            f"land cover holds codes {land_cover.min()}..{land_cover.max()}, expected LandCover codes "
            f"0..{len(LandCover) - 1}"
        )
    baseline_days = (secondary_date - reference_date).days
    season = Season.of(reference_date)
    coherence_of_class = np.empty(len(LandCover), dtype=np.float32)
    for land_class, parameters in SEASON_MODEL.items():
        coherence_of_class[land_class] = parameters[season].coherence(baseline_days)
    return coherence_of_class[land_cover]


def _circular_gaussian(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """complex64 circular Gaussian samples of unit power, drawn as float32 pairs for speed."""
    samples = rng.standard_normal((*shape, 2), dtype=np.float32)
    samples *= np.float32(math.sqrt(0.5))
    return samples.view(np.complex64)[..., 0]


def synthetic_slc_pair(
    burst_key: str,
    reference_date: datetime.date,
    secondary_date: datetime.date,
    coherence: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Two complex64 SLCs whose pixels have the given true coherence.

    ``s2 = g s1 + sqrt(1 - g^2) n`` with ``s1`` and ``n`` independent unit-power circular Gaussians
    has coherence ``g`` with ``s1``. ``s1`` is seeded by burst and reference date, the noise by
    burst and both dates, so a pair is reproducible and pairs of different dates differ.
    """
    if coherence.ndim != 2:
        raise ValueError(f"coherence must be a 2-D array, got shape {coherence.shape}")
    if np.nanmin(coherence, initial=0.0) < 0.0 or np.nanmax(coherence, initial=0.0) > 1.0:
        raise ValueError(
            f"coherence must lie in [0, 1], got values from {np.nanmin(coherence)} to {np.nanmax(coherence)}"
        )
    reference_key, secondary_key = _date_key(reference_date), _date_key(secondary_date)
    reference = _circular_gaussian(_rng("slc", burst_key, reference_key), coherence.shape)
    noise = _circular_gaussian(_rng("slc-noise", burst_key, reference_key, secondary_key), coherence.shape)
    coherence = coherence.astype(np.float32, copy=False)
    secondary = coherence * reference + np.sqrt(1.0 - np.square(coherence)) * noise
    return reference, secondary


def compute_pair_coherence(
    burst_key: str,
    footprint_lonlat: shapely.Polygon,
    reference_date: datetime.date,
    secondary_date: datetime.date,
    window_rg: int = 21,
    window_az: int = 5,
    pixel_size: float = CDSE_PIXEL_SIZE,
    max_shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, SceneGrid]:
    """The estimated coherence of one pair of one burst, as the backend delivers it.

    Returns float32 coherence on the burst's grid, NaN outside the footprint, and the grid.
    """
    grid = scene_grid_for_footprint(footprint_lonlat, pixel_size=pixel_size, max_shape=max_shape)
    truth = target_coherence(land_cover_map(burst_key, grid), reference_date, secondary_date)
    reference, secondary = synthetic_slc_pair(burst_key, reference_date, secondary_date, truth)
    coherence = boxcar_coherence(reference, secondary, window_rg, window_az)
    coherence[~_footprint_mask_cached(footprint_lonlat.wkb, grid)] = np.nan
    return coherence, grid


@lru_cache(maxsize=4)
def _footprint_mask_cached(footprint_wkb: bytes, grid: SceneGrid) -> np.ndarray:
    """:func:`footprint_mask` once per burst and grid: every pair of a job needs the same one."""
    return footprint_mask(shapely.from_wkb(footprint_wkb), grid)
