"""One run, many partitions: each partition of a ranged run materialised (or failed) on its own.

A backfill gives a burst x window asset whole ranges of partitions per run (its ``BackfillPolicy``),
so that a thousand partitions cost a few run workers instead of a thousand. Dagster records one
materialisation per partition of the range when the step returns its output; it has no way to say
that one partition of the range failed (dagster-io/dagster#17836). So the step does the partitions
one by one and records each one's materialisation itself, in partition order, then fails if some
failed, naming them. The backfill counts the recorded partitions as materialised and only the rest
as failed, and the UI shows each partition's own metadata or its own failure, as for single-partition
runs. The assets' output is therefore optional: only when a downstream asset runs in the same run
(``submit_coherence_jobs``: pairs, then submissions) does a fully successful step return it, as
that is what lets the next step start.

Recording them ourselves also keeps a backfill's runs few. The backfill daemon requests a range of
submissions as soon as it sees their pair tables' materialisations, and Dagster writes its own in
hash order: a daemon pass in the middle of the writes saw a scattered subset and split it into
many small runs (73 ``coherence_job`` runs for 10 ``insar_pairs`` runs at 1,000 partitions). In
partition order it sees a prefix: one more run at most. And ``add_asset_metadata`` queries the
dynamic partitions on every call: n queries for a step of n partitions.
"""

import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

from coherence_assets.storage import one_line_store_errors

# Where a partition's work logs: the run's log, or one that gathers a ranged run's lines (see below).
PartitionLog = logging.Logger | logging.LoggerAdapter
# A partition's materialisation metadata, or an exception saying why it has none.
PartitionWork = Callable[[str, PartitionLog], dict[str, Any]]

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
    keys = sorted(context.partition_keys)
    done: dict[str, dict[str, Any]] = {}
    failed: dict[str, Exception] = {}
    lines: list[str] = []
    log = context.log if len(keys) == 1 else gathering_log(context.log, lines)
    for key in keys:
        try:
            with one_line_store_errors():
                done[key] = work(key, log)
        except Exception as error:  # one partition's failure must not hide its neighbours
            if len(keys) == 1:
                raise
            context.log.error(f"{key}: {error}")
            failed[key] = error
    if lines:
        context.log.info(f"{len(keys)} partitions:\n" + "\n".join(lines))
    if not failed and feeds_a_step_of_this_run(context):
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
    if not failed:
        return
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


def feeds_a_step_of_this_run(context: dg.AssetExecutionContext) -> bool:
    """Whether an asset downstream of this one runs later in this run (a run's job holds only its selection)."""
    return bool(context.job_def.asset_layer.asset_graph.get(context.asset_key).child_keys)


class _Gathered(logging.Handler):
    """Keeps info lines for one log event at the end; warnings and errors go to the run's log at once."""

    def __init__(self, run_log: PartitionLog, lines: list[str]) -> None:
        super().__init__()
        self.run_log, self.lines = run_log, lines

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.run_log.log(record.levelno, record.getMessage())
        else:
            self.lines.append(record.getMessage())


def gathering_log(run_log: PartitionLog, lines: list[str]) -> logging.Logger:
    """A log for the partitions of a ranged run: Dagster stores each log line as an event, which cost
    a ranged run as much CPU as a partition's own work (a SQLite insert and its index per line)."""
    gathered = logging.Logger("partitions of the run", logging.INFO)  # not registered: one per run
    gathered.addHandler(_Gathered(run_log, lines))
    return gathered
