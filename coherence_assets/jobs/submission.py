"""Submitting the coherence jobs a partition still needs, and nothing else.

Every pair of the pair table is either covered by a job in the ledger (created, queued,
running or finished), being resubmitted after an ``error`` (up to ``max_attempts``), given
up, or new. Only new and resubmitted pairs become jobs, grouped so that no job's extent
spans a pair that is already computed or in flight.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import openeo

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.jobs.batching import PairBatch, contiguous_batches
from coherence_assets.jobs.ledger import (
    CREATED,
    ERROR,
    FINISHED,
    IN_FLIGHT,
    LOST,
    NOT_CREATED,
    TERMINAL,
    JobRecord,
    Ledger,
)
from coherence_assets.jobs.listing import JobListing, describe_jobs, list_jobs_created_since
from coherence_assets.jobs.processes import CoherenceRequest, coherence_process_graph, process_arguments
from coherence_assets.pairs.pair import Pair

log = logging.getLogger(__name__)

RESUBMITTABLE = frozenset(
    {ERROR, LOST}
)  # a lost job (no longer listed by the backend) is retried like an error


@dataclass
class SubmissionPlan:
    """What a ``coherence_job`` run does to a ledger."""

    new_batches: list[PairBatch] = field(default_factory=list)
    resubmissions: list[tuple[JobRecord, PairBatch]] = field(default_factory=list)
    given_up: list[JobRecord] = field(default_factory=list)
    covered_pairs: set[Pair] = field(default_factory=set)


def job_title(burst: BurstKey, window: str, submission_id: str) -> str:
    """The seed's title (``sar_coherence_T{orbit}_{subswath}_{burst_id}``) plus window and submission id."""
    return f"sar_coherence_T{burst.relative_orbit:03d}_{burst.subswath}_{burst.burst_id} {window} [{submission_id}]"


_JOB_TITLE = re.compile(
    r"^sar_coherence_T(?P<orbit>\d{3})_(?P<subswath>(?:IW|EW)\d)_(?P<burst_id>\d+) "
    r"(?P<window>\d{4}-\d{2}-\d{2}) \[(?P<submission_id>[0-9a-f]+)\]$"
)


@dataclass(frozen=True)
class TitledSubmission:
    """What a job title made by :func:`job_title` says: whose partition, which submission."""

    burst: str
    window: str
    submission_id: str


def parse_job_title(title: str | None) -> TitledSubmission | None:
    """The partition and submission id in a title of ours, or ``None`` for any other job's title."""
    match = _JOB_TITLE.match(title or "")
    if match is None:
        return None
    burst = BurstKey(int(match["orbit"]), int(match["burst_id"]), match["subswath"])
    return TitledSubmission(str(burst), match["window"], match["submission_id"])


# how much earlier than its ledger entry a job may look created: the backend's clock is not ours
CLOCK_SKEW = dt.timedelta(minutes=15)


def ledger_jobs_on_backend(connection: openeo.Connection, ledger: Ledger, first_page: bool) -> JobListing:
    """What the backend says of the ledger's jobs, at a cost that does not grow with the account's history.

    Jobs that may still change are described by id; a record still waiting for its job id (its run
    died around the create) is looked for by title in the listing's pages of jobs created since it
    was entered. ``first_page`` adds the listing's first page, which shows the jobs that occupy the
    backend's slots (see ``jobs.starter``).
    """
    listing = describe_jobs(
        connection, [job.job_id for job in ledger.jobs if job.job_id and job.status not in TERMINAL]
    )
    unsent = [job for job in ledger.jobs if job.job_id is None]
    if unsent or first_page:
        recent = list_jobs_created_since(connection, _entered_since(unsent))
        listing.jobs = {**recent.jobs, **listing.jobs}
        listing.requests += recent.requests
    return listing


def _entered_since(records: list[JobRecord]) -> dt.datetime | None:
    """When the oldest of the records was entered, less the clock skew; the beginning of time when a record
    does not say (entered by an older version); ``None`` without records."""
    if not records:
        return None
    if not all(record.entered_at for record in records):
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return min(dt.datetime.fromisoformat(record.entered_at) for record in records) - CLOCK_SKEW


def refresh_statuses(ledger: Ledger, backend_jobs: dict[str, dict[str, Any]]) -> None:
    """Copy the backend's statuses into the ledger and adopt jobs created by a run that died before recording them."""
    by_title = {job.get("title"): job_id for job_id, job in backend_jobs.items()}
    for job in ledger.jobs:
        if job.job_id is None and job.title in by_title:
            job.job_id = by_title[job.title]
            log.info("adopted job %s (%s) that an interrupted run had created", job.job_id, job.title)
        if job.job_id is not None and job.job_id in backend_jobs:
            job.status = backend_jobs[job.job_id]["status"]


def plan_submissions(
    ledger: Ledger, all_pairs: list[Pair], max_attempts: int, with_raster: Collection[Pair] = frozenset()
) -> SubmissionPlan:
    """Sort the partition's pairs into covered, to resubmit, given up and new.

    A pair of a failed or lost job that has its raster (``with_raster``: a job lost after its
    download began) is covered: it is never computed twice.
    """
    plan = SubmissionPlan()
    replaced = ledger.replaced_job_ids()
    retry_pairs: set[Pair] = set()
    for job in ledger.jobs:
        if job.status in IN_FLIGHT or job.status == FINISHED:
            plan.covered_pairs.update(job.pairs)
        elif job.status in RESUBMITTABLE and job.job_id not in replaced:
            if job.attempt < max_attempts:
                plan.covered_pairs.update(pair for pair in job.pairs if pair in with_raster)
                to_retry = [pair for pair in job.pairs if pair not in with_raster]
                batches = contiguous_batches(all_pairs, to_retry)
                plan.resubmissions.extend((job, batch) for batch in batches)
                retry_pairs.update(job.pairs)
            else:
                plan.given_up.append(job)
    given_up_pairs = {pair for job in plan.given_up for pair in job.pairs}
    unrecorded = [job for job in ledger.jobs if job.status == NOT_CREATED]
    plan.covered_pairs.update(pair for job in unrecorded for pair in job.pairs)
    handled = plan.covered_pairs | retry_pairs | given_up_pairs
    replaced_pairs = {
        pair
        for job in ledger.jobs
        if job.status in RESUBMITTABLE and job.job_id in replaced
        for pair in job.pairs
    }
    new_pairs = [pair for pair in all_pairs if pair not in handled and pair not in replaced_pairs]
    plan.new_batches = contiguous_batches(all_pairs, new_pairs)
    return plan


def enter_job(
    ledger: Ledger,
    burst: BurstKey,
    request: CoherenceRequest,
    batch: PairBatch,
    attempt: int = 1,
    replaces: str | None = None,
) -> JobRecord:
    """Add a job to the ledger before it exists on the backend (see module docstring)."""
    submission_id = uuid.uuid4().hex[:12]
    pairs = list(batch.pairs)
    record = JobRecord(
        submission_id=submission_id,
        title=job_title(burst, ledger.window, submission_id),
        process=request.process,
        baseline_days=batch.baseline_days,
        pairs=pairs,
        arguments=process_arguments(request, burst, pairs, batch.baseline_days),
        attempt=attempt,
        replaces=replaces,
        namespace=request.namespace,
    )
    record.entered_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    ledger.jobs.append(record)
    return record


def create_job(connection: openeo.Connection, request: CoherenceRequest, record: JobRecord) -> None:
    """Create the recorded job on the backend (not started: the backend may have no room)."""
    process_graph = coherence_process_graph(connection, request, record.arguments)
    job = connection.create_job(process_graph, title=record.title)
    record.job_id = job.job_id
    record.status = CREATED
    record.submitted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    log.info(
        "submitted job %s (%s): %d pairs, attempt %d",
        job.job_id,
        record.title,
        len(record.pairs),
        record.attempt,
    )
