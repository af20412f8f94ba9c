"""One run, many partitions: each partition of a ranged run materialised (or failed) on its own.

A backfill gives a burst x window asset whole ranges of partitions per run (its ``BackfillPolicy``),
so that a thousand partitions cost a few run workers instead of a thousand. Dagster records one
materialisation per partition of the range when the step returns its output; it has no way to say
that one partition of the range failed (dagster-io/dagster#17836). So the step does the partitions
one by one and records each one's materialisation itself, in partition order, then fails if some
failed, naming them. The backfill counts the recorded partitions as materialised and only the rest
as failed, and the UI shows each partition's own metadata or its own failure, as for single-partition
runs. The assets' output is therefore optional: only when a downstream asset runs in the same run,
in a later step, does a fully successful step return it, as that is what lets the next step start.

``insar_pairs`` and ``coherence_job`` share one step (``pairs_and_submissions``) for the same reason:
as two steps, a failed pair table failed the pairs step, and Dagster then skipped the whole range's
submissions; as two backfill policies, they took two sets of runs (22 runs at 1,000 partitions, each
about 3 CPU-s of process start, imports and instance before any work). In one step, a partition's
submission follows its own pair table, and a failed pair table skips that partition's submission only.

Recording in partition order also keeps a backfill's runs few when it holds a downstream asset too
(``--assets ...,coherence_rasters``): the backfill daemon requests a range downstream as soon as it sees
its parents' materialisations, and Dagster writes its own in hash order, so a daemon pass in the middle
of the writes saw a scattered subset and split it into many small runs (73 runs for 10 at 1,000
partitions); in partition order it sees a prefix. And ``add_asset_metadata`` queries the dynamic
partitions on every call: n queries for a step of n partitions.
"""

import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dagster as dg

from coherence_assets.storage import one_line_store_errors

# Where a partition's work logs: the run's log, or one that gathers a ranged run's lines (see below).
PartitionLog = logging.Logger | logging.LoggerAdapter
# A partition's materialisation metadata, or an exception saying why it has none.
PartitionWork = Callable[[str, PartitionLog], dict[str, Any]]

# beta in Dagster 1.13, yet Dagster's documented way to give a backfill's runs many partitions each
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

# A whole range (one window's bursts, or one burst's windows) per run: a run costs a process that loads
# Dagster and the project (about 3 CPU-s), a partition's work about 0.02.
WHOLE_RANGE_PER_RUN = dg.BackfillPolicy.single_run()


class PartitionsFailedError(Exception):
    """Some partitions of a ranged run failed; the others are materialised."""


def materialise_each_partition(
    context: dg.AssetExecutionContext, steps: Sequence[tuple[dg.AssetKey, PartitionWork]]
) -> Iterator[dg.AssetMaterialization | dg.MaterializeResult]:
    """Run each asset's work (``steps``, in order) for every partition of the run, each partition with
    its own metadata or its own failure: a partition whose step fails skips its later steps, never
    its neighbours'."""
    keys = sorted(context.partition_keys)
    done: dict[dg.AssetKey, dict[str, dict[str, Any]]] = {asset: {} for asset, _ in steps}
    failed: dict[str, tuple[dg.AssetKey, Exception]] = {}
    lines: list[str] = []
    log = context.log if len(keys) == 1 else gathering_log(context.log, lines)
    for key in keys:
        for asset, work in steps:
            try:
                with one_line_store_errors():
                    done[asset][key] = work(key, log)
            except Exception as error:  # one partition's failure must not hide its neighbours
                if len(keys) > 1:
                    context.log.error(f"{asset.to_user_string()} {key}: {error}")
                failed[key] = (asset, error)
                break  # the partition's later steps need this one's result
    if lines:
        context.log.info(f"{len(keys)} partitions:\n" + "\n".join(lines))
    for asset, metadata_by_key in done.items():
        if not failed and feeds_a_step_of_this_run(context, asset):
            for key, metadata in metadata_by_key.items():
                context.add_asset_metadata(metadata, asset_key=asset, partition_key=key)
            yield dg.MaterializeResult(asset_key=asset)
            continue
        for key, metadata in metadata_by_key.items():
            yield dg.AssetMaterialization(
                asset_key=asset, partition=key, metadata=metadata, tags=dimension_tags(key)
            )
    if len(keys) == 1 and failed:
        raise failed[keys[0]][1]  # a single partition's run fails with its own error, as any step would
    if failed:
        causes = "; ".join(
            f"{key}: {asset.to_user_string()}: {error}" for key, (asset, error) in failed.items()
        )
        raise PartitionsFailedError(
            f"{len(failed)} of {len(keys)} partitions failed ({causes}); the other {len(keys) - len(failed)} are "
            "materialised. Re-execute the run or relaunch the backfill's failed partitions once the cause is fixed."
        )


def dimension_tags(key: str) -> dict[str, str]:
    """The tags Dagster puts on its own materialisations of a multi-partition key (the UI's 2-D view)."""
    if not isinstance(key, dg.MultiPartitionKey):
        return {}
    return {f"dagster/partition/{dimension}": value for dimension, value in key.keys_by_dimension.items()}


def feeds_a_step_of_this_run(context: dg.AssetExecutionContext, asset: dg.AssetKey) -> bool:
    """Whether an asset downstream of ``asset`` runs later in this run, in another step: that step starts
    only if this one returns the asset's output."""
    layer = context.job_def.asset_layer
    in_this_step = set(context.assets_def.node_keys_by_output_name.values())  # selected or not
    return bool((layer.asset_graph.get(asset).child_keys & layer.executable_asset_keys) - in_this_step)


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
