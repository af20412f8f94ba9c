"""Synthetic scenes for the embedded backend: a grid, a land cover, a season model and SLC pairs.

The backend cannot process real Sentinel-1 data, so it simulates a burst well enough for the
coherence to behave as it does over the Alps: rock keeps coherence, meadow and forest lose it in
the growing season, glaciers lose it in the summer melt and under wet snow, water has none, and
all of it decays with the temporal baseline.

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

import affine
import numpy as np
import rasterio.features
import shapely
from pyproj import Transformer
from scipy import ndimage

from embedded_openeo.coherence_estimator import boxcar_coherence

DEFAULT_PIXEL_SIZE = 20.0
# 16 km x 8 km at 20 m: one pair takes about 65 ms on one core, and its float32 GeoTIFF is 1.3 MB
# uncompressed, 1.0 MB with deflate and floating-point predictor.
DEFAULT_SCENE_SHAPE = (400, 800)

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
    pixel_size: float = DEFAULT_PIXEL_SIZE,
    max_shape: tuple[int, int] = DEFAULT_SCENE_SHAPE,
) -> SceneGrid:
    """The grid of a burst: its UTM bounding box at ``pixel_size``, cropped around its centre.

    The zone is that of the footprint's centroid. Pixel edges lie on multiples of ``pixel_size``
    (the box is snapped outwards), so every grid of the same burst is identical and grids of
    overlapping bursts in the same zone share pixel edges. A box larger than ``max_shape`` (rows, cols) is cropped to that size around
    the projected centroid, kept inside the box, which bounds the cost of a pair.
    """
    footprint_lonlat = _validated_footprint(footprint_lonlat)
    if pixel_size <= 0:
        raise ValueError(f"pixel_size must be positive, got {pixel_size}")
    max_rows, max_cols = max_shape
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
    cols = min(last_col - first_col, max_cols)
    rows = min(last_row - first_row, max_rows)
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


def land_cover_map(burst_key: str, grid: SceneGrid) -> np.ndarray:
    """uint8 :class:`LandCover` codes on ``grid``, the same for every call with the same burst key.

    An elevation-like field (two octaves of smooth noise) is cut into bands at quantiles drawn per
    burst: water in the lowest hollows, then forest, meadow, rock, and glaciers on top. A second,
    finer field turns its roughest patches into the next more open class. Cutting at quantiles
    keeps every class present in every scene while their shares still differ between bursts.
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
    return np.where(rough, _ROUGH_CLASS_OF_BAND[band], _CLASS_OF_BAND[band])


@dataclass(frozen=True)
class _CoherenceModel:
    """Temporal decorrelation of one class, ``season * (long_term + (short_term - long_term) exp(-dt / tau))``.

    The exponential model is the usual one for temporal decorrelation (Rocca 2007, Parizzi et al.
    2009); ``season_factor`` (January first) scales it for the months an interval spans.
    """

    short_term: float
    long_term: float
    decorrelation_days: float
    season_factor: tuple[float, ...]


_SEASON_MODEL = {
    LandCover.ROCK: _CoherenceModel(0.90, 0.70, 150.0, (1.0,) * 12),
    # Dry snow (Dec-Feb) keeps some coherence, snowfall and wet snow (Mar-Apr, Nov) less,
    # the melt season (Jun-Sep) almost none.
    LandCover.GLACIER: _CoherenceModel(
        0.65, 0.0, 24.0, (0.65, 0.65, 0.5, 0.5, 0.8, 0.35, 0.2, 0.2, 0.35, 0.8, 0.55, 0.65)
    ),
    # Vegetation grows and is cut or grazed from May to September; snow cover in winter.
    LandCover.MEADOW: _CoherenceModel(
        0.70, 0.20, 30.0, (0.8, 0.8, 0.8, 1.0, 0.6, 0.5, 0.5, 0.5, 0.6, 1.0, 1.0, 0.8)
    ),
    LandCover.FOREST: _CoherenceModel(
        0.50, 0.10, 12.0, (0.9, 0.9, 0.9, 1.0, 0.6, 0.6, 0.6, 0.6, 0.6, 1.0, 1.0, 0.9)
    ),
    LandCover.WATER: _CoherenceModel(0.0, 0.0, 1.0, (0.0,) * 12),
}


def _months_spanned(reference_date: datetime.date, secondary_date: datetime.date) -> list[int]:
    """Zero-based months (January = 0) that the interval from reference to secondary touches."""
    first = reference_date.year * 12 + reference_date.month - 1
    last = secondary_date.year * 12 + secondary_date.month - 1
    return sorted({month % 12 for month in range(first, min(last, first + 11) + 1)})


def target_coherence(
    land_cover: np.ndarray, reference_date: datetime.date, secondary_date: datetime.date
) -> np.ndarray:
    """The true coherence of each pixel for a pair, from its land cover and the season model.

    The seasonal factor of a class is its lowest over the months the interval touches: a pair
    that spans the start of the melt has lost the glacier's coherence. Longer intervals of the
    same reference therefore never gain coherence.
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
    months = _months_spanned(reference_date, secondary_date)
    coherence_of_class = np.empty(len(LandCover), dtype=np.float32)
    for land_class, model in _SEASON_MODEL.items():
        decay = math.exp(-baseline_days / model.decorrelation_days)
        season = min(model.season_factor[month] for month in months)
        coherence_of_class[land_class] = season * (
            model.long_term + (model.short_term - model.long_term) * decay
        )
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
    max_shape: tuple[int, int] = DEFAULT_SCENE_SHAPE,
) -> tuple[np.ndarray, SceneGrid]:
    """The estimated coherence of one pair of one burst, as the backend delivers it.

    Returns float32 coherence on the burst's grid, NaN outside the footprint, and the grid.
    """
    grid = scene_grid_for_footprint(footprint_lonlat, max_shape=max_shape)
    truth = target_coherence(land_cover_map(burst_key, grid), reference_date, secondary_date)
    reference, secondary = synthetic_slc_pair(burst_key, reference_date, secondary_date, truth)
    coherence = boxcar_coherence(reference, secondary, window_rg, window_az)
    coherence[~footprint_mask(footprint_lonlat, grid)] = np.nan
    return coherence, grid
