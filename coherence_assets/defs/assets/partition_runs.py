"""One run, many partitions: each partition of a ranged run materialised (or failed) on its own.

A backfill gives a burst x window asset whole ranges of partitions per run (its ``BackfillPolicy``),
so that a thousand partitions cost a few run workers instead of a thousand. Dagster records one
materialisation per partition of the range when the step returns; it has no way to say that one
partition of the range failed (dagster-io/dagster#17836). So the step does the partitions one by
one and, when every one succeeded, returns as usual with each partition's own metadata; when some
failed, it records the others' materialisations itself and then fails, naming the failed ones.
The backfill then counts the recorded partitions as materialised and only the rest as failed, and
the UI shows each partition's own metadata or its own failure, as for single-partition runs.
"""

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

from coherence_assets.storage import one_line_store_errors

# A partition's materialisation metadata, or an exception saying why it has none.
PartitionWork = Callable[[str], dict[str, Any]]

# beta in Dagster 1.13, yet Dagster's documented way to give a backfill's runs many partitions each
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)
# submit_coherence_jobs holds both policies on purpose (see below); a backfill of that job takes the smaller
warnings.filterwarnings("ignore", message="Asset job .* materializes assets with varying BackfillPolicies")

# insar_pairs takes a whole range (one burst's windows, or one window's bursts) per run: a pair table
# costs a catalogue query. coherence_job takes at most this many: the runs then differ in policy, so
# Dagster runs them apart and submits a partition only once its own pair table is stored, however
# its neighbours' catalogue queries went (a shared run would skip the whole range's submissions).
WHOLE_RANGE_PER_RUN = dg.BackfillPolicy.single_run()
SUBMISSIONS_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=100)


class PartitionsFailedError(Exception):
    """Some partitions of a ranged run failed; the others are materialised."""


def materialise_each_partition(
    context: dg.AssetExecutionContext, work: PartitionWork
) -> Iterator[dg.AssetMaterialization | dg.MaterializeResult]:
    """Run ``work`` for every partition of the run, each with its own metadata or its own failure."""
    keys = context.partition_keys
    done: dict[str, dict[str, Any]] = {}
    failed: dict[str, Exception] = {}
    for key in keys:
        try:
            with one_line_store_errors():
                done[key] = work(key)
        except Exception as error:  # one partition's failure must not hide its neighbours
            if len(keys) == 1:
                raise
            context.log.error(f"{key}: {error}")
            failed[key] = error
    if not failed:
        for key, metadata in done.items():
            context.add_asset_metadata(metadata, partition_key=key)
        yield dg.MaterializeResult()
        return
    for key, metadata in done.items():
        yield dg.AssetMaterialization(
            asset_key=context.asset_key,
            partition=key,
            metadata=metadata,
            tags=dimension_tags(key),
        )
    causes = "; ".join(f"{key}: {error}" for key, error in failed.items())
    raise PartitionsFailedError(
        f"{len(failed)} of {len(keys)} partitions failed ({causes}); the other {len(done)} are materialised. "
        "Re-execute the run or relaunch the backfill's failed partitions once the cause is fixed."
    )


def dimension_tags(key: str) -> dict[str, str]:
    """The tags Dagster puts on its own materialisations of a multi-partition key (the UI's 2-D view)."""
    if not isinstance(key, dg.MultiPartitionKey):
        return {}
    return {f"dagster/partition/{dimension}": value for dimension, value in key.keys_by_dimension.items()}
