"""``insar_pairs``: the pair table of one burst and window."""

import io

import dagster as dg
import geopandas as gpd
import pandas as pd

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.defs.assets.burst_catalogue import burst_catalogue
from coherence_assets.defs.partitions import burst_and_window, burst_window_partitions
from coherence_assets.defs.resources import BurstCatalogue, CoherenceParameters, CoherenceStorage
from coherence_assets.pairs.window_pairs import pairs_for_window, require_no_lost_acquisitions
from coherence_assets.windows import parse_window_key, window_last_day

PREVIEW_ROWS = 20


def require_burst_in_catalogue(storage: CoherenceStorage, burst: str) -> None:
    """Fail early, with the fix, when a partition names a burst the catalogue does not hold."""
    store = storage.store
    with store.open_output(store.burst_catalogue_path(), "burst_catalogue") as stream:
        known = set(gpd.read_parquet(stream, columns=["burst", "geometry"])["burst"])
    if burst not in known:
        raise ValueError(
            f"burst {burst} is not in the burst catalogue; add it to the burst file and re-materialise burst_catalogue"
        )


@dg.asset(
    partitions_def=burst_window_partitions,
    deps=[burst_catalogue],
    description="InSAR pairs of one burst whose reference date lies in the window, one temporal baseline apart",
    group_name="catalogue",
    kinds={"parquet"},
)
def insar_pairs(
    context: dg.AssetExecutionContext,
    storage: CoherenceStorage,
    catalogue: BurstCatalogue,
    coherence: CoherenceParameters,
) -> dg.MaterializeResult:
    burst, window = burst_and_window(context)
    require_burst_in_catalogue(storage, burst)
    window_start = parse_window_key(window)
    result = pairs_for_window(
        catalogue.client(),
        BurstKey.parse(burst),
        coherence.polarisation,
        window_start,
        window_last_day(window_start),
        coherence.temporal_baselines_days,
    )
    store = storage.store
    path = store.insar_pairs_path(burst, window)
    if store.fs.exists(path):
        with store.fs.open(path, "rb") as stream:
            require_no_lost_acquisitions(pd.read_parquet(stream), result, path)
    buffer = io.BytesIO()
    result.pairs.to_parquet(buffer, index=False)
    store.write_bytes_atomically(path, buffer.getvalue())
    if result.empty_reason:
        context.log.warning(f"{burst} {window}: no pairs: {result.empty_reason}")
    else:
        context.log.info(
            f"{burst} {window}: {len(result.pairs)} pairs from {len(result.acquisition_dates)} dates"
        )
    return dg.MaterializeResult(
        metadata={
            "pairs": len(result.pairs),
            "catalogue_records": result.records,
            "acquisitions": len(result.acquisition_dates),
            "missing_dates": ", ".join(day.isoformat() for day in result.missing_dates) or "none",
            "empty_reason": result.empty_reason or "",
            "catalogue_query": f"{result.query_start.isoformat()} .. {result.query_end.isoformat()}",
            "catalogue_request": result.query,
            "path": dg.MetadataValue.path(path),
            "preview": dg.MetadataValue.md(
                result.pairs.head(PREVIEW_ROWS).to_markdown(index=False) or "(empty)"
            ),
        }
    )
