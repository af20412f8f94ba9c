"""The ledger of one burst x window partition: every job submitted for its pairs.

It is the ``coherence_job`` asset's output (``coherence_job/<burst>/<window>.json``), the
only record that ties backend job ids to pairs, and the one record of each job's life: its
attempts, what replaced it, its loss, and what the job sensor made of it (``JobProgress``: the
download and resubmission runs it requested, and why the job is stuck). A job is entered *before* it is created on
the backend (with a submission id that also goes into the job title), so a run that dies
between the two can find the job again instead of creating a twin.

The file has no version number: fields are only ever added, each with a default that reads an
older ledger correctly (``namespace``, added when APEx jobs got pinned, is ``None`` in ledgers of
the jobs submitted before, whose code is unknown).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from coherence_assets.jobs.stuck import StuckReason
from coherence_assets.pairs.pair import Pair

# openEO job statuses (openEO API, BatchJob.status), and two of the ledger's own.
CREATED = "created"
QUEUED = "queued"
RUNNING = "running"
IN_FLIGHT = frozenset({CREATED, QUEUED, RUNNING})
FINISHED = "finished"
ERROR = "error"
CANCELED = "canceled"
LOST = "lost"  # the backend stopped listing it (e.g. restarted without its state); resubmitted like an error
NOT_CREATED = "not_created"  # entered in the ledger, not yet known to the backend
# a job in one of these will not change again: nothing is left to wait for (a retry is a new job)
TERMINAL = frozenset({FINISHED, ERROR, CANCELED, LOST})

# what the job sensor made of a job (JobProgress.handled)
AWAITED = ""  # not acted on yet: the sensor asks the backend for its status
RESOLVED = "resolved"  # acted on for good (its rasters may still be downloading: JobProgress.downloads)
RESUBMITTING = "resubmitting"  # resolved once the ledger holds the job that replaces it


class CorruptLedgerError(ValueError):
    """A ledger file that is not a ledger (truncated, not JSON, wrong shape): names the file and the way out."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        super().__init__(
            f"{path} is not a readable job ledger ({reason}); its partition is skipped until coherence_job "
            "is materialised for it, which rebuilds the ledger from the backend's job listing and keeps "
            "this file as .corrupt-<time>"
        )


@dataclass
class RunTries:
    """Runs the sensor requested for a job (downloads of its rasters, or its resubmission) that have not
    done their work yet: how many, and when the last was requested (epoch seconds)."""

    attempts: int
    requested_at: float


@dataclass
class JobProgress:
    """What the job sensor made of a job after it was created, written by its ticks under the ledger's lease:
    whether it was acted on, the runs requested for it, and why it is stuck (a structured reason)."""

    handled: str = AWAITED
    downloads: RunTries | None = None  # while the job is finished and its rasters are awaited
    resubmits: RunTries | None = None  # while it is to be resubmitted and the ledger holds no replacement
    stuck: StuckReason | None = None  # its pairs cannot progress without a person

    @property
    def awaits_status(self) -> bool:
        """Whether the sensor still compares the job with the backend's listing: not acted on yet, or
        finished with its rasters awaited (the backend may lose it before its download)."""
        return self.handled == AWAITED or self.downloads is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "handled": self.handled,
            "downloads": _tries_to_json(self.downloads),
            "resubmits": _tries_to_json(self.resubmits),
            "stuck": self.stuck.to_json() if self.stuck else None,
        }

    @classmethod
    def from_json(cls, document: dict[str, Any] | None) -> JobProgress:
        if not document:  # a ledger written before the sensor kept its findings here
            return cls()
        stuck = document.get("stuck")
        return cls(
            handled=document.get("handled", AWAITED),
            downloads=_tries_from_json(document.get("downloads")),
            resubmits=_tries_from_json(document.get("resubmits")),
            stuck=StuckReason.from_json(stuck) if stuck else None,
        )


def _tries_to_json(tries: RunTries | None) -> list[float] | None:
    return [tries.attempts, tries.requested_at] if tries else None


def _tries_from_json(document: list[float] | None) -> RunTries | None:
    return RunTries(int(document[0]), float(document[1])) if document else None


@dataclass
class JobRecord:
    """One job (or one job about to be created) and the pairs it computes."""

    submission_id: str
    title: str
    process: str
    baseline_days: int
    pairs: list[Pair]
    arguments: dict[str, Any]
    attempt: int = 1
    replaces: str | None = None
    job_id: str | None = None
    status: str = NOT_CREATED
    submitted_at: str = ""
    namespace: str | None = None  # where the process was taken from: the APEx UDP at a pinned commit
    entered_at: str = ""  # when the record was entered (before its create): the job cannot be older
    progress: JobProgress = field(default_factory=JobProgress)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["pairs"] = [
            [reference.isoformat(), secondary.isoformat()] for reference, secondary in self.pairs
        ]
        document["progress"] = self.progress.to_json()
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> JobRecord:
        pairs = [
            (dt.date.fromisoformat(reference), dt.date.fromisoformat(secondary))
            for reference, secondary in document["pairs"]
        ]
        return cls(
            **{**document, "pairs": pairs, "progress": JobProgress.from_json(document.get("progress"))}
        )


@dataclass
class Ledger:
    """All jobs of one partition, oldest first."""

    burst: str
    window: str
    backend_url: str
    jobs: list[JobRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "burst": self.burst,
            "window": self.window,
            "backend_url": self.backend_url,
            "jobs": [job.to_json() for job in self.jobs],
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Ledger:
        return cls(
            burst=document["burst"],
            window=document["window"],
            backend_url=document["backend_url"],
            jobs=[JobRecord.from_json(job) for job in document["jobs"]],
        )

    @classmethod
    def from_bytes(cls, data: bytes, path: str) -> Ledger:
        """Parse a ledger file; anything but a whole, well-formed ledger is a :class:`CorruptLedgerError`."""
        try:
            return cls.from_json(json.loads(data))
        except json.JSONDecodeError as error:
            raise CorruptLedgerError(path, f"not JSON: {error}") from error
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise CorruptLedgerError(path, f"not a ledger: {type(error).__name__}: {error}") from error

    def replaced_job_ids(self) -> set[str]:
        return {job.replaces for job in self.jobs if job.replaces}

    def job(self, job_id: str) -> JobRecord | None:
        return next((job for job in self.jobs if job.job_id == job_id), None)
