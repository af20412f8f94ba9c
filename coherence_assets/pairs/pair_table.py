"""The ``insar_pairs`` step without Dagster: a partition's pair table, asked of the catalogue and stored.

The burst must be in the burst catalogue (checked first, with the fix), and a table already
stored for the partition must not lose acquisitions it had (the catalogue answering less than
before is refused, see ``window_pairs.require_no_lost_acquisitions``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence

import pandas as pd

from coherence_assets.asset_names import BURST_CATALOGUE, INSAR_PAIRS
from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.pairs.pair import Pair
from coherence_assets.pairs.window_pairs import WindowPairs, pairs_for_window, require_no_lost_acquisitions
from coherence_assets.partition_keys import partition_key
from coherence_assets.storage import DataStore
from coherence_assets.windows import parse_window_key, window_last_day

module_log = logging.getLogger(__name__)


def require_burst_in_catalogue(store: DataStore, burst: str) -> None:
    """Fail early, with the fix, when a partition names a burst the catalogue does not hold."""
    with store.open_output(store.burst_catalogue_path(), BURST_CATALOGUE) as stream:
        # the burst column alone, as plain Parquet: a submission run need not import geopandas
        known = set(pd.read_parquet(stream, columns=["burst"])["burst"])
    if burst not in known:
        raise ValueError(
            f"burst {burst} is not in the burst catalogue; add it to the burst file and re-materialise burst_catalogue"
        )


def store_window_pairs(
    store: DataStore,
    client: BurstCatalogueClient,
    burst: str,
    window: str,
    polarisation: str,
    baselines_days: Sequence[int],
    *,
    log: logging.Logger | logging.LoggerAdapter = module_log,
) -> tuple[WindowPairs, str]:
    """Ask the catalogue for the partition's pairs and store them (atomically); the answer and the path."""
    require_burst_in_catalogue(store, burst)
    window_start = parse_window_key(window)
    result = pairs_for_window(
        client,
        BurstKey.parse(burst),
        polarisation,
        window_start,
        window_last_day(window_start),
        baselines_days,
    )
    path = store.insar_pairs_path(burst, window)
    stored = store.read_bytes_if_present(
        path
    )  # as it is now: another run may have rewritten it (no cached ETag)
    if stored is not None:
        require_no_lost_acquisitions(pd.read_parquet(io.BytesIO(stored)), result, path)
    buffer = io.BytesIO()
    result.pairs.to_parquet(buffer, index=False)
    store.write_bytes_atomically(path, buffer.getvalue())
    if result.empty_reason:
        log.warning(f"{burst} {window}: no pairs: {result.empty_reason}")
    else:
        log.info(f"{burst} {window}: {len(result.pairs)} pairs from {len(result.acquisition_dates)} dates")
    return result, path


def read_pairs(store: DataStore, burst: str, window: str) -> list[Pair]:
    """The partition's pairs from ``insar_pairs``, or an error naming that asset and partition."""
    with store.open_output(
        store.insar_pairs_path(burst, window), INSAR_PAIRS, partition_key(burst, window)
    ) as stream:
        table = pd.read_parquet(stream, columns=["reference_date", "secondary_date"])
    return [(row.reference_date, row.secondary_date) for row in table.itertuples()]
