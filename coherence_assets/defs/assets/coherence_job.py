"""``coherence_job``: submit the openEO jobs for the pairs of a partition that no job covers yet.

It returns at once: the ``openeo_job_sensor`` starts jobs that found no free slot and
requests the downloads when they finish. Materialised in one step with ``insar_pairs``
(``pairs_and_submissions``, see ``partition_runs``).
"""

from typing import TYPE_CHECKING

import dagster as dg

from coherence_assets.defs.asset_keys import COHERENCE_JOB, INSAR_PAIRS
from coherence_assets.defs.assets.partition_runs import PartitionLog, PartitionWork
from coherence_assets.defs.jobs import BACKFILL_TAG
from coherence_assets.defs.resources import CoherenceParameters, CoherenceStorage, OpenEOBackend
from coherence_assets.partition_keys import split_partition_key

if TYPE_CHECKING:
    from coherence_assets.jobs.partition_submission import PartitionSubmission

COHERENCE_JOB_SPEC = dg.AssetSpec(
    COHERENCE_JOB,
    deps=[INSAR_PAIRS],
    description="openEO coherence jobs submitted for the partition's pairs that no job covers yet (a ledger). "
    "A run only submits: openeo_job_sensor starts the jobs, and downloads (coherence_rasters) follow as they "
    "finish; each step is an observation on the partition",
    group_name="openeo",
    kinds={"openeo"},
    skippable=True,  # partitions are recorded one by one (see partition_runs)
)


def submit_jobs(
    context: dg.AssetExecutionContext,
    storage: CoherenceStorage,
    openeo_backend: OpenEOBackend,
    coherence: CoherenceParameters,
) -> PartitionWork:
    """A partition's work for ``coherence_job``: submit jobs for the pairs of its stored pair table."""
    from coherence_assets.jobs.partition_submission import SubmissionRun, submit_partition  # see insar_pairs
    from coherence_assets.pairs.pair_table import read_pairs

    # one query per run: a partition never materialised has no jobs on the backend to adopt, so its
    # missing ledger must not cost a listing of the account's history (issue 16)
    submitted_before = context.instance.get_materialized_partitions(COHERENCE_JOB)
    run = SubmissionRun(
        storage.store,
        openeo_backend.connect,
        backend_url=openeo_backend.root_url,
        limits=openeo_backend.limits(),
        make_request=coherence.request,
        max_attempts=coherence.max_attempts,
        holder=f"run {context.run.run_id[:8]}",
        # a backfill's runs would all see the same free slot at once: they leave starting to the sensor
        start_jobs_now=BACKFILL_TAG not in context.run.tags,
    )

    def submit(key: str, log: PartitionLog) -> dict:
        burst, window = split_partition_key(key)
        submission = submit_partition(
            run,
            burst,
            window,
            read_pairs(storage.store, burst, window),
            submitted_before=key in submitted_before,
            log=log,
        )
        return submission_metadata(submission, openeo_backend.root_url)

    return submit


def submission_metadata(submission: "PartitionSubmission", backend_url: str) -> dict:
    from coherence_assets.jobs.ledger_table import ledger_markdown

    if submission.request is None:
        return {"submitted_jobs": 0, "reason": "no pairs in the pair table"}
    records, plan = submission.records, submission.plan
    return {
        "submitted_jobs": len(records),
        "started_jobs": len(submission.started),
        "job_ids": ", ".join(record.job_id or "" for record in records) or "none",
        "pairs": len(submission.pairs),
        "pairs_submitted": sum(len(record.pairs) for record in records),
        "pairs_already_covered": len(plan.covered_pairs),
        "pairs_given_up": sum(len(job.pairs) for job in plan.given_up),
        "process": submission.request.process,
        "parameters": dg.MetadataValue.json([record.arguments for record in records]),
        "backend_url": backend_url,
        "path": dg.MetadataValue.path(submission.path),
        "ledger": dg.MetadataValue.md(ledger_markdown(submission.ledger)),
    }
