"""``insar_pairs`` and ``coherence_job`` in one step: a partition's pair table, then its submissions.

One step, so that a backfill's range of partitions takes one run for both assets and a failed pair
table skips only its own partition's submission (see ``partition_runs``). Either asset can still be
materialised alone (``resubmit_coherence_jobs`` selects ``coherence_job`` only).
"""

import dagster as dg

from coherence_assets.defs.asset_keys import COHERENCE_JOB, INSAR_PAIRS
from coherence_assets.defs.assets.coherence_job import COHERENCE_JOB_SPEC, submit_jobs
from coherence_assets.defs.assets.insar_pairs import INSAR_PAIRS_SPEC, store_pair_tables
from coherence_assets.defs.assets.partition_runs import WHOLE_RANGE_PER_RUN, materialise_each_partition
from coherence_assets.defs.partitions import burst_window_partitions
from coherence_assets.defs.resources import (
    BurstCatalogue,
    CoherenceParameters,
    CoherenceStorage,
    OpenEOBackend,
)


@dg.multi_asset(
    specs=[INSAR_PAIRS_SPEC, COHERENCE_JOB_SPEC],
    partitions_def=burst_window_partitions,
    backfill_policy=WHOLE_RANGE_PER_RUN,
    can_subset=True,
)
def pairs_and_submissions(
    context: dg.AssetExecutionContext,
    storage: CoherenceStorage,
    catalogue: BurstCatalogue,
    openeo_backend: OpenEOBackend,
    coherence: CoherenceParameters,
):  # yields: Dagster reads a return annotation as the output's type
    selected = context.selected_asset_keys
    steps = []
    if INSAR_PAIRS in selected:
        steps.append((INSAR_PAIRS, store_pair_tables(storage, catalogue, coherence)))
    if COHERENCE_JOB in selected:
        steps.append((COHERENCE_JOB, submit_jobs(context, storage, openeo_backend, coherence)))
    yield from materialise_each_partition(context, steps)
