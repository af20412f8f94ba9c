"""What a finished download leaves of one window, written on disk without a backend.

The cube, AOI and STAC assets read only files: the window's pair table, its job ledger and one
coherence GeoTIFF per pair, with the provenance tags a download writes. These are written here
with the product's own functions (``build_pairs``, ``plan_submissions``/``enter_job``,
``pair_provenances``) and rasterio, on the grid the embedded backend would deliver (UTM at CDSE's
20 m, a small scene around the burst's centre), so the tests of those assets need no stand-in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io

import dagster as dg
import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstAcquisition
from coherence_assets.cdse_facts import CDSE_PIXEL_SIZE
from coherence_assets.defs.asset_keys import COHERENCE_RASTERS
from coherence_assets.jobs.ledger import FINISHED, Ledger
from coherence_assets.jobs.submission import enter_job, plan_submissions
from coherence_assets.pairs.pair import Pair
from coherence_assets.pairs.pairing import acquisitions_by_date, build_pairs
from coherence_assets.partition_keys import partition_key
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.rasters.provenance import pair_provenances
from coherence_assets.windows import parse_window_key, window_last_day
from coherence_assets_tests.conftest import SMALL_SCENE
from coherence_assets_tests.defs.conftest import BURST, Chain

FIRST_ACQUISITION = dt.datetime(2023, 1, 3, 5, 24, 31, 123456, tzinfo=dt.UTC)  # S1A's 12-day repeat from here
REPEAT_DAYS = 12
# the APEx commit these ledgers' jobs were pinned to: any commit, for they are never submitted
PINNED_COMMIT = "5d0c8e3a9b1f4c7e2a6d8b0f3e1c9a7b5d2e4f60"
UTM_32N = "EPSG:32632"  # the zone of the packaged South Tyrol bursts


def acquisitions(burst: BurstKey, first: dt.date, last: dt.date) -> list[BurstAcquisition]:
    """S1A records of ``burst`` between ``first`` and ``last``, every 12 days, as the catalogue answers them."""
    records = []
    start = FIRST_ACQUISITION
    while start.date() <= last:
        if start.date() >= first:
            records.append(
                BurstAcquisition(
                    record_id=f"{burst}-{start:%Y%m%d}",
                    burst_id=burst.burst_id,
                    subswath=burst.subswath,
                    relative_orbit=burst.relative_orbit,
                    polarisation="VV",
                    start=start,
                    parent_product_name=f"S1A_IW_SLC__1SDV_{start:%Y%m%dT%H%M%S}_{start:%Y%m%d}T052458_0{start:%j}",
                    platform="S1A",
                    orbit_direction="ASCENDING",
                )
            )
        start += dt.timedelta(days=REPEAT_DAYS)
    return records


def write_pair_table(chain: Chain, window: str, burst: str = BURST) -> list[Pair]:
    """The window's ``insar_pairs`` table, from 12-day acquisitions, paired at the chain's baselines; its pairs."""
    baselines = chain.defs.resources["coherence"].temporal_baselines_days
    start = parse_window_key(window)
    last = window_last_day(start)
    by_date = acquisitions_by_date(
        acquisitions(BurstKey.parse(burst), start, last + dt.timedelta(days=max(baselines)))
    )
    table = build_pairs(burst, by_date, start, last, baselines)
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    chain.store.write_bytes_atomically(chain.store.insar_pairs_path(burst, window), buffer.getvalue())
    return [(row.reference_date, row.secondary_date) for row in table.itertuples()]


def downloaded_window(chain: Chain, window: str, burst: str = BURST) -> list[Pair]:
    """Pair table, finished jobs and rasters of one window, as the sensor and a download run leave them,
    and the ``coherence_rasters`` materialisation the cube sensor reads; the window's pairs.

    The chain's ``coherence`` resource says which baselines to pair, the burst catalogue (materialised
    first) where the scene lies.
    """
    pairs = write_pair_table(chain, window, burst)
    ledger = Ledger(burst=burst, window=window, backend_url=chain.openeo_backend.url)
    request = dataclasses.replace(chain.defs.resources["coherence"].request(), apex_commit=PINNED_COMMIT)
    for batch in plan_submissions(ledger, pairs, max_attempts=1).new_batches:
        record = enter_job(ledger, BurstKey.parse(burst), request, batch)
        record.job_id, record.status = f"j-{record.submission_id}", FINISHED
    chain.write_ledger(ledger)

    write_rasters(chain, burst, window, ledger)
    chain.instance.report_runless_asset_event(
        dg.AssetMaterialization(
            COHERENCE_RASTERS, partition=partition_key(burst, window), metadata={"files": len(pairs)}
        )
    )
    return pairs


def write_rasters(chain: Chain, burst: str, window: str, ledger: Ledger) -> None:
    """One float32 GeoTIFF per pair of the ledger, NaN no-data, with the tags a download writes."""
    store = chain.store
    catalogue = gpd.read_parquet(chain.data_dir / "burst_catalogue.parquet")
    centre = catalogue.loc[catalogue["burst"] == burst].to_crs(UTM_32N).geometry.iloc[0].centroid
    rows, columns = SMALL_SCENE
    # pixel edges on multiples of the pixel size, as CDSE's terrain correction puts them
    west = np.floor((centre.x - columns * CDSE_PIXEL_SIZE / 2) / CDSE_PIXEL_SIZE) * CDSE_PIXEL_SIZE
    north = np.ceil((centre.y + rows * CDSE_PIXEL_SIZE / 2) / CDSE_PIXEL_SIZE) * CDSE_PIXEL_SIZE
    profile = {
        "driver": "GTiff",
        "height": rows,
        "width": columns,
        "count": 1,
        "dtype": "float32",
        "crs": UTM_32N,
        "transform": from_origin(west, north, CDSE_PIXEL_SIZE, CDSE_PIXEL_SIZE),
        "nodata": np.nan,
    }
    folder = store.coherence_rasters_dir(burst, window)
    store.fs.makedirs(folder, exist_ok=True)
    for pair, provenance in pair_provenances(store, ledger).items():
        seed = int(pair[0].strftime("%Y%m%d")) * 1000 + (pair[1] - pair[0]).days
        coherence = np.random.default_rng(seed).uniform(0.05, 0.95, (rows, columns)).astype(np.float32)
        coherence[:, :2] = np.nan  # the swath's edge, outside its footprint
        with rasterio.open(f"{folder}/{raster_file_name(*pair)}", "w", **profile) as raster:
            raster.write(coherence, 1)
            raster.update_tags(**provenance.tags())
