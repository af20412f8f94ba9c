"""``insar_pairs``: the pair table of one burst and window (the work is ``pairs.pair_table``).

Materialised in one step with ``coherence_job`` (``pairs_and_submissions``, see ``partition_runs``).
"""

from typing import TYPE_CHECKING

import dagster as dg

from coherence_assets.defs.asset_keys import BURST_CATALOGUE, INSAR_PAIRS
from coherence_assets.defs.assets.partition_runs import PartitionLog, PartitionWork
from coherence_assets.defs.resources import BurstCatalogue, CoherenceParameters, CoherenceStorage
from coherence_assets.partition_keys import split_partition_key

if TYPE_CHECKING:
    from coherence_assets.pairs.window_pairs import WindowPairs

PREVIEW_ROWS = 20

INSAR_PAIRS_SPEC = dg.AssetSpec(
    INSAR_PAIRS,
    deps=[BURST_CATALOGUE],
    description="InSAR pairs of one burst whose reference date lies in the window, one temporal baseline apart",
    group_name="catalogue",
    kinds={"parquet"},
    skippable=True,  # partitions are recorded one by one (see partition_runs)
)


def store_pair_tables(
    storage: CoherenceStorage, catalogue: BurstCatalogue, coherence: CoherenceParameters
) -> PartitionWork:
    """A partition's work for ``insar_pairs``: query the catalogue, store the pair table."""
    # imported here, as in every asset: loading the definitions (daemon, code server, each run) pays
    # only for Dagster, and a run only for the libraries of its own assets
    from coherence_assets.pairs.pair_table import store_window_pairs

    client = catalogue.client()

    def store_pairs(key: str, log: PartitionLog) -> dict:
        burst, window = split_partition_key(key)
        result, path = store_window_pairs(
            storage.store,
            client,
            burst,
            window,
            coherence.polarisation,
            coherence.temporal_baselines_days,
            log=log,
        )
        return pairs_metadata(result, path)

    return store_pairs


def pairs_metadata(result: "WindowPairs", path: str) -> dict:
    return {
        "pairs": len(result.pairs),
        "catalogue_records": result.records,
        "acquisitions": len(result.acquisition_dates),
        "missing_dates": ", ".join(day.isoformat() for day in result.missing_dates) or "none",
        "empty_reason": result.empty_reason or "",
        "catalogue_query": f"{result.query_start.isoformat()} .. {result.query_end.isoformat()}",
        "catalogue_request": result.query,
        "path": dg.MetadataValue.path(path),
        "preview": dg.MetadataValue.md(result.pairs.head(PREVIEW_ROWS).to_markdown(index=False) or "(empty)"),
    }
