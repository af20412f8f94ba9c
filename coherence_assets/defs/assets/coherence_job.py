"""``coherence_job``: submit the openEO jobs for the pairs of a partition that no job covers yet.

It returns at once: the ``openeo_job_sensor`` starts jobs that found no free slot and
requests the downloads when they finish.
"""

import dataclasses

import dagster as dg

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.defs.assets.insar_pairs import insar_pairs
from coherence_assets.defs.partitions import burst_and_window, burst_window_partitions
from coherence_assets.defs.resources import CoherenceParameters, CoherenceStorage, OpenEOBackend
from coherence_assets.jobs.ledger import NOT_CREATED, CorruptLedgerError
from coherence_assets.jobs.ledger_lock import LedgerLease, held_ledger
from coherence_assets.jobs.ledger_repair import repair_corrupt_ledger
from coherence_assets.jobs.ledger_table import ledger_markdown
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.jobs.processes import check_process_offered
from coherence_assets.jobs.starter import start_jobs
from coherence_assets.jobs.submission import create_job, enter_job, plan_submissions, refresh_statuses
from coherence_assets.pairs.pair import Pair
from coherence_assets.partition_inputs import read_ledger, read_pairs
from coherence_assets.storage import DataStore

BACKFILL_TAG = "dagster/backfill"


@dg.asset(
    partitions_def=burst_window_partitions,
    deps=[insar_pairs],
    description="openEO coherence jobs submitted for the partition's pairs that no job covers yet (a ledger)",
    group_name="openeo",
    kinds={"openeo"},
)
def coherence_job(
    context: dg.AssetExecutionContext,
    storage: CoherenceStorage,
    openeo_backend: OpenEOBackend,
    coherence: CoherenceParameters,
) -> dg.MaterializeResult:
    burst, window = burst_and_window(context)
    store = storage.store
    pairs = read_pairs(store, burst, window)
    # one run at a time changes a ledger: a concurrent run waits here, then sees this run's jobs
    with held_ledger(store, burst, window, holder=f"run {context.run.run_id[:8]}") as lease:
        return submit_under_lease(context, store, lease, openeo_backend, coherence, burst, window, pairs)


def submit_under_lease(
    context: dg.AssetExecutionContext,
    store: DataStore,
    lease: LedgerLease,
    openeo_backend: OpenEOBackend,
    coherence: CoherenceParameters,
    burst: str,
    window: str,
    pairs: list[Pair],
) -> dg.MaterializeResult:
    try:
        ledger = read_ledger(store, burst, window, openeo_backend.root_url)
    except CorruptLedgerError:
        connection = openeo_backend.connect()
        ledger, line = repair_corrupt_ledger(
            store, connection, burst, window, openeo_backend.root_url, pairs, list_all_jobs(connection)
        )
        context.log.warning(line)
    if not pairs:
        store.write_json(store.coherence_job_path(burst, window), ledger.to_json())
        context.log.info(f"{burst} {window}: the pair table is empty, nothing to submit")
        return dg.MaterializeResult(metadata={"submitted_jobs": 0, "reason": "no pairs in the pair table"})

    connection = openeo_backend.connect()
    backend_jobs = list_all_jobs(connection)
    refresh_statuses(ledger, backend_jobs)
    plan = plan_submissions(ledger, pairs, coherence.max_attempts)
    request = coherence.request()
    check_process_offered(connection, request.process)  # before anything is entered in the ledger
    burst_key = BurstKey.parse(burst)
    # Entered by a run that died before its create reached the backend (the listing has no job of that
    # title, or refresh_statuses would have adopted it): its pairs count as covered, so create it now.
    unsent = [record for record in ledger.jobs if record.status == NOT_CREATED]
    for record in unsent:
        context.log.warning(f"{burst} {window}: creating {record.title}, entered by an interrupted run")
    records = unsent + [enter_job(ledger, burst_key, request, batch) for batch in plan.new_batches]
    records += [
        enter_job(ledger, burst_key, request, batch, attempt=failed.attempt + 1, replaces=failed.job_id)
        for failed, batch in plan.resubmissions
    ]
    path = store.coherence_job_path(burst, window)
    store.write_json(path, ledger.to_json())  # entered before created: see jobs.ledger
    for record in records:
        lease.renew()  # a create can be slow: keep the lease, and stop if another run took it over
        create_job(connection, dataclasses.replace(request, process=record.process), record)
        store.write_json(path, ledger.to_json())
        backend_jobs[record.job_id] = {"id": record.job_id, "status": "created"}
    # a backfill's runs would all see the same free slot at once: there, only the sensor starts jobs
    in_backfill = BACKFILL_TAG in context.run.tags
    candidates = [] if in_backfill else [record.job_id for record in records]
    outcome = start_jobs(connection, candidates, backend_jobs, openeo_backend.limits())
    for record in records:
        if record.job_id in outcome.started:
            record.status = "queued"
    store.write_json(path, ledger.to_json())
    for job in plan.given_up:
        context.log.error(
            f"{burst} {window}: job {job.job_id} failed {job.attempt} times; its pairs are given up"
        )
    context.log.info(
        f"{burst} {window}: {len(records)} job(s) submitted, {len(outcome.started)} started"
        + (" (in a backfill, openeo_job_sensor starts them)" if in_backfill else "")
        + ", "
        f"{len(plan.covered_pairs)} of {len(pairs)} pairs already covered"
    )
    return dg.MaterializeResult(
        metadata={
            "submitted_jobs": len(records),
            "started_jobs": len(outcome.started),
            "job_ids": ", ".join(record.job_id or "" for record in records) or "none",
            "pairs": len(pairs),
            "pairs_submitted": sum(len(record.pairs) for record in records),
            "pairs_already_covered": len(plan.covered_pairs),
            "pairs_given_up": sum(len(job.pairs) for job in plan.given_up),
            "process": request.process,
            "parameters": dg.MetadataValue.json([record.arguments for record in records]),
            "backend_url": openeo_backend.root_url,
            "path": dg.MetadataValue.path(path),
            "ledger": dg.MetadataValue.md(ledger_markdown(ledger)),
        }
    )
