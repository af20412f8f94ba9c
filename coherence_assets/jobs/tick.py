"""What one sensor tick does with the ledgers and the backend's job listing, as a plain, testable decision.

The tick only decides; ``jobs.tick_run`` does the work around it (reads the ledgers and the
listing, writes what the plan changed into the ledgers, starts jobs) and the Dagster sensor turns
both into run requests and asset observations. What the tick learns about a job (acted on, the
download or resubmission runs requested for it, why it is stuck, that it was lost) is written into
the job's own ledger record (``JobProgress``): the plan carries the ledgers as they are to be. A
partition is done when every job of its ledger was acted on for good: replaced by a resubmission,
given up, canceled, or finished with a raster for each of its pairs (not merely with a download
requested). The cursor keeps only what a tick alone needs: how many complete listings an awaited
job was missing from, and when the last job was started.

Every job the tick waits for is compared with the backend's listing, also a finished one whose
download is still pending: a backend that comes back without its state loses jobs at any stage.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from coherence_assets.jobs.ledger import (
    AWAITED,
    CANCELED,
    CREATED,
    ERROR,
    FINISHED,
    LOST,
    NOT_CREATED,
    RESOLVED,
    RESUBMITTING,
    Ledger,
    RunTries,
)
from coherence_assets.jobs.ledger_index import DonePartition, TrackedJob, tracked_jobs
from coherence_assets.jobs.listing import JobListing
from coherence_assets.jobs.stuck import StuckKind, StuckReason
from coherence_assets.pairs.pair import Pair
from coherence_assets.partition_keys import partition_key


class LostOutcome(StrEnum):
    """What becomes of a job the backend stopped listing."""

    DONE = "done"  # every pair already has a raster
    RESUBMIT = "resubmit"
    GIVEN_UP = "given_up"  # it had used its last attempt


@dataclass
class TickCursor:
    """What the sensor remembers between ticks that no ledger holds: for the awaited jobs, how many complete
    listings in a row did not have them (a job is lost after ``lost_after_ticks``), and when the last job
    was started (the backend's start spacing)."""

    unseen: dict[str, int] = field(default_factory=dict)
    last_start_at: float | None = None

    def to_json(self) -> str:
        return json.dumps({"unseen": self.unseen, "last_start_at": self.last_start_at}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> TickCursor:
        """The cursor; what earlier versions kept in it besides (``handled``, ``downloads``, ``resubmits``,
        ``stuck``) is decided again from the ledgers and the listing, and the run keys keep each run from
        being requested twice."""
        if not text:
            return cls()
        document = json.loads(text)
        return cls(unseen=document.get("unseen", {}), last_start_at=document.get("last_start_at"))


@dataclass(frozen=True)
class TickPolicy:
    """How patient the sensor is: a job's attempts (``max_attempts``), lost jobs, and the runs it requests,
    downloads and resubmissions each with their own retries."""

    max_attempts: int
    lost_after_ticks: int
    max_download_attempts: int
    download_retry_seconds: float
    max_resubmit_runs: int = 3
    resubmit_retry_seconds: float = 60.0


# the defaults of the resources that configure the policy (defs.resources)
DEFAULT_TICK_POLICY = TickPolicy(
    max_attempts=2,
    lost_after_ticks=3,
    max_download_attempts=3,
    download_retry_seconds=60.0,
    max_resubmit_runs=3,
    resubmit_retry_seconds=60.0,
)


@dataclass(frozen=True)
class DownloadRequest:
    """A run for a job (a download, or a resubmission) and which attempt it is."""

    job: TrackedJob
    attempt: int


@dataclass(frozen=True)
class LostJob:
    """A job the backend stopped listing, and what becomes of it."""

    job: TrackedJob
    outcome: LostOutcome
    missing_pairs: tuple[Pair, ...]


@dataclass
class TickPlan:
    """What a tick decided: ``ledgers`` are the active ledgers as the decisions leave them (``changed``
    holds the records to write, by ledger), the lists say what to request and to report, ``cursor`` is
    the next tick's."""

    ledgers: list[Ledger]
    cursor: TickCursor
    changed: list[Ledger] = field(default_factory=list)
    to_start: list[str] = field(default_factory=list)
    downloads: list[DownloadRequest] = field(default_factory=list)
    to_resubmit: list[TrackedJob] = field(default_factory=list)
    resubmit_again: list[DownloadRequest] = field(default_factory=list)  # an earlier resubmit run failed
    resubmits_given_up: list[TrackedJob] = field(default_factory=list)
    given_up: list[TrackedJob] = field(default_factory=list)
    canceled: list[TrackedJob] = field(default_factory=list)
    lost: list[LostJob] = field(default_factory=list)
    downloads_given_up: list[TrackedJob] = field(default_factory=list)
    finished: list[TrackedJob] = field(default_factory=list)  # seen finished for the first time
    downloaded: list[TrackedJob] = field(default_factory=list)  # each of its pairs has a raster now
    recovered: list[TrackedJob] = field(default_factory=list)  # stuck no more: its pairs have rasters now
    unseen: list[TrackedJob] = field(default_factory=list)
    done_partitions: dict[str, list[StuckReason]] = field(default_factory=dict)  # partition -> stuck reasons
    status_counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Facts:
    """What a tick decides from, besides the ledgers and the cursor (``plan_tick``'s arguments)."""

    listing: JobListing
    policy: TickPolicy
    now: float
    pairs_without_raster: Callable[[TrackedJob], list[Pair]]
    downloading: set[str]
    resubmitting: frozenset[str]


def awaited_jobs(ledgers: Iterable[Ledger]) -> set[str]:
    """Jobs whose backend status the tick needs: created, not replaced, and not yet acted on or still
    waiting for their rasters (the backend may lose a finished job before its download)."""
    return {
        job.record.job_id
        for job in tracked_jobs(list(ledgers))
        if not job.replaced and job.record.progress.awaits_status
    }


def plan_tick(
    ledgers: list[Ledger],
    listing: JobListing,
    cursor: TickCursor,
    policy: TickPolicy,
    now: float,
    pairs_without_raster: Callable[[TrackedJob], list[Pair]],
    downloading: set[str],
    resubmitting: frozenset[str] = frozenset(),
    busy: frozenset[str] = frozenset(),
) -> TickPlan:
    """Sort the ledgers' jobs by what must happen to them now, and say which partitions are done.

    Only decides, on copies of ``ledgers`` (``plan.ledgers``; ``plan.changed`` holds the records it
    changed): ``jobs.tick_run`` writes those and acts on the rest. ``pairs_without_raster`` tells which of a job's pairs have no valid raster;
    ``downloading`` and ``resubmitting`` hold the partitions with a download or resubmission run that
    has not ended; ``busy`` the partitions whose ledger a run holds, so that nothing can be written
    into them now: their jobs are decided next tick.
    """
    plan = TickPlan(
        ledgers=copy.deepcopy(ledgers), cursor=TickCursor(dict(cursor.unseen), cursor.last_start_at)
    )
    deciding = [ledger for ledger in plan.ledgers if partition_key(ledger.burst, ledger.window) not in busy]
    facts = _Facts(listing, policy, now, pairs_without_raster, downloading, resubmitting)
    for job in tracked_jobs(plan.ledgers):
        progress = job.record.progress
        if job.partition_key in busy:
            _watch_busy(plan, job, facts)
            continue
        if job.replaced:
            progress.resubmits, progress.stuck = None, None  # the replacement carries its pairs on
            continue
        if progress.handled != AWAITED:
            _follow_handled(plan, job, facts)
            continue
        job_id = job.record.job_id
        if job_id not in listing.jobs:
            if listing.proves_absent(job_id):
                _count_unseen(plan, job, facts)
            continue
        plan.cursor.unseen.pop(job_id, None)
        status = listing.jobs[job_id]["status"]
        plan.status_counts[status] = plan.status_counts.get(status, 0) + 1
        if status in (FINISHED, ERROR, CANCELED):
            job.record.status = status  # the ledger records what the job became
        if status == CREATED:
            plan.to_start.append(job_id)
        elif status == FINISHED:
            progress.handled = RESOLVED
            plan.finished.append(job)
            _reconcile_download(plan, job, facts)
        elif status == ERROR:
            if job.record.attempt < policy.max_attempts:
                plan.to_resubmit.append(job)
                progress.handled, progress.resubmits = RESUBMITTING, RunTries(1, now)
            else:
                _resolve_stuck(
                    job,
                    plan.given_up,
                    StuckReason(StuckKind.FAILED, job_id, job.record.attempt, tuple(job.record.pairs)),
                )
        elif status == CANCELED:
            _resolve_stuck(
                job, plan.canceled, StuckReason(StuckKind.CANCELED, job_id, pairs=tuple(job.record.pairs))
            )
    _close_done_partitions(plan, deciding)
    _forget_inactive(plan.cursor, plan.ledgers)
    plan.changed = [
        changed
        for before, after in zip(ledgers, plan.ledgers, strict=True)
        if (changed := _changed_records(before, after)) is not None
    ]
    return plan


def _changed_records(before: Ledger, after: Ledger) -> Ledger | None:
    """The ledger with only the records the tick changed (a run may have changed the others since the
    tick read them), or ``None``."""
    jobs = [
        decided
        for read, decided in zip(before.jobs, after.jobs, strict=True)
        if decided.to_json() != read.to_json()
    ]
    return dataclasses.replace(after, jobs=jobs) if jobs else None


def _watch_busy(plan: TickPlan, job: TrackedJob, facts: _Facts) -> None:
    """A job whose ledger a run holds: nothing can be written into it now, so only what the cursor keeps
    moves (its unseen count, held below the threshold) and a created job may start; the rest is decided
    next tick."""
    progress, job_id, listing = job.record.progress, job.record.job_id, facts.listing
    if job.replaced or not progress.awaits_status:
        return
    if listing.proves_absent(job_id):
        plan.cursor.unseen[job_id] = min(
            plan.cursor.unseen.get(job_id, 0) + 1, facts.policy.lost_after_ticks - 1
        )
        plan.unseen.append(job)
    elif progress.handled == AWAITED and listing.jobs.get(job_id, {}).get("status") == CREATED:
        plan.to_start.append(job_id)


def _follow_handled(plan: TickPlan, job: TrackedJob, facts: _Facts) -> None:
    """A job acted on before: follow its downloads or resubmission, and see whether a stuck one recovered."""
    progress = job.record.progress
    if progress.downloads is not None and facts.listing.proves_absent(job.record.job_id):
        _count_unseen(plan, job, facts)
    elif progress.downloads is not None:
        plan.cursor.unseen.pop(job.record.job_id, None)
        _reconcile_download(plan, job, facts)
    elif progress.handled == RESUBMITTING:
        _reconcile_resubmit(plan, job, facts)
    elif progress.stuck is not None and not facts.pairs_without_raster(job):
        progress.stuck = None  # whoever brought its rasters, nothing is left to do by hand
        plan.recovered.append(job)


def _resolve_stuck(job: TrackedJob, outcome: list[TrackedJob], reason: StuckReason) -> None:
    """Act on ``job`` for good although pairs of it have no raster: list it under ``outcome``, say why."""
    outcome.append(job)
    job.record.progress.handled, job.record.progress.stuck = RESOLVED, reason


def _reconcile_download(plan: TickPlan, job: TrackedJob, facts: _Facts) -> None:
    """Request a download run for a finished job until each of its pairs has a raster, spaced and bounded."""
    progress, policy, now = job.record.progress, facts.policy, facts.now
    if job.partition_key in facts.downloading:  # the run validates what it brings; judged once it has ended
        if progress.downloads is None:
            progress.downloads = RunTries(0, 0.0)
        return
    missing = facts.pairs_without_raster(job)
    if not missing:
        if progress.downloads is not None or job in plan.finished:
            plan.downloaded.append(job)
        progress.downloads = None
        return
    previous = progress.downloads
    attempts = previous.attempts if previous else 0
    if attempts >= policy.max_download_attempts:
        progress.downloads = None
        plan.downloads_given_up.append(job)
        progress.stuck = StuckReason(StuckKind.DOWNLOADS_FAILED, job.record.job_id, attempts, tuple(missing))
        return
    if previous and previous.attempts and now < previous.requested_at + policy.download_retry_seconds:
        return
    plan.downloads.append(DownloadRequest(job, attempts + 1))
    progress.downloads = RunTries(attempts + 1, now)


def _reconcile_resubmit(plan: TickPlan, job: TrackedJob, facts: _Facts) -> None:
    """Request a resubmission again while the ledger shows no replacement (its run failed), spaced and
    bounded; a job whose pairs all got a raster meanwhile needs none."""
    progress, policy, now = job.record.progress, facts.policy, facts.now
    if job.partition_key in facts.resubmitting:
        return
    if not facts.pairs_without_raster(job):
        progress.handled, progress.resubmits = RESOLVED, None
        return
    previous = progress.resubmits or RunTries(1, now)
    if previous.attempts >= policy.max_resubmit_runs:
        progress.resubmits = None
        _resolve_stuck(
            job,
            plan.resubmits_given_up,
            StuckReason(
                StuckKind.RESUBMITS_FAILED, job.record.job_id, previous.attempts, tuple(job.record.pairs)
            ),
        )
        return
    if now < previous.requested_at + policy.resubmit_retry_seconds:
        progress.resubmits = previous
        return
    plan.resubmit_again.append(DownloadRequest(job, previous.attempts + 1))
    progress.resubmits = RunTries(previous.attempts + 1, now)


def _count_unseen(plan: TickPlan, job: TrackedJob, facts: _Facts) -> None:
    """A job missing from complete listings for ``lost_after_ticks`` ticks is lost: its fate goes into its
    record (finished when every pair has a raster, else lost) for the tick to write."""
    job_id, progress, policy = job.record.job_id, job.record.progress, facts.policy
    unseen = plan.cursor.unseen.get(job_id, 0) + 1
    if unseen < policy.lost_after_ticks:
        plan.cursor.unseen[job_id] = unseen
        plan.unseen.append(job)
        return
    plan.cursor.unseen.pop(job_id, None)
    progress.downloads = None  # a lost job's results cannot be downloaded any more
    missing = tuple(facts.pairs_without_raster(job))
    if not missing:
        lost = LostJob(job, LostOutcome.DONE, missing)
    elif job.record.attempt < policy.max_attempts:
        lost = LostJob(job, LostOutcome.RESUBMIT, missing)
    else:
        lost = LostJob(job, LostOutcome.GIVEN_UP, missing)
    plan.lost.append(lost)
    job.record.status = FINISHED if lost.outcome == LostOutcome.DONE else LOST
    progress.handled = RESUBMITTING if lost.outcome == LostOutcome.RESUBMIT else RESOLVED
    if lost.outcome == LostOutcome.RESUBMIT:
        progress.resubmits = RunTries(1, facts.now)
    if lost.outcome == LostOutcome.GIVEN_UP:
        progress.stuck = StuckReason(StuckKind.LOST, job_id, job.record.attempt, missing)


def _close_done_partitions(plan: TickPlan, ledgers: list[Ledger]) -> None:
    """Partitions whose every job is resolved are done, with what is stuck in them, for the index."""
    for ledger in ledgers:
        replaced = ledger.replaced_job_ids()
        resolved = all(
            job.status != NOT_CREATED
            and job.job_id is not None
            and (
                job.job_id in replaced
                or (job.progress.handled == RESOLVED and job.progress.downloads is None)
            )
            for job in ledger.jobs
        )
        if not resolved:
            continue
        plan.done_partitions[partition_key(ledger.burst, ledger.window)] = stuck_reasons(ledger)
        for job in ledger.jobs:
            plan.cursor.unseen.pop(job.job_id or "", None)


def _forget_inactive(cursor: TickCursor, ledgers: list[Ledger]) -> None:
    """Drop the counts of jobs no active ledger has: their partitions were closed, by this sensor or by
    another Dagster instance that shares the data folder, or their ledger was moved aside."""
    active_jobs = {record.job_id for ledger in ledgers for record in ledger.jobs if record.job_id}
    for job_id in set(cursor.unseen) - active_jobs:
        del cursor.unseen[job_id]


def stuck_reasons(ledger: Ledger) -> list[StuckReason]:
    """Why jobs of the ledger cannot progress without a person, oldest job first; a replaced job's reason
    no longer holds."""
    replaced = ledger.replaced_job_ids()
    return [job.progress.stuck for job in ledger.jobs if job.progress.stuck and job.job_id not in replaced]


def inherit_done_records(resumed: Iterable[tuple[DonePartition, Ledger]]) -> None:
    """A partition active again whose ledger was written before the ledger kept the sensor's findings:
    its done record (carried by its marker) says which jobs were resolved and why some were stuck.

    Set on the ledgers as read, every tick (written into the ledger only with a change the tick makes to it),
    so that a refreshed ledger does not send the sensor paging back through the listing for its old jobs,
    nor declare a lost job lost again.
    """
    for entry, ledger in resumed:
        for record in ledger.jobs:
            if record.job_id in entry.resolved_jobs and record.progress.handled == AWAITED:
                record.progress.handled = RESOLVED
        for reason in entry.stuck:
            record = ledger.job(reason.job_id)
            if record is not None and record.progress.stuck is None:
                record.progress.stuck = reason


def stuck_work(done: Iterable[DonePartition], active: Iterable[Ledger] = ()) -> list[str]:
    """What cannot progress without a person, one line per partition, with what to do: the done
    partitions' records and the active partitions' ledgers."""
    reasons = {entry.partition_key: list(entry.stuck) for entry in done if entry.stuck}
    for ledger in active:
        if stuck := stuck_reasons(ledger):
            reasons.setdefault(partition_key(ledger.burst, ledger.window), []).extend(stuck)
    return [
        f"{partition}: {'; '.join(reason.line() for reason in stuck)}"
        for partition, stuck in sorted(reasons.items())
    ]
