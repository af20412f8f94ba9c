"""What stacking a coherence cube costs against the floor, and how fast both reads of it are.

Everything is measured in this run, on the same GeoTIFFs (float32, deflate with floating-point
predictor, 256 x 256 tiles: what the embedded backend writes):

- **Stacking** :func:`stack_coherence_cube` into a new cube, against the floor: rasterio reads of
  the same GeoTIFFs plus writing one Zarr array with the cube's image chunks and codec. A second
  floor also writes the time-series layout directly, to show what the second layout costs.
- **Size**: the store's bytes on disk against the GeoTIFFs' it was stacked from.
- **Reads** through :func:`open_coherence_cube` (dask, as the project and users read): one
  pixel's full series from the cube's ``timeseries`` group and one date's full image from its
  root, each against the fastest of several single chunk layouts of the same data written
  beside it (same Zarr format and codec), read with plain ``xr.open_zarr``. The series is also
  read with plain ``xr.open_zarr`` of the group, whose dask chunks are the zarr chunks.

Each figure is the best of ``--repeats`` (stacking) or the median over ``--reads`` random pixels
and dates (reads). Ratios above 1 mean the cube is slower. Every pair count of ``--pairs`` is
measured in turn.

Run: ``.venv/bin/python benchmarks/cube_stacking.py [--pairs 240 500] [--size 1000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import fsspec
import numpy as np
import rasterio
import xarray as xr
import zarr
from affine import Affine

from coherence_assets.cube.stacking import (
    COMPRESSOR,
    DEFAULT_SERIES_CHUNKS,
    DEFAULT_SPATIAL_CHUNK,
    SERIES_GROUP,
    ZARR_FORMAT,
    PairRaster,
    open_coherence_cube,
    stack_coherence_cube,
)

LOCAL = fsspec.filesystem("file")
FIRST_DATE = date(2017, 1, 3)
BASELINE = timedelta(days=12)


def write_rasters(folder: Path, pairs: int, size: int) -> list[PairRaster]:
    """``pairs`` coherence GeoTIFFs of ``size`` x ``size``: a smooth field plus speckle, NaN margin."""
    rng = np.random.default_rng(0)
    rows, columns = np.indices((size, size))
    field = 0.45 + 0.25 * np.sin(rows / 40.0) * np.cos(columns / 55.0)
    rasters = []
    for index in range(pairs):
        reference = FIRST_DATE + index * BASELINE
        values = np.clip(field + 0.08 * rng.standard_normal((size, size)), 0.01, 1.0).astype(np.float32)
        values[:, : size // 20] = np.nan
        path = folder / f"{reference:%Y%m%d}_{reference + BASELINE:%Y%m%d}.tif"
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=size,
            height=size,
            count=1,
            dtype="float32",
            crs="EPSG:32632",
            transform=Affine(20.0, 0.0, 600_000.0, 0.0, -20.0, 5_200_000.0),
            nodata=np.nan,
            compress="deflate",
            predictor=3,
            tiled=True,
            blockxsize=256,
            blockysize=256,
        ) as target:
            target.write(values, 1)
        rasters.append(PairRaster(str(path), reference, reference + BASELINE))
    return rasters


def stack_cube(rasters: list[PairRaster], target: Path) -> None:
    stack_coherence_cube(LOCAL, rasters, str(target))


def floor(rasters: list[PairRaster], target: Path, size: int, series_too: bool = False) -> None:
    """Read every GeoTIFF with rasterio and write it to Zarr directly, nothing else."""
    chunk = min(DEFAULT_SPATIAL_CHUNK, size)
    layouts = [(1, chunk, chunk)]
    if series_too:
        layouts.append((DEFAULT_SERIES_CHUNKS[0], *(min(DEFAULT_SERIES_CHUNKS[1], size),) * 2))
    arrays = [
        zarr.create_array(
            str(target / f"layout{index}"),
            shape=(len(rasters), size, size),
            chunks=chunks,
            dtype="float32",
            fill_value=np.nan,
            compressors=COMPRESSOR,
            zarr_format=ZARR_FORMAT,
        )
        for index, chunks in enumerate(layouts)
    ]
    if not series_too:
        for index, raster in enumerate(rasters):
            with rasterio.open(raster.path) as source:
                arrays[0][index] = source.read(1)
        return
    # Both layouts: batches of one time chunk, so each series chunk is written once.
    batch = DEFAULT_SERIES_CHUNKS[0]
    for start in range(0, len(rasters), batch):
        block = np.empty((min(batch, len(rasters) - start), size, size), dtype=np.float32)
        for offset, raster in enumerate(rasters[start : start + batch]):
            with rasterio.open(raster.path) as source:
                source.read(1, out=block[offset])
        for array in arrays:
            array[start : start + block.shape[0]] = block


def best_seconds(action: Callable[[Path], None], workdir: Path, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        target = workdir / "target"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        started = time.perf_counter()
        action(target / "cube.zarr")
        best = min(best, time.perf_counter() - started)
        shutil.rmtree(target)
    return best


def write_reference(cube: xr.Dataset, path: Path, chunks: tuple[int, int, int]) -> xr.Dataset:
    """The cube's values in one other chunk layout, opened as users open the cube."""
    coherence = (
        cube["coherence"].drop_encoding().chunk(dict(zip(cube["coherence"].dims, chunks, strict=True)))
    )
    coherence.to_dataset().to_zarr(
        path,
        mode="w",
        zarr_format=ZARR_FORMAT,
        consolidated=False,
        encoding={"coherence": {"chunks": chunks, "compressors": (COMPRESSOR,)}},
    )
    return xr.open_zarr(path, consolidated=False, decode_timedelta=False)


def median_read_ms(datasets: dict[str, xr.Dataset], selections: list[dict[str, int]]) -> dict[str, float]:
    """Median milliseconds per read of each dataset, each timed read right after an untimed one of
    the same selection: warm reads, so that neither the page cache nor what the previous read left
    in memory decides. The datasets take turns on every selection in a shuffled order: a fixed cycle
    put the same dataset after the slowest layout's read every time, and that read cost it 2x."""
    seconds: dict[str, list[float]] = {name: [] for name in datasets}
    order = random.Random(0)
    for selection in selections:
        for name in order.sample(list(datasets), k=len(datasets)):
            datasets[name]["coherence"].isel(selection).load()
            started = time.perf_counter()
            datasets[name]["coherence"].isel(selection).load()
            seconds[name].append(time.perf_counter() - started)
    return {name: 1000 * statistics.median(values) for name, values in seconds.items()}


def measure(rasters: list[PairRaster], size: int, repeats: int, reads: int, workdir: Path) -> None:
    """Stacking, size and reads of a cube of ``rasters``, printed against their floors."""
    pairs = len(rasters)
    print(f"{pairs} pairs of {size} x {size} float32 GeoTIFFs (deflate, 256 x 256 tiles)")
    # Interleaved, so that drifting machine load hits all methods alike.
    timings: dict[str, float] = {"cube": float("inf"), "floor": float("inf"), "floor2": float("inf")}
    for _ in range(repeats):
        timings["floor"] = min(
            timings["floor"], best_seconds(lambda path: floor(rasters, path, size), workdir, 1)
        )
        timings["cube"] = min(
            timings["cube"], best_seconds(lambda path: stack_cube(rasters, path), workdir, 1)
        )
        timings["floor2"] = min(
            timings["floor2"],
            best_seconds(lambda path: floor(rasters, path, size, series_too=True), workdir, 1),
        )
    print(
        f"stacking: cube {timings['cube']:.2f} s, floor {timings['floor']:.2f} s "
        f"(rasterio reads + one zarr array, same chunks and codec): ratio {timings['cube'] / timings['floor']:.2f}"
    )
    print(
        f"  floor writing both layouts directly {timings['floor2']:.2f} s: "
        f"ratio {timings['cube'] / timings['floor2']:.2f}"
    )

    cube_path = workdir / "cube.zarr"
    stack_cube(rasters, cube_path)
    geotiffs = sum(Path(raster.path).stat().st_size for raster in rasters)
    series_bytes = LOCAL.du(str(cube_path / SERIES_GROUP))
    store_bytes = LOCAL.du(str(cube_path))
    print(
        f"size: store {store_bytes / 1e6:.1f} MB (time-series layout {series_bytes / 1e6:.1f} MB), "
        f"GeoTIFFs {geotiffs / 1e6:.1f} MB: ratio {store_bytes / geotiffs:.2f}"
    )

    image = open_coherence_cube(LOCAL, str(cube_path))
    series = open_coherence_cube(LOCAL, str(cube_path), layout="timeseries")
    plain_series = xr.open_zarr(cube_path, group=SERIES_GROUP, consolidated=False, decode_timedelta=False)
    rng = np.random.default_rng(1)
    pixels = [{"y": int(y), "x": int(x)} for y, x in rng.integers(0, size, size=(reads, 2), endpoint=False)]
    dates = [{"time": int(t)} for t in rng.integers(0, pairs, size=reads)]
    pixel_layouts = [(pairs, side, side) for side in (16, 32, 64, 128, 256) if side <= size]
    image_layouts = [(1, size, size), (1, 256, 256), (1, 1024, 1024)]
    references = {
        chunks: write_reference(image, workdir / f"reference-{'x'.join(map(str, chunks))}.zarr", chunks)
        for chunks in [*pixel_layouts, *image_layouts]
    }
    for read, selections, ours, extra, layouts in (
        ("one pixel's series", pixels, series, {"plain": plain_series}, pixel_layouts),
        ("one date's image", dates, image, {}, image_layouts),
    ):
        candidates = {str(chunks): references[chunks] for chunks in layouts}
        timings = median_read_ms({"cube": ours, **extra, **candidates}, selections)
        ours_ms, plain_ms = timings.pop("cube"), timings.pop("plain", None)
        best = min(timings, key=timings.get)
        print(
            f"{read}: cube {ours_ms:.1f} ms ({ours['coherence'].encoding['chunks']} chunks), best single "
            f"layout {best} {timings[best]:.1f} ms: ratio {ours_ms / timings[best]:.2f}"
        )
        others = ", ".join(f"{chunks} {ms:.1f} ms" for chunks, ms in timings.items() if chunks != best)
        print(f"  other layouts: {others}")
        if plain_ms is not None:
            print(
                f"  the cube's series through plain xr.open_zarr (dask chunks = zarr chunks) {plain_ms:.1f} ms: "
                f"ratio {plain_ms / timings[best]:.2f}"
            )
    shutil.rmtree(cube_path)
    for path in workdir.glob("reference-*.zarr"):
        shutil.rmtree(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", type=int, nargs="+", default=[240, 500], help="numbers of pairs (GeoTIFFs), each measured"
    )
    parser.add_argument("--size", type=int, default=1000, help="rows and columns of each GeoTIFF")
    parser.add_argument("--repeats", type=int, default=3, help="stacking runs per method; the best counts")
    parser.add_argument("--reads", type=int, default=100, help="random pixels and dates read per layout")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)"
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cube-bench-", dir=args.workdir))
    try:
        (workdir / "rasters").mkdir()
        rasters = write_rasters(workdir / "rasters", max(args.pairs), args.size)
        for pairs in args.pairs:
            measure(rasters[:pairs], args.size, args.repeats, args.reads, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
