"""``coherence_decay``: per season and pixel, median coherence per baseline and the fitted decay model."""

import dagster as dg

from coherence_assets.defs.assets.coherence_cube import coherence_cube
from coherence_assets.defs.partitions import burst_partitions
from coherence_assets.defs.resources import CoherenceStorage
from coherence_assets.defs.ui_images import inline_image_markdown


@dg.asset(
    partitions_def=burst_partitions,
    deps=[coherence_cube],
    description="Per meteorological season and pixel: median coherence per temporal baseline and the fit of "
    "rho(t) = (1 - rho_inf) exp(-t / tau) + rho_inf (Kellndorfer et al. 2022); NaN where fewer than 3 baselines",
    group_name="cube",
    kinds={"zarr", "xarray"},
)
def coherence_decay(context: dg.AssetExecutionContext, storage: CoherenceStorage) -> dg.MaterializeResult:
    import pandas as pd  # this asset's libraries only in its runs (see insar_pairs)

    from coherence_assets.decay.burst_decay import decay_burst

    burst, store = context.partition_key, storage.store
    decay = decay_burst(store, burst, log=context.log)
    summary = decay.summary
    by_season = pd.DataFrame(
        {
            "season": summary.seasons,
            "fitted_fraction": [summary.fitted_fraction[season] for season in summary.seasons],
            "median_rho_inf": [summary.median_rho_inf[season] for season in summary.seasons],
            "median_tau_days": [summary.median_tau[season] for season in summary.seasons],
        }
    )
    return dg.MaterializeResult(
        metadata={
            "seasons": len(summary.seasons),
            "baselines": ", ".join(str(baseline) for baseline in summary.baselines),
            "seasons_without_fit": ", ".join(summary.seasons_without_fit) or "none",
            "by_season": dg.MetadataValue.md(by_season.round(4).to_markdown(index=False)),
            "path": dg.MetadataValue.path(store.fs.unstrip_protocol(summary.path)),
            "quicklook": dg.MetadataValue.md(
                inline_image_markdown(
                    context.instance, f"{burst}-decay", decay.quicklook, title=f"{burst} decay"
                )
            ),
            "quicklook_png": dg.MetadataValue.path(store.fs.unstrip_protocol(decay.quicklook_path)),
        }
    )
