"""The ledgers of the output tree, for the sensor: which partition each tracked job belongs to.

A backfill leaves thousands of ledgers whose work is done. The sensor keeps an index of
those (``coherence_job/_done.json``: ledger path -> the ledger's size and modification
time when it was done, and what is stuck in it), lists the ledger tree once per tick and
reads only ledgers that are not in the index or have changed since. A ``coherence_job`` run
that adds a job rewrites its ledger, which changes its signature, so no writer has to know
about the index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coherence_assets.jobs.ledger import CorruptLedgerError, JobRecord, Ledger
from coherence_assets.jobs.ledger_lock import LedgerBusyError, held_ledger
from coherence_assets.partition_keys import partition_key
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
        return partition_key(self.burst, self.window)


@dataclass(frozen=True)
class DonePartition:
    """A partition whose every job was acted on, as its ledger was then.

    ``stuck`` says what cannot progress; ``resolved_jobs`` are its jobs then, which need no more
    attention when the ledger is rewritten (e.g. by the daily schedule, or with a new job).
    """

    partition_key: str
    signature: str
    stuck: tuple[str, ...] = ()
    resolved_jobs: tuple[str, ...] = ()


@dataclass
class LedgerScan:
    """One tick's view of the ledger tree."""

    ledgers: dict[str, Ledger] = field(default_factory=dict)  # path -> ledger, for the partitions not done
    signatures: dict[str, str] = field(default_factory=dict)  # path -> signature, every ledger
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why it could not be read
    total: int = 0

    @property
    def read_count(self) -> int:
        return len(self.ledgers) + len(self.unreadable)


def ledger_paths(store: DataStore) -> dict[str, str]:
    """Every ledger (``<burst>/<window>.json``) with a signature that changes when it is rewritten, in one listing."""
    root = store.coherence_job_root()
    if not store.fs.exists(root):
        return {}
    found = store.fs.find(root, detail=True)
    return {
        path: _signature(info)
        for path, info in sorted(found.items())
        if path.endswith(".json") and path[len(root) :].count("/") == 2
    }


def _signature(info: dict[str, Any]) -> str:
    # local files have an mtime, object stores a LastModified and an ETag (a rewrite within the
    # same second changes only the ETag): all that this filesystem reports, so any rewrite shows
    changed = [
        str(info[key])
        for key in ("mtime", "LastModified", "ETag", "etag", "generation", "created")
        if key in info
    ]
    return ":".join([str(info.get("size")), *changed])


def read_all_ledgers(store: DataStore, report: Callable[[str], object] = log.error) -> list[Ledger]:
    """Every readable ledger; an unreadable one is reported in one line and skipped, so the others go on."""
    return list(scan_ledgers(store, {}, report).ledgers.values())


def scan_ledgers(
    store: DataStore, done: dict[str, DonePartition], report: Callable[[str], object] = log.error
) -> LedgerScan:
    """Read the ledgers that are not done, or that changed since they were done; report unreadable ones."""
    scan = LedgerScan(signatures=ledger_paths(store))
    scan.total = len(scan.signatures)
    for path, signature in scan.signatures.items():
        if path in done and done[path].signature == signature:
            continue
        try:
            scan.ledgers[path] = Ledger.from_bytes(store.read_bytes(path), path)
        except CorruptLedgerError as error:
            scan.unreadable[path] = str(error)
            report(str(error))
        except FileNotFoundError:  # moved aside by a repair since the listing
            continue
    return scan


def read_done_index(store: DataStore) -> dict[str, DonePartition]:
    path = store.coherence_job_index_path()
    if not store.fs.exists(path):
        return {}
    try:
        document = store.read_json(path)
        return {
            ledger: DonePartition(
                entry["partition_key"],
                entry["signature"],
                tuple(entry.get("stuck", ())),
                tuple(entry.get("resolved_jobs", ())),
            )
            for ledger, entry in document.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        # only a cache: rebuilt by reading every ledger once
        log.warning("index %s is unreadable (%s); every ledger is read again", path, error)
        return {}


def write_done_index(store: DataStore, done: dict[str, DonePartition]) -> None:
    store.write_json(
        store.coherence_job_index_path(),
        {
            ledger: {
                "partition_key": entry.partition_key,
                "signature": entry.signature,
                "stuck": list(entry.stuck),
                "resolved_jobs": list(entry.resolved_jobs),
            }
            for ledger, entry in sorted(done.items())
        },
    )


def update_done_index(
    store: DataStore,
    done: dict[str, DonePartition],
    scan: LedgerScan,
    done_partitions: dict[str, list[str]],
) -> None:
    """Forget ledgers that changed or vanished, remember the partitions done this tick; write only on change.

    ``done_partitions`` holds the partitions whose every job the tick resolved, with what is stuck in each.
    """
    updated = {
        path: entry for path, entry in done.items() if path in scan.signatures and path not in scan.ledgers
    }
    for path, ledger in scan.ledgers.items():
        partition = partition_key(ledger.burst, ledger.window)
        if partition in done_partitions:
            updated[path] = DonePartition(
                partition,
                scan.signatures[path],
                tuple(done_partitions[partition]),
                tuple(job.job_id for job in ledger.jobs if job.job_id),
            )
    if updated != done:
        write_done_index(store, updated)


def record_job_status(store: DataStore, burst: str, window: str, job_id: str, status: str) -> bool:
    """Write a status the backend can no longer report (a lost job's) into the ledger, under its lease.

    False when a ``coherence_job`` run holds the ledger: the caller decides again on a later tick.
    """
    try:
        with held_ledger(store, burst, window, holder="openeo_job_sensor", wait_seconds=0):
            path = store.coherence_job_path(burst, window)
            ledger = Ledger.from_bytes(store.read_bytes(path), path)
            for record in ledger.jobs:
                if record.job_id == job_id:
                    record.status = status
            store.write_json(path, ledger.to_json())
    except LedgerBusyError:
        return False
    return True


def tracked_jobs(ledgers: list[Ledger]) -> list[TrackedJob]:
    """Every created job of every ledger, oldest submission first."""
    jobs = [
        TrackedJob(ledger.burst, ledger.window, record, record.job_id in ledger.replaced_job_ids())
        for ledger in ledgers
        for record in ledger.jobs
        if record.job_id is not None
    ]
    return sorted(jobs, key=lambda job: (job.record.submitted_at, job.record.job_id or ""))
