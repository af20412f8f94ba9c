"""Jobs of ours that no ledger owns: adopted when a ledger record waits for them, else deleted.

A job is entered in its ledger (with its submission id, which is also in its title) before it
is created, and its backend id is recorded once the create answers. A run killed in between
leaves a record without a job id, and on a slow backend the create can land *after* a re-run
has already created the submission again: then two jobs carry the same title. Each sensor tick
settles these jobs so that none is left behind to be paid for:

- a listed job whose submission is a ledger record still waiting for its job id is adopted;
- a listed ``created`` job of ours that no ledger record owns (a twin, or a submission no
  ledger knows) is deleted once it is older than a grace period, so a create still in
  progress is never mistaken for a twin.

Only partitions that have a readable ledger here are touched: jobs of partitions this data
dir does not track (another deployment on the same account) are not ours to judge.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import openeo
from openeo.rest import OpenEoApiError

from coherence_assets.jobs.job_store import HeldLedger, JobStore
from coherence_assets.jobs.ledger import CREATED, CorruptLedgerError, Ledger
from coherence_assets.jobs.ledger_index import SENSOR
from coherence_assets.jobs.ledger_lock import LedgerBusyError
from coherence_assets.jobs.submission import parse_job_title

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adoption:
    burst: str
    window: str
    submission_id: str
    job_id: str
    status: str
    created: str


@dataclass(frozen=True)
class Deletion:
    burst: str
    window: str
    job_id: str
    title: str
    owner_job_id: str | None  # the job the ledger records for the same submission, if any


@dataclass
class OrphanDecision:
    adopt: list[Adoption] = field(default_factory=list)
    delete: list[Deletion] = field(default_factory=list)

    def partitions(self) -> list[tuple[str, str]]:
        return sorted({(item.burst, item.window) for item in [*self.adopt, *self.delete]})


def _age(job: dict[str, Any], now: dt.datetime) -> dt.timedelta | None:
    try:
        return now - dt.datetime.fromisoformat(job["created"])
    except (KeyError, TypeError, ValueError):
        return None


def decide_orphans(
    backend_jobs: dict[str, dict[str, Any]], ledgers: list[Ledger], now: dt.datetime, grace: dt.timedelta
) -> OrphanDecision:
    """Which listed jobs of ours no ledger owns, and whether each is adopted or deleted (module docstring)."""
    owned = {record.job_id for ledger in ledgers for record in ledger.jobs if record.job_id}
    records = {
        (ledger.burst, ledger.window, record.submission_id): record
        for ledger in ledgers
        for record in ledger.jobs
    }
    decision = OrphanDecision()
    adopted: set[tuple[str, str, str]] = set()
    # oldest first: of two jobs of one submission, the one created first is adopted
    for job in sorted(backend_jobs.values(), key=lambda job: (str(job.get("created", "")), job["id"])):
        titled = parse_job_title(job.get("title"))
        if job["id"] in owned or titled is None:
            continue
        key = (titled.burst, titled.window, titled.submission_id)
        if not any((ledger.burst, ledger.window) == key[:2] for ledger in ledgers):
            continue
        record = records.get(key)
        if record is not None and record.job_id is None and key not in adopted:
            adopted.add(key)
            decision.adopt.append(Adoption(*key, job["id"], job["status"], str(job.get("created", ""))))
            continue
        age = _age(job, now)
        if job["status"] == CREATED and age is not None and age >= grace:
            owner = record.job_id if record is not None else None
            decision.delete.append(Deletion(*key[:2], job["id"], job["title"], owner))
    return decision


def settle_orphan_jobs(
    jobs: JobStore,
    connection: openeo.Connection,
    backend_jobs: dict[str, dict[str, Any]],
    ledgers: list[Ledger],
    grace: dt.timedelta,
    now: dt.datetime | None = None,
) -> list[str]:
    """Adopt and delete as :func:`decide_orphans` says, each partition under its ledger's lease.

    A partition whose ledger a ``coherence_job`` run holds is left for a later tick: that run
    may be recording the very job that looks orphaned. Returns one line per change, for the log.
    """
    now = now or dt.datetime.now(dt.UTC)
    lines: list[str] = []
    for burst, window in decide_orphans(backend_jobs, ledgers, now, grace).partitions():
        try:
            with jobs.hold(burst, window, SENSOR, wait_seconds=0) as held:
                ledger = held.read_existing()  # as it is now, under the lease
                others = [other for other in ledgers if (other.burst, other.window) != (burst, window)]
                decision = decide_orphans(backend_jobs, [*others, ledger], now, grace)
                here = (burst, window)
                lines += _adopt(
                    held, ledger, [item for item in decision.adopt if (item.burst, item.window) == here]
                )
                lines += _delete(
                    connection, [item for item in decision.delete if (item.burst, item.window) == here]
                )
        except (LedgerBusyError, CorruptLedgerError, FileNotFoundError):
            continue  # held by a run (next tick), or unreadable (read_all_ledgers reported it)
    return lines


def _adopt(held: HeldLedger, ledger: Ledger, adoptions: list[Adoption]) -> list[str]:
    lines = []
    for adoption in adoptions:
        record = next(record for record in ledger.jobs if record.submission_id == adoption.submission_id)
        record.job_id, record.status, record.submitted_at = adoption.job_id, adoption.status, adoption.created
        lines.append(
            f"{ledger.burst} {ledger.window}: adopted job {adoption.job_id} ({record.title}), whose create "
            "landed after the run that entered it had ended"
        )
    if lines:
        held.write(ledger)
    return lines


def _delete(connection: openeo.Connection, deletions: list[Deletion]) -> list[str]:
    lines = []
    for deletion in deletions:
        why = (
            f"a twin of job {deletion.owner_job_id}, which the ledger records for the same submission"
            if deletion.owner_job_id
            else "no ledger records its submission"
        )
        try:
            connection.job(deletion.job_id).delete()
        except OpenEoApiError as error:
            lines.append(
                f"{deletion.burst} {deletion.window}: could not delete unowned job {deletion.job_id}: {error}"
            )
            continue
        lines.append(
            f"{deletion.burst} {deletion.window}: deleted created job {deletion.job_id} ({deletion.title}): {why}"
        )
    return lines
