"""All ledgers of the output tree, for the sensor: which partition each tracked job belongs to."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from coherence_assets.jobs.ledger import CorruptLedgerError, JobRecord, Ledger
from coherence_assets.storage import DataStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrackedJob:
    """A job of a ledger, with its partition."""

    burst: str
    window: str
    record: JobRecord
    replaced: bool

    @property
    def partition_key(self) -> str:
        return f"{self.burst}|{self.window}"


def read_all_ledgers(store: DataStore, report: Callable[[str], object] = log.error) -> list[Ledger]:
    """Every readable ledger; an unreadable one is reported in one line and skipped, so the others go on."""
    root = store.coherence_job_root()
    if not store.fs.exists(root):
        return []
    ledgers = []
    for path in sorted(store.fs.glob(f"{root}/*/*.json")):
        try:
            ledgers.append(Ledger.from_bytes(store.read_bytes(path), path))
        except CorruptLedgerError as error:
            report(str(error))
        except FileNotFoundError:  # moved aside by a repair since the listing
            continue
    return ledgers


def tracked_jobs(ledgers: list[Ledger]) -> list[TrackedJob]:
    """Every created job of every ledger, oldest submission first."""
    jobs = [
        TrackedJob(ledger.burst, ledger.window, record, record.job_id in ledger.replaced_job_ids())
        for ledger in ledgers
        for record in ledger.jobs
        if record.job_id is not None
    ]
    return sorted(jobs, key=lambda job: (job.record.submitted_at, job.record.job_id or ""))
