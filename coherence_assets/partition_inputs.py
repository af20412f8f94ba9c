"""What the steps of a burst x window partition read back: its pair table and its job ledger.

Read here, not in an asset module, so that assets never import helpers from one another and
the domain steps can read them without Dagster.
"""

from __future__ import annotations

from coherence_assets.jobs.ledger import Ledger
from coherence_assets.pairs.pair import Pair
from coherence_assets.partition_keys import partition_key
from coherence_assets.storage import DataStore


def read_pairs(store: DataStore, burst: str, window: str) -> list[Pair]:
    """The partition's pairs from ``insar_pairs``, or an error naming that asset and partition."""
    import pandas as pd  # not at import: the sensor reaches this module, and needs no pandas

    with store.open_output(
        store.insar_pairs_path(burst, window), "insar_pairs", partition_key(burst, window)
    ) as stream:
        table = pd.read_parquet(stream, columns=["reference_date", "secondary_date"])
    return [(row.reference_date, row.secondary_date) for row in table.itertuples()]


def read_ledger(store: DataStore, burst: str, window: str, backend_url: str) -> Ledger:
    """The partition's ledger, or a new one; a ledger of another backend is refused, not mixed."""
    path = store.coherence_job_path(burst, window)
    data = store.read_bytes_if_present(path)  # asked of the store: a cached listing may predate the ledger
    if data is None:
        return Ledger(burst=burst, window=window, backend_url=backend_url)
    ledger = Ledger.from_bytes(data, path)
    if ledger.backend_url != backend_url:
        raise ValueError(
            f"{path} records jobs of {ledger.backend_url}, not of {backend_url}: use a separate "
            "COHERENCE_DATA_DIR per backend, or move the old ledger away to start over"
        )
    return ledger
