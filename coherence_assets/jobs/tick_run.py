"""One tick of the job sensor without Dagster: read the ledgers, list the backend, decide, write, start.

``plan_tick`` (``jobs.tick``) only decides; this is the work around it, in the order the sensor
has always done it: the ledgers not yet done are read (``jobs.ledger_index``), the backend's
listing is read only as far as the awaited jobs (``jobs.listing``), orphan jobs are adopted or
deleted (``jobs.orphan_jobs``), the plan is made and the ledgers it changed are written, each
under its lease (:func:`apply_plan`: what the tick learnt of each job, and a lost job's ``.part``
files removed), failed jobs' error logs are fetched, created jobs are started while the backend
has room (``jobs.starter``), and the index of done partitions is updated. What is left for the
Dagster sensor is to turn the result into run requests, asset observations and its cursor.

A raster counts only once it opens as a valid coherence GeoTIFF: a file that does not (a crash's
leftover, garbage of the right size) counts as missing in the plan and is removed by the tick once
the plan is made, so its pair is downloaded again within the same bounded retries.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openeo
import requests
from openeo.rest import OpenEoApiError, OpenEoClientException

from coherence_assets.jobs.job_store import JobStore
from coherence_assets.jobs.ledger_index import TrackedJob, tracked_jobs
from coherence_assets.jobs.limits import BackendLimits
from coherence_assets.jobs.listing import JobListing, list_jobs_until_seen
from coherence_assets.jobs.orphan_jobs import settle_orphan_jobs
from coherence_assets.jobs.starter import StartOutcome, start_jobs
from coherence_assets.jobs.tick import (
    TickCursor,
    TickPlan,
    TickPolicy,
    awaited_jobs,
    inherit_done_records,
    plan_tick,
    stuck_reasons,
    stuck_work,
)
from coherence_assets.pairs.pair import Pair
from coherence_assets.partition_keys import partition_key, split_partition_key
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.raster_files.presence import (
    judge_rasters,
    present_rasters,
    remove_invalid_rasters,
    remove_partial_downloads,
    valid_rasters,
)
from coherence_assets.storage import DataStore

module_log = logging.getLogger(__name__)

# what a backend that is down, refuses us or cannot log us in raises while the tick lists its jobs
BACKEND_UNREACHABLE = (requests.RequestException, OpenEoApiError, OpenEoClientException, RuntimeError)


class BackendUnreachableError(RuntimeError):
    """The backend did not answer the tick's listing: nothing changed, the next tick tries again."""


@dataclass
class TickRun:
    """What a tick decided and did: the plan (whose cursor is the next tick's), the jobs it started, and
    the error log entries of the failed jobs (by job id) for the sensor to show."""

    plan: TickPlan
    started: list[TrackedJob] = field(default_factory=list)
    error_logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: int = 0  # to the backend


def run_tick(
    store: DataStore,
    cursor: TickCursor,
    connect: Callable[[], openeo.Connection],
    policy: TickPolicy,
    limits: BackendLimits,
    orphan_grace: dt.timedelta,
    downloading: set[str],
    resubmitting: frozenset[str],
    log: logging.Logger = module_log,
) -> TickRun | None:
    """One tick over the ledgers in ``store`` from ``cursor``; ``None`` when there is no ledger yet.

    ``connect`` is called only when a job is awaited or may be adopted; ``downloading`` and
    ``resubmitting`` hold the partitions with a download or resubmission run that has not ended.
    Raises :class:`BackendUnreachableError` when the backend does not answer the listing, before
    anything was changed.
    """
    jobs = JobStore(store)
    for entry in jobs.stuck().values():
        if _all_pairs_valid(store, entry.partition_key) and jobs.clear_stuck(entry):
            log.info(f"{entry.partition_key}: every pair has a valid raster now; it is no longer stuck")
    scan = jobs.active(report=log.error)
    if scan.empty_tree:
        return None
    ledgers = list(scan.ledgers.values())
    inherit_done_records(scan.resumed)
    awaited = awaited_jobs(ledgers)
    # a record still waiting for its job id may have a job to adopt: the listing's first page shows it
    adoptable = any(record.job_id is None for ledger in ledgers for record in ledger.jobs)
    connection = None
    listing = JobListing()
    try:
        if awaited or adoptable:
            connection = connect()
            listing = list_jobs_until_seen(connection, awaited)
    except BACKEND_UNREACHABLE as error:
        raise BackendUnreachableError(f"{type(error).__name__}: {error}") from error
    if connection is not None:
        for line in settle_orphan_jobs(jobs, connection, listing.jobs, ledgers, orphan_grace):
            log.warning(line)
    now, pairs_without_raster = time.time(), MissingRasters(store)
    plan = apply_plan(
        jobs,
        lambda busy: plan_tick(
            ledgers, listing, cursor, policy, now, pairs_without_raster, downloading, resubmitting, busy
        ),
    )
    pairs_without_raster.remove_invalid()
    tick = TickRun(plan)
    if connection is not None:
        tick.error_logs = {
            job.record.job_id: connection.job(job.record.job_id).logs(level="error")
            for job in plan.to_resubmit + plan.given_up
        }
    started = StartOutcome(last_start_at=cursor.last_start_at)
    if plan.to_start and connection is not None:
        started = start_jobs(
            connection, plan.to_start, listing.jobs, limits, last_start_at=cursor.last_start_at
        )
    plan.cursor.last_start_at = started.last_start_at
    by_id = {job.record.job_id: job for job in tracked_jobs(ledgers)}
    tick.started = [by_id[job_id] for job_id in started.started]
    tick.requests = listing.requests + len(started.started) + started.rate_limited + len(tick.error_logs)
    _log_tick(log, plan, scan.read_count, scan.total, tick.requests, started.started, policy)
    # a done partition that a run holds or marked again meanwhile stays active: a later tick retires it
    jobs.retire(scan, plan.done_partitions)
    return tick


@dataclass
class MissingRasters:
    """Which pairs of a job have no valid raster in its partition's folder, in the job's order: asked by
    ``plan_tick``, it only decides, and keeps the invalid files it found in ``invalid`` (raster path ->
    the job and why) for the tick to remove (:meth:`remove_invalid`) once the plan is made.

    Once all names are there, the tick sees the job no more: each raster is validated about once by the tick.
    Each job's answer is kept for the tick, so that a plan made again (:func:`apply_plan`) decides alike.
    """

    store: DataStore
    invalid: dict[str, tuple[TrackedJob, Pair, str]] = field(default_factory=dict)
    answers: dict[str, list[Pair]] = field(default_factory=dict)

    def __call__(self, job: TrackedJob) -> list[Pair]:
        key = str(job.record.job_id)  # a tracked job has one
        if key not in self.answers:
            self.answers[key] = self._judge(job)
        return list(self.answers[key])

    def _judge(self, job: TrackedJob) -> list[Pair]:
        folder = self.store.coherence_rasters_dir(job.burst, job.window)
        judged = judge_rasters(self.store, folder, job.record.pairs)
        for pair, why in judged.invalid.items():
            self.invalid[f"{folder}/{raster_file_name(*pair)}"] = (job, pair, why)
        return [pair for pair in job.record.pairs if pair not in judged.summaries]

    def remove_invalid(self) -> None:
        """Remove the invalid rasters found, so that their pairs (missing in the plan) are fetched again."""
        for job, pair, why in self.invalid.values():
            remove_invalid_rasters(
                self.store, self.store.coherence_rasters_dir(job.burst, job.window), [pair]
            )
            module_log.warning(
                f"job {job.record.job_id}: {why}; it was removed, so its pair counts as missing"
            )
        self.invalid.clear()


def apply_plan(jobs: JobStore, plan: Callable[[frozenset[str]], TickPlan]) -> TickPlan:
    """Decide (``plan``, given the busy partitions), then write each changed ledger under its lease; when a
    run holds a ledger, decide again with its partition busy, so that the plan says only what was written.

    A lost job's ``.part`` files go once its ledger says so: no later download may resume from another
    job's bytes.
    """
    busy: frozenset[str] = frozenset()
    written: dict[str, dict] = {}
    while True:
        decided = plan(busy)
        refused = set()
        for ledger in decided.changed:
            partition, records = partition_key(ledger.burst, ledger.window), ledger.to_json()
            if written.get(partition) == records:
                continue
            if jobs.write_progress(ledger):
                written[partition] = records
            else:
                refused.add(partition)
        if not refused:
            break
        busy |= refused
    for lost in decided.lost:
        _remove_partial_downloads(jobs, lost.job)
    return decided


def _remove_partial_downloads(jobs: JobStore, job: TrackedJob) -> None:
    folder = jobs.data.coherence_rasters_dir(job.burst, job.window)
    removed = remove_partial_downloads(
        jobs.data.fs, [f"{folder}/{raster_file_name(*pair)}" for pair in job.record.pairs]
    )
    if removed:
        module_log.info(f"job {job.record.job_id} is lost: removed {len(removed)} partial download(s) of it")


def _partition_pairs(store: DataStore, partition: str) -> tuple[str, list[Pair]] | None:
    """The rasters folder and every pair the partition's ledger holds; ``None`` if it cannot be read."""
    burst, window = split_partition_key(partition)
    ledger = JobStore(store).readable_ledger(burst, window)
    if ledger is None:
        return None
    return store.coherence_rasters_dir(burst, window), list(
        dict.fromkeys(pair for record in ledger.jobs for pair in record.pairs)
    )


def _all_pairs_valid(store: DataStore, partition: str) -> bool:
    """Whether every pair of the partition's ledger has a valid raster: one listing while any is missing."""
    found = _partition_pairs(store, partition)
    if found is None:
        return False
    folder, pairs = found
    if len(present_rasters(store, folder, pairs)) < len(pairs):
        return False
    return len(valid_rasters(store, folder, pairs).summaries) == len(pairs)


def stuck_now(store: DataStore) -> list[str]:
    """What cannot progress without a person now, one line per partition (``jobs.tick.stuck_work``), from
    the done partitions' records and the active partitions' ledgers, leaving out partitions whose pairs
    all have valid rasters by now, whoever brought them."""
    jobs = JobStore(store)
    scan = jobs.active(report=module_log.debug)
    inherit_done_records(scan.resumed)
    active = [
        ledger
        for ledger in scan.ledgers.values()
        if stuck_reasons(ledger) and not _all_pairs_valid(store, partition_key(ledger.burst, ledger.window))
    ]
    stuck = [entry for entry in jobs.stuck().values() if not _all_pairs_valid(store, entry.partition_key)]
    return stuck_work(stuck, active)


def runs_awaited(store: DataStore) -> bool:
    """Whether a job of an active partition awaits the download or resubmission runs the sensor requested."""
    return any(
        record.progress.downloads is not None or record.progress.resubmits is not None
        for ledger in JobStore(store).active(report=module_log.debug).ledgers.values()
        for record in ledger.jobs
    )


def _log_tick(
    log: logging.Logger,
    plan: TickPlan,
    ledgers_read: int,
    ledgers: int,
    requests: int,
    started: list[str],
    policy: TickPolicy,
) -> None:
    """The tick in one line, then one line per job the backend no longer lists and per stuck partition."""
    log.info(
        f"tick: read {ledgers_read} of {ledgers} ledgers, {requests} backend request(s); "
        f"jobs by status {plan.status_counts}; started {started or 'none'}; "
        f"downloads requested {[f'{r.job.record.job_id}#{r.attempt}' for r in plan.downloads] or 'none'}"
    )
    for job in plan.unseen:
        log.warning(
            f"job {job.record.job_id} of {job.partition_key} is not listed by the backend "
            f"({plan.cursor.unseen[job.record.job_id]} tick(s)); it is recorded as lost after "
            f"{policy.lost_after_ticks}"
        )
    for job in plan.downloads_given_up + plan.resubmits_given_up:
        if job.record.progress.stuck is not None:
            log.error(f"{job.partition_key}: {job.record.progress.stuck.line()}")
    for job in plan.recovered:
        log.info(
            f"{job.partition_key}: every pair of job {job.record.job_id} has a valid raster now; it is no longer stuck"
        )
