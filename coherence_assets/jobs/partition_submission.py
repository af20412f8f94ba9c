"""The ``coherence_job`` step without Dagster: a partition's pairs that no job covers become jobs.

One run at a time changes a ledger: the step holds the partition's lease
(``jobs.job_store.JobStore.hold``) throughout, so a concurrent run waits and then sees this run's
jobs. A corrupt ledger is rebuilt from the backend's jobs first, and a missing one adopts the jobs
the backend holds for the partition (its history listed at most once per data folder:
``jobs.ledger_repair``) when the partition was submitted before (``submitted_before``): a new
partition has no jobs to adopt, so it never reads the account's history. Jobs are entered in the
ledger before they are created (see ``jobs.ledger``); a job entered by an interrupted run is
created now. Created jobs are started while the backend has room, unless the run is one of a
backfill, whose runs would all see the same free slot at once: there only the sensor starts jobs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import openeo

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.jobs.job_store import JobStore
from coherence_assets.jobs.ledger import (
    CREATED,
    NOT_CREATED,
    QUEUED,
    CorruptLedgerError,
    JobRecord,
    Ledger,
)
from coherence_assets.jobs.ledger_repair import adopt_backend_jobs, repair_corrupt_ledger
from coherence_assets.jobs.limits import BackendLimits
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.jobs.processes import CoherenceRequest, check_process_offered, pin_apex_commit
from coherence_assets.jobs.starter import start_jobs
from coherence_assets.jobs.submission import (
    SubmissionPlan,
    create_job,
    enter_job,
    ledger_jobs_on_backend,
    plan_submissions,
    refresh_statuses,
)
from coherence_assets.pairs.pair import Pair
from coherence_assets.raster_files.presence import present_rasters
from coherence_assets.storage import DataStore

module_log = logging.getLogger(__name__)


@dataclass
class PartitionSubmission:
    """What a run did to the partition's ledger: the jobs it submitted and started, and the plan."""

    ledger: Ledger
    path: str
    pairs: list[Pair]
    records: list[JobRecord] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    plan: SubmissionPlan = field(default_factory=SubmissionPlan)
    request: CoherenceRequest | None = None


@dataclass(frozen=True)
class SubmissionRun:
    """What every partition of one ``coherence_job`` run is submitted with: the data folder, the backend
    (a login, its URL and limits), the coherence request and its attempts, and the lease holder's name."""

    store: DataStore
    connect: Callable[[], openeo.Connection]
    backend_url: str
    limits: BackendLimits
    make_request: Callable[[], CoherenceRequest]
    max_attempts: int
    holder: str
    # False in a backfill, whose runs would all see the same free slot at once: the sensor starts jobs
    start_jobs_now: bool = True


def submit_partition(
    run: SubmissionRun,
    burst: str,
    window: str,
    pairs: list[Pair],
    *,
    submitted_before: bool = True,
    log: logging.Logger | logging.LoggerAdapter = module_log,
) -> PartitionSubmission:
    """Enter, create and (``run.start_jobs_now``) start the jobs for the pairs no job covers yet, holding
    the ledger's lease as ``run.holder`` (named to a run that waits for it).

    ``submitted_before`` says whether an earlier run may have submitted this partition (the Dagster
    layer knows from its materialisations; unknown, it is ``True``): only then does a missing
    ledger mean a lost data folder whose jobs the backend holds."""
    with JobStore(run.store).hold(burst, window, run.holder) as held:
        held.mark_active()  # before the ledger changes, so the sensor reads it (ledger_index)
        try:
            ledger = held.read(run.backend_url)
        except CorruptLedgerError:
            connection = run.connect()
            ledger, line = repair_corrupt_ledger(
                held, connection, run.backend_url, pairs, list_all_jobs(connection)
            )
            log.warning(line)
        else:
            # no ledger (asked of the store): a new partition, or a lost data folder whose jobs
            # the backend holds
            if submitted_before and pairs and not ledger.jobs and not held.exists():
                adopted = adopt_backend_jobs(held, run.connect(), run.backend_url, pairs)
                if adopted is not None:
                    ledger, line = adopted
                    log.warning(line)
        if not pairs:
            held.write(ledger)
            log.info(f"{burst} {window}: the pair table is empty, nothing to submit")
            return PartitionSubmission(ledger, held.path, pairs)

        connection = run.connect()
        backend_jobs = ledger_jobs_on_backend(connection, ledger, first_page=run.start_jobs_now).jobs
        refresh_statuses(ledger, backend_jobs)
        with_raster = present_rasters(run.store, run.store.coherence_rasters_dir(burst, window), pairs)
        plan = plan_submissions(ledger, pairs, run.max_attempts, with_raster)
        # the APEx commit recorded for the partition (resubmissions run the same code), or main's now
        request = pin_apex_commit(run.make_request(), ledger)
        check_process_offered(connection, request.process)  # before anything is entered in the ledger
        burst_key = BurstKey.parse(burst)
        # Entered by a run that died before its create reached the backend (no job of that title was created
        # since, or refresh_statuses would have adopted it): its pairs count as covered, so create it now.
        unsent = [record for record in ledger.jobs if record.status == NOT_CREATED]
        for record in unsent:
            log.warning(f"{burst} {window}: creating {record.title}, entered by an interrupted run")
        records = unsent + [enter_job(ledger, burst_key, request, batch) for batch in plan.new_batches]
        records += [
            enter_job(ledger, burst_key, request, batch, attempt=failed.attempt + 1, replaces=failed.job_id)
            for failed, batch in plan.resubmissions
        ]
        held.write(ledger)  # entered before created: see jobs.ledger
        for record in records:
            held.renew()  # a create can be slow: keep the lease, and stop if another run took it over
            create_job(connection, dataclasses.replace(request, process=record.process), record)
            held.write(ledger)
            backend_jobs[record.job_id] = {"id": record.job_id, "status": CREATED}
        candidates = [record.job_id for record in records] if run.start_jobs_now else []
        outcome = start_jobs(connection, candidates, backend_jobs, run.limits)
        for record in records:
            if record.job_id in outcome.started:
                record.status = QUEUED
        held.write(ledger)
        for job in plan.given_up:
            log.error(
                f"{burst} {window}: job {job.job_id} failed {job.attempt} times; its pairs are given up"
            )
        log.info(
            f"{burst} {window}: {len(records)} job(s) submitted, {len(outcome.started)} started"
            + ("" if run.start_jobs_now else " (in a backfill, openeo_job_sensor starts them)")
            + f", {len(plan.covered_pairs)} of {len(pairs)} pairs already covered"
        )
        return PartitionSubmission(ledger, held.path, pairs, records, outcome.started, plan, request)
