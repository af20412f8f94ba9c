"""The Dagster definitions: assembles partitions, resources, assets, sensors and schedules."""

import dagster as dg

from coherence_assets.defs.assets.burst_catalogue import burst_catalogue
from coherence_assets.defs.assets.coherence_aoi_series import coherence_aoi_series
from coherence_assets.defs.assets.coherence_cube import coherence_cube
from coherence_assets.defs.assets.coherence_decay import coherence_decay
from coherence_assets.defs.assets.coherence_rasters import coherence_rasters
from coherence_assets.defs.assets.coherence_stac import coherence_stac
from coherence_assets.defs.assets.pairs_and_submissions import pairs_and_submissions
from coherence_assets.defs.burst_partitions_sensor import build_burst_partitions_sensor
from coherence_assets.defs.jobs import (
    download_coherence_rasters,
    refresh_burst_catalogue,
    resubmit_coherence_jobs,
    stack_coherence_cube,
    submit_coherence_jobs,
)
from coherence_assets.defs.local_resources import local_resources
from coherence_assets.defs.resources import production_resources
from coherence_assets.defs.schedules import current_window_schedule
from coherence_assets.defs.sensors import build_sensors
from coherence_assets.settings import Settings


def default_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resource set of this environment, chosen once: the local one starts the embedded backend."""
    return local_resources(settings) if settings.uses_embedded_backend else production_resources(settings)


settings = Settings.from_env()
defs = dg.Definitions(
    assets=[
        burst_catalogue,
        pairs_and_submissions,  # insar_pairs and coherence_job
        coherence_rasters,
        coherence_cube,
        coherence_decay,
        coherence_aoi_series,
        coherence_stac,
    ],
    jobs=[
        refresh_burst_catalogue,
        submit_coherence_jobs,
        resubmit_coherence_jobs,
        download_coherence_rasters,
        stack_coherence_cube,
    ],
    sensors=[*build_sensors(settings), build_burst_partitions_sensor(settings)],
    schedules=[current_window_schedule],
    resources=default_resources(settings),
    # Every job (the backfills' asset job too) runs its steps in the run worker: they run one after
    # the other anyway and the work happens on the openEO backend, so a step process per step only
    # bought another Python and project import (about 2 CPU-s) per step.
    executor=dg.in_process_executor,
)
