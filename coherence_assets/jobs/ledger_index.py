"""All ledgers of the output tree, for the sensor: which partition each tracked job belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from coherence_assets.jobs.ledger import JobRecord, Ledger
from coherence_assets.storage import DataStore


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


def read_all_ledgers(store: DataStore) -> list[Ledger]:
    root = store.coherence_job_root()
    if not store.fs.exists(root):
        return []
    return [Ledger.from_json(store.read_json(path)) for path in sorted(store.fs.glob(f"{root}/*/*.json"))]


def tracked_jobs(ledgers: list[Ledger]) -> list[TrackedJob]:
    """Every created job of every ledger, oldest submission first."""
    jobs = [
        TrackedJob(ledger.burst, ledger.window, record, record.job_id in ledger.replaced_job_ids())
        for ledger in ledgers
        for record in ledger.jobs
        if record.job_id is not None
    ]
    return sorted(jobs, key=lambda job: (job.record.submitted_at, job.record.job_id or ""))
