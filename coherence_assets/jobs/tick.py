"""What one sensor tick does with the ledgers and the backend's job listing, as a plain, testable decision.

The tick only decides; ``jobs.tick_run`` does the work around it (reads the ledgers and the
listing, starts jobs, marks lost ones) and the Dagster sensor turns both into run requests and
asset observations. A partition is done when every job of its ledger
was acted on for good: replaced by a resubmission, given up, canceled, or finished with a
raster for each of its pairs (not merely with a download requested). The cursor holds only
the active partitions' jobs, so it stays small however long the history grows; an entry of a
partition that is no longer active (closed by another Dagster instance sharing the data folder)
is dropped. What a partition active again carries from when it was done (its resolved jobs and
stuck reasons) stays in its index record and is read back each tick, not kept in the cursor.

Every job the tick waits for is compared with the backend's listing, also a finished one whose
download is still pending: a backend that comes back without its state loses jobs at any stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from coherence_assets.jobs.ledger import CANCELED, CREATED, ERROR, FINISHED, NOT_CREATED, Ledger
from coherence_assets.jobs.ledger_index import DonePartition, TrackedJob, tracked_jobs
from coherence_assets.jobs.listing import JobListing
from coherence_assets.jobs.stuck import StuckKind, StuckReason
from coherence_assets.pairs.pair import Pair
from coherence_assets.partition_keys import partition_key

# what a tick did with a job whose state it acted on
RESOLVED = "resolved"
RESUBMITTING = "resubmitting"  # resolved once the ledger holds the job that replaces it


class LostOutcome(StrEnum):
    """What becomes of a job the backend stopped listing."""

    DONE = "done"  # every pair already has a raster
    RESUBMIT = "resubmit"
    GIVEN_UP = "given_up"  # it had used its last attempt


@dataclass
class RunAttempts:
    """Runs requested for a job (downloads of its rasters, or its resubmission) that have not done their work yet."""

    attempts: int
    requested_at: float


@dataclass
class TickCursor:
    """What the sensor remembers between ticks, for the partitions that are not done: what the ticks
    learnt themselves (see :func:`forget_recorded`)."""

    handled: dict[str, str] = field(default_factory=dict)  # job id -> RESOLVED or RESUBMITTING
    last_start_at: float | None = None
    downloads: dict[str, RunAttempts] = field(default_factory=dict)
    resubmits: dict[str, RunAttempts] = field(default_factory=dict)  # until the ledger holds the replacement
    unseen: dict[str, int] = field(default_factory=dict)  # job id -> complete listings without it
    stuck: dict[str, list[StuckReason]] = field(default_factory=dict)  # partition -> what cannot progress

    def to_json(self) -> str:
        return json.dumps(
            {
                "handled": self.handled,
                "last_start_at": self.last_start_at,
                "downloads": {
                    job_id: [state.attempts, state.requested_at] for job_id, state in self.downloads.items()
                },
                "resubmits": {
                    job_id: [state.attempts, state.requested_at] for job_id, state in self.resubmits.items()
                },
                "unseen": self.unseen,
                "stuck": {
                    partition: [reason.to_json() for reason in reasons]
                    for partition, reasons in self.stuck.items()
                },
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> TickCursor:
        if not text:
            return cls()
        document = json.loads(text)
        handled = document.get("handled", {})
        if isinstance(handled, list):  # cursors written before downloads were reconciled
            handled = dict.fromkeys(handled, RESOLVED)
        return cls(
            handled=handled,
            last_start_at=document.get("last_start_at"),
            downloads={
                job_id: RunAttempts(attempts, requested_at)
                for job_id, (attempts, requested_at) in document.get("downloads", {}).items()
            },
            resubmits={
                job_id: RunAttempts(attempts, requested_at)
                for job_id, (attempts, requested_at) in document.get("resubmits", {}).items()
            },
            unseen=document.get("unseen", {}),
            stuck={
                partition: [StuckReason.from_json(reason) for reason in reasons]
                for partition, reasons in document.get("stuck", {}).items()
            },
        )

    def copy(self) -> TickCursor:
        return TickCursor.from_json(self.to_json())


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
    cursor: TickCursor
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
    unseen: list[TrackedJob] = field(default_factory=list)
    done_partitions: dict[str, list[StuckReason]] = field(default_factory=dict)  # partition -> stuck reasons
    status_counts: dict[str, int] = field(default_factory=dict)


def awaited_jobs(ledgers: Iterable[Ledger], cursor: TickCursor) -> set[str]:
    """Jobs whose backend status the tick needs: created, not replaced, and not yet acted on or still
    waiting for their rasters (the backend may lose a finished job before its download)."""
    return {
        job.record.job_id
        for job in tracked_jobs(list(ledgers))
        if not job.replaced
        and (job.record.job_id not in cursor.handled or job.record.job_id in cursor.downloads)
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

    Only decides: what the plan says is done by ``jobs.tick_run`` (a lost job's fate is written
    into its ledger there). ``pairs_without_raster`` tells which of a job's pairs have no raster on
    disk; ``downloading`` and ``resubmitting`` hold the partitions with a download or resubmission
    run that has not ended; ``busy`` the partitions whose ledger a run holds, so that a lost job's
    fate cannot be written now: it is decided again next tick.
    """
    plan = TickPlan(cursor=cursor.copy())
    state = plan.cursor
    for job in tracked_jobs(ledgers):
        job_id = job.record.job_id
        if job.replaced:
            state.resubmits.pop(job_id, None)
            continue
        if job_id in state.handled:
            if job_id in state.downloads and listing.proves_absent(job_id):
                _count_unseen(plan, job, policy, now, pairs_without_raster, busy)
            elif job_id in state.downloads:
                state.unseen.pop(job_id, None)
                _reconcile_download(plan, job, policy, now, pairs_without_raster, downloading)
            elif state.handled[job_id] == RESUBMITTING:
                _reconcile_resubmit(plan, job, policy, now, pairs_without_raster, resubmitting)
            continue
        if job_id not in listing.jobs:
            if listing.proves_absent(job_id):
                _count_unseen(plan, job, policy, now, pairs_without_raster, busy)
            continue
        state.unseen.pop(job_id, None)
        status = listing.jobs[job_id]["status"]
        plan.status_counts[status] = plan.status_counts.get(status, 0) + 1
        if status == CREATED:
            plan.to_start.append(job_id)
        elif status == FINISHED:
            state.handled[job_id] = RESOLVED
            plan.finished.append(job)
            _reconcile_download(plan, job, policy, now, pairs_without_raster, downloading)
        elif status == ERROR:
            if job.record.attempt < policy.max_attempts:
                plan.to_resubmit.append(job)
                state.handled[job_id] = RESUBMITTING
                state.resubmits[job_id] = RunAttempts(1, now)
            else:
                _resolve_stuck(
                    plan,
                    job,
                    plan.given_up,
                    StuckReason(StuckKind.FAILED, job_id, job.record.attempt, tuple(job.record.pairs)),
                )
        elif status == CANCELED:
            _resolve_stuck(
                plan,
                job,
                plan.canceled,
                StuckReason(StuckKind.CANCELED, job_id, pairs=tuple(job.record.pairs)),
            )
    _close_done_partitions(plan, ledgers)
    _forget_inactive(state, ledgers)
    return plan


def _stuck(plan: TickPlan, job: TrackedJob, reason: StuckReason) -> None:
    plan.cursor.stuck.setdefault(job.partition_key, []).append(reason)


def _resolve_stuck(plan: TickPlan, job: TrackedJob, outcome: list[TrackedJob], reason: StuckReason) -> None:
    """Act on ``job`` for good although pairs of it have no raster: list it under ``outcome``, say why."""
    outcome.append(job)
    plan.cursor.handled[job.record.job_id] = RESOLVED
    _stuck(plan, job, reason)


def _reconcile_download(
    plan: TickPlan,
    job: TrackedJob,
    policy: TickPolicy,
    now: float,
    pairs_without_raster: Callable[[TrackedJob], list[Pair]],
    downloading: set[str],
) -> None:
    """Request a download run for a finished job until each of its pairs has a raster, spaced and bounded."""
    job_id = job.record.job_id
    downloads = plan.cursor.downloads
    if job.partition_key in downloading:  # the run validates what it brings; judged once it has ended
        downloads.setdefault(job_id, RunAttempts(0, 0.0))
        return
    missing = pairs_without_raster(job)
    if not missing:
        if downloads.pop(job_id, None) is not None or job in plan.finished:
            plan.downloaded.append(job)
        return
    previous = downloads.get(job_id)
    attempts = previous.attempts if previous else 0
    if attempts >= policy.max_download_attempts:
        downloads.pop(job_id)
        plan.downloads_given_up.append(job)
        _stuck(plan, job, StuckReason(StuckKind.DOWNLOADS_FAILED, job_id, attempts, tuple(missing)))
        return
    if previous and previous.attempts and now < previous.requested_at + policy.download_retry_seconds:
        return
    plan.downloads.append(DownloadRequest(job, attempts + 1))
    downloads[job_id] = RunAttempts(attempts + 1, now)


def _reconcile_resubmit(
    plan: TickPlan,
    job: TrackedJob,
    policy: TickPolicy,
    now: float,
    pairs_without_raster: Callable[[TrackedJob], list[Pair]],
    resubmitting: frozenset[str],
) -> None:
    """Request a resubmission again while the ledger shows no replacement (its run failed), spaced and
    bounded; a job whose pairs all got a raster meanwhile needs none."""
    job_id = job.record.job_id
    if job.partition_key in resubmitting:
        return
    if not pairs_without_raster(job):
        plan.cursor.resubmits.pop(job_id, None)
        plan.cursor.handled[job_id] = RESOLVED
        return
    previous = plan.cursor.resubmits.get(job_id, RunAttempts(1, now))
    if previous.attempts >= policy.max_resubmit_runs:
        plan.cursor.resubmits.pop(job_id, None)
        _resolve_stuck(
            plan,
            job,
            plan.resubmits_given_up,
            StuckReason(StuckKind.RESUBMITS_FAILED, job_id, previous.attempts, tuple(job.record.pairs)),
        )
        return
    if now < previous.requested_at + policy.resubmit_retry_seconds:
        plan.cursor.resubmits.setdefault(job_id, previous)
        return
    plan.resubmit_again.append(DownloadRequest(job, previous.attempts + 1))
    plan.cursor.resubmits[job_id] = RunAttempts(previous.attempts + 1, now)


def _count_unseen(
    plan: TickPlan,
    job: TrackedJob,
    policy: TickPolicy,
    now: float,
    pairs_without_raster: Callable[[TrackedJob], list[Pair]],
    busy: frozenset[str],
) -> None:
    """A job missing from complete listings for ``lost_after_ticks`` ticks is lost."""
    job_id = job.record.job_id
    state = plan.cursor
    unseen = state.unseen.get(job_id, 0) + 1
    if unseen < policy.lost_after_ticks or job.partition_key in busy:
        state.unseen[job_id] = min(unseen, policy.lost_after_ticks - 1)
        plan.unseen.append(job)
        return
    state.downloads.pop(job_id, None)  # a lost job's results cannot be downloaded any more
    missing = tuple(pairs_without_raster(job))
    if not missing:
        lost = LostJob(job, LostOutcome.DONE, missing)
    elif job.record.attempt < policy.max_attempts:
        lost = LostJob(job, LostOutcome.RESUBMIT, missing)
    else:
        lost = LostJob(job, LostOutcome.GIVEN_UP, missing)
    state.unseen.pop(job_id, None)
    plan.lost.append(lost)
    state.handled[job_id] = RESUBMITTING if lost.outcome == LostOutcome.RESUBMIT else RESOLVED
    if lost.outcome == LostOutcome.RESUBMIT:
        state.resubmits[job_id] = RunAttempts(1, now)
    if lost.outcome == LostOutcome.GIVEN_UP:
        _stuck(plan, job, StuckReason(StuckKind.LOST, job_id, job.record.attempt, missing))


def _close_done_partitions(plan: TickPlan, ledgers: list[Ledger]) -> None:
    """Partitions whose every job is resolved leave the cursor (with their stuck reasons) for the index."""
    state = plan.cursor
    for ledger in ledgers:
        replaced = ledger.replaced_job_ids()
        resolved = all(
            job.status != NOT_CREATED
            and job.job_id is not None
            and (
                job.job_id in replaced
                or (state.handled.get(job.job_id) == RESOLVED and job.job_id not in state.downloads)
            )
            for job in ledger.jobs
        )
        if not resolved:
            continue
        partition = partition_key(ledger.burst, ledger.window)
        plan.done_partitions[partition] = state.stuck.pop(partition, [])
        for job in ledger.jobs:
            for table in (state.handled, state.downloads, state.resubmits, state.unseen):
                table.pop(job.job_id, None)


def _forget_inactive(state: TickCursor, ledgers: list[Ledger]) -> None:
    """Drop what the cursor holds for jobs and partitions no active ledger has: their partitions were
    closed, by this sensor or by another Dagster instance that shares the data folder, or their ledger
    was moved aside; left in, they would keep this sensor busy for ever."""
    active_jobs = {record.job_id for ledger in ledgers for record in ledger.jobs if record.job_id}
    active_partitions = {partition_key(ledger.burst, ledger.window) for ledger in ledgers}
    for table in (state.handled, state.downloads, state.resubmits, state.unseen):
        for job_id in set(table) - active_jobs:
            del table[job_id]
    for partition in set(state.stuck) - active_partitions:
        del state.stuck[partition]


def resume_rewritten_partitions(
    cursor: TickCursor, rewritten: Iterable[tuple[DonePartition, Ledger]]
) -> None:
    """Done partitions whose ledger was rewritten are active again, but their resolved jobs stay resolved.

    Without this, a ledger refreshed by a later ``coherence_job`` run would send the sensor paging
    back through the listing for its old jobs, and a lost job would be declared lost again.
    What was stuck stays stuck unless the job has been replaced since.
    """
    for entry, ledger in rewritten:
        cursor.handled.update(dict.fromkeys(entry.resolved_jobs, RESOLVED))
        replaced = ledger.replaced_job_ids()
        still = [reason for reason in entry.stuck if reason.job_id not in replaced]
        if still:  # idempotent: a partition active again is resumed on every tick until it is done
            known = cursor.stuck.setdefault(entry.partition_key, [])
            known.extend(reason for reason in still if reason not in known)


def forget_recorded(cursor: TickCursor, resumed: Iterable[tuple[DonePartition, Ledger]]) -> None:
    """Drop from the cursor what the active partitions' index records carry from when they were done
    (their resolved jobs and stuck reasons): :func:`resume_rewritten_partitions` reads it from there on
    every tick, so the cursor keeps only what the ticks learnt themselves."""
    for entry, _ in resumed:
        for job_id in entry.resolved_jobs:
            if cursor.handled.get(job_id) == RESOLVED and job_id not in cursor.downloads:
                del cursor.handled[job_id]
        if entry.partition_key in cursor.stuck:
            learnt = [reason for reason in cursor.stuck[entry.partition_key] if reason not in entry.stuck]
            if learnt:
                cursor.stuck[entry.partition_key] = learnt
            else:
                del cursor.stuck[entry.partition_key]


def stuck_work(done: Iterable[DonePartition], cursor: TickCursor | None = None) -> list[str]:
    """What cannot progress without a person, one line per partition, with what to do."""
    reasons = {entry.partition_key: list(entry.stuck) for entry in done if entry.stuck}
    for partition, active in (cursor.stuck if cursor else {}).items():
        reasons.setdefault(partition, []).extend(active)
    return [
        f"{partition}: {'; '.join(reason.line() for reason in stuck)}"
        for partition, stuck in sorted(reasons.items())
    ]
