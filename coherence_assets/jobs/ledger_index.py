"""The ledgers of the output tree, for the sensor: which partitions are active, and what done ones left.

Steps reach this through ``jobs.job_store.JobStore``; this module is how the index is kept.

A backfill leaves thousands of ledgers whose work is done, and a tick must cost what the active
partitions cost however many are done. So the tree keeps an index of the *active* partitions, one
small marker each (``coherence_job/_active/<burst>/<window>.json``). A ``coherence_job`` run marks
its partition (:func:`mark_active`) under the ledger's lease before it writes the ledger; a tick
lists ``_active/`` and reads only those markers and ledgers; when every job of a partition was
acted on, the sensor *retires* it: under the lease, and only if its marker is unchanged since the
tick read it (a run that marked it meanwhile wins), it writes what it resolved there into
``coherence_job/_done/<burst>/<window>.json`` and removes the marker. A done partition with something
stuck in it keeps its record in ``coherence_job/_stuck/`` instead, so that a tick lists only those to
see whether they recovered (their pairs all got a valid raster, whoever brought them), and
:func:`clear_stuck` moves the record into ``_done/``. A partition marked again after it was done
carries its record in its marker, so that its resolved jobs stay resolved and what is stuck stays
stuck. Files opened, stat'ed and parsed per tick follow the active and stuck partitions; done ones
cost nothing. Every step is one file written or removed, so it holds on an object store and across
processes and restarts.

The first tick on a tree without the index (``coherence_job/_index.json``) lists every ledger
once and takes each as active, except those with a done record and those that the index of
earlier versions (``_done.json``) recorded as done and unchanged since; it writes the index only
when the tick completes, so a tick that fails changes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from coherence_assets.jobs.ledger import CorruptLedgerError, JobRecord, Ledger
from coherence_assets.jobs.ledger_lock import LedgerBusyError, held_ledger
from coherence_assets.jobs.stuck import StuckReason
from coherence_assets.partition_keys import partition_key, split_partition_key
from coherence_assets.storage import DataStore

log = logging.getLogger(__name__)

SENSOR = "openeo_job_sensor"  # the lease holder named to a run that waits while a tick writes


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
    attention when the partition is active again (e.g. by the daily schedule, or with a new job).
    """

    partition_key: str
    stuck: tuple[StuckReason, ...] = ()
    resolved_jobs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "partition_key": self.partition_key,
            "stuck": [reason.to_json() for reason in self.stuck],
            "resolved_jobs": list(self.resolved_jobs),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> DonePartition:
        return cls(
            document["partition_key"],
            tuple(StuckReason.from_json(reason) for reason in document.get("stuck", ())),
            tuple(document.get("resolved_jobs", ())),
        )


UNMARKED = ""  # the signature of a marker that does not exist


@dataclass
class LedgerScan:
    """One tick's view of the active partitions."""

    # ledger path -> ledger, for the active partitions
    ledgers: dict[str, Ledger] = field(default_factory=dict)
    # ledger path -> its marker's signature when listed (UNMARKED: found active by the first scan)
    markers: dict[str, str] = field(default_factory=dict)
    # active partitions that were done before, with what they left then
    resumed: list[tuple[DonePartition, Ledger]] = field(default_factory=list)
    # ledger path -> why it could not be read
    unreadable: dict[str, str] = field(default_factory=dict)
    total: int = 0  # active partitions
    # without an index yet: how many ledgers the tree held (the first scan lists them all)
    first: int | None = None
    # ledger path -> the partition the index of earlier versions recorded as done
    legacy_done: dict[str, DonePartition] = field(default_factory=dict)

    @property
    def read_count(self) -> int:
        return len(self.ledgers) + len(self.unreadable)

    @property
    def empty_tree(self) -> bool:
        """No ledger at all: nothing was ever submitted here."""
        return self.first == 0 and not self.markers


def ledger_paths(store: DataStore) -> dict[str, str]:
    """Every ledger (``<burst>/<window>.json``) with a signature that changes when it is rewritten, in one
    listing (the index folders' files lie one level deeper)."""
    root = store.coherence_job_root()
    return {
        path: _signature(info)
        for path, info in sorted(_find_now(store, root).items())
        if path.endswith(".json") and path[len(root) :].count("/") == 2
    }


def _find_now(store: DataStore, root: str) -> dict[str, dict[str, Any]]:
    """Every file under ``root`` as the store has it now: runs in other processes write these, and s3fs
    would answer later stats from a listing it cached."""
    store.fs.invalidate_cache(root)
    try:
        return store.fs.find(root, detail=True)
    except FileNotFoundError:
        return {}


def _exists_now(store: DataStore, path: str) -> bool:
    store.fs.invalidate_cache(path)
    return store.fs.exists(path)


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
    """Every readable ledger (one listing of the whole tree); an unreadable one is reported in one line and
    skipped, so the others go on."""
    ledgers = []
    for path in ledger_paths(store):
        ledger = _read_ledger(store, path, report)
        if isinstance(ledger, Ledger):
            ledgers.append(ledger)
    return ledgers


def _read_ledger(store: DataStore, path: str, report: Callable[[str], object]) -> Ledger | str | None:
    """The ledger, or why it is unreadable (reported), or ``None`` when it is gone (moved aside by a repair)."""
    try:
        return Ledger.from_bytes(store.read_bytes(path), path)
    except CorruptLedgerError as error:
        report(str(error))
        return str(error)
    except FileNotFoundError:
        return None


def _partition_files(store: DataStore, root: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The ``<burst>/<window>.json`` files under an index folder, by (burst, window), in one listing."""
    files = {}
    for path, info in _find_now(store, root).items():
        burst, _, name = path[len(root) + 1 :].partition("/")
        if name.endswith(".json") and "/" not in name:
            files[(burst, name.removesuffix(".json"))] = info
    return files


def scan_ledgers(store: DataStore, report: Callable[[str], object] = log.error) -> LedgerScan:
    """Read the active partitions' markers and ledgers (module docstring); report unreadable ledgers."""
    scan = LedgerScan()
    for (burst, window), info in sorted(_partition_files(store, store.coherence_job_active_root()).items()):
        scan.markers[store.coherence_job_path(burst, window)] = _marker_signature_of(info)
    if not _exists_now(store, store.coherence_job_index_path()):
        legacy = _read_legacy_index(store)
        done = {
            store.coherence_job_path(*partition)
            for root in (store.coherence_job_done_root(), store.coherence_job_stuck_root())
            for partition in _partition_files(store, root)
        }
        listed = ledger_paths(store)
        scan.first = len(listed)
        for path, signature in listed.items():
            if path in scan.markers or path in done:
                continue
            if path in legacy:  # done by the old index; active again if rewritten since (another signature)
                scan.legacy_done[path] = legacy[path][1]
                if legacy[path][0] == signature:
                    continue
            scan.markers[path] = UNMARKED
    scan.total = len(scan.markers)
    for path, signature in scan.markers.items():
        ledger = _read_ledger(store, path, report)
        if isinstance(ledger, str):
            scan.unreadable[path] = ledger
        elif ledger is not None:
            scan.ledgers[path] = ledger
            done_before = scan.legacy_done.get(path) if signature == UNMARKED else _done_before(store, ledger)
            if done_before is not None:
                scan.resumed.append((done_before, ledger))
    return scan


def _done_before(store: DataStore, ledger: Ledger) -> DonePartition | None:
    """What the partition's marker carries from when it was done, if it was."""
    path = store.coherence_job_active_path(ledger.burst, ledger.window)
    try:
        done = store.read_json(path).get("done")
        return DonePartition.from_json(done) if done else None
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("marker %s is unreadable (%s); its partition is taken as new", path, error)
        return None


def _read_legacy_index(store: DataStore) -> dict[str, tuple[str, DonePartition]]:
    """The index of done partitions of earlier versions: ledger path -> (its signature then, the partition)."""
    path = store.coherence_job_legacy_index_path()
    try:
        return {
            ledger: (entry["signature"], DonePartition.from_json(entry))
            for ledger, entry in store.read_json(path).items()
        }
    except FileNotFoundError:
        return {}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        log.warning("index %s is unreadable (%s); every ledger is read again", path, error)
        return {}


def read_done_index(store: DataStore) -> dict[str, DonePartition]:
    """Every done partition by ledger path: one read per done partition, for reports, never for a tick."""
    return {
        **_read_records(store, store.coherence_job_done_root(), store.coherence_job_done_path),
        **read_stuck_index(store),
    }


def read_stuck_index(store: DataStore) -> dict[str, DonePartition]:
    """The done partitions with something stuck, by ledger path: one listing, and one read per stuck partition."""
    return _read_records(store, store.coherence_job_stuck_root(), store.coherence_job_stuck_path)


def _read_records(
    store: DataStore, root: str, record_path: Callable[[str, str], str]
) -> dict[str, DonePartition]:
    records = {}
    for burst, window in sorted(_partition_files(store, root)):
        try:
            entry = DonePartition.from_json(store.read_json(record_path(burst, window)))
        except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
            continue  # marked active again since the listing, or unreadable: nothing to report
        records[store.coherence_job_path(burst, window)] = entry
    return records


def _record_path(store: DataStore, entry: DonePartition) -> str:
    """Where a done partition's record is kept: apart while something in it is stuck."""
    burst, window = split_partition_key(entry.partition_key)
    if entry.stuck:
        return store.coherence_job_stuck_path(burst, window)
    return store.coherence_job_done_path(burst, window)


def clear_stuck(store: DataStore, entry: DonePartition) -> bool:
    """Record a stuck partition as done with nothing stuck, and its ledger's jobs stuck no more, under its
    lease, for it recovered.

    False when a run holds the ledger or marked the partition active again (its marker carries the
    record on, and the tick judges the ledger's stuck jobs): a later tick decides again.
    """
    burst, window = split_partition_key(entry.partition_key)
    stuck_path = store.coherence_job_stuck_path(burst, window)
    try:
        with held_ledger(store, burst, window, holder=SENSOR, wait_seconds=0):
            if not _exists_now(store, stuck_path):
                return False
            _clear_stuck_jobs(store, store.coherence_job_path(burst, window))
            healed = dataclasses.replace(entry, stuck=())
            store.write_json(_record_path(store, healed), healed.to_json())
            store.fs.rm(stuck_path)
    except LedgerBusyError:
        return False
    return True


def _clear_stuck_jobs(store: DataStore, path: str) -> None:
    """Take the stuck reasons off the ledger's jobs (held by the caller); an unreadable ledger has none."""
    ledger = _read_ledger(store, path, log.warning)
    if not isinstance(ledger, Ledger):
        return
    stuck = [record for record in ledger.jobs if record.progress.stuck is not None]
    for record in stuck:
        record.progress.stuck = None
    if stuck:
        store.write_json(path, ledger.to_json())


def mark_active(store: DataStore, burst: str, window: str) -> None:
    """Put the partition in the index of active partitions; call it holding the ledger's lease, before
    writing the ledger.

    A new marker every time (its nonce changes its signature), so that a tick that read the partition
    before does not retire it. What the partition left when it was done moves into the marker.
    """
    active_path = store.coherence_job_active_path(burst, window)
    records = {
        path: record
        for path in (
            store.coherence_job_done_path(burst, window),
            store.coherence_job_stuck_path(burst, window),
        )
        if (record := _json_or_none(store, path)) is not None
    }
    done = next(iter(records.values()), None) or (_json_or_none(store, active_path) or {}).get("done")
    store.write_json(active_path, {"marked": uuid.uuid4().hex, "done": done})
    for path in records:
        store.fs.rm(path)


def _json_or_none(store: DataStore, path: str) -> Any:
    try:
        return store.read_json(path)
    except (FileNotFoundError, ValueError):
        return None


def update_done_index(
    store: DataStore, scan: LedgerScan, done_partitions: dict[str, list[StuckReason]]
) -> None:
    """Retire the partitions done this tick, mark the ones the first scan found active. A done partition
    that cannot be retired now (a run holds or re-marked it) stays active: its ledger says what was
    resolved, and a later tick retires it.

    ``done_partitions`` holds the partitions whose every job the tick resolved, with what is stuck in each.
    """
    if scan.first is not None:  # the old index's done partitions get their records; marked ones carry them
        for entry in scan.legacy_done.values():
            store.write_json(_record_path(store, entry), entry.to_json())
    for path, signature in scan.markers.items():
        burst, window = partition_of(store, path)
        ledger = scan.ledgers.get(path)
        if ledger is not None and partition_key(burst, window) in done_partitions:
            entry = DonePartition(
                partition_key(burst, window),
                tuple(done_partitions[partition_key(burst, window)]),
                tuple(job.job_id for job in ledger.jobs if job.job_id),
            )
            _retire(store, burst, window, entry, signature)
        elif signature == UNMARKED:
            if ledger is not None or path in scan.unreadable:
                mark_active(store, burst, window)
        elif ledger is None and path not in scan.unreadable:
            _forget_marker_without_ledger(store, burst, window, signature)
    if scan.first is not None:
        store.write_json(store.coherence_job_index_path(), {"active": "_active/", "done": "_done/"})
        if _exists_now(store, store.coherence_job_legacy_index_path()):
            store.fs.rm(store.coherence_job_legacy_index_path())


def partition_of(store: DataStore, ledger_path: str) -> tuple[str, str]:
    """The ``(burst, window)`` of a ledger path that :func:`ledger_paths` listed."""
    burst, _, name = ledger_path[len(store.coherence_job_root()) + 1 :].partition("/")
    return burst, name.removesuffix(".json")


def _marker_signature_of(info: dict[str, Any]) -> str:
    # a marker is rewritten through a new file: locally its inode changes even within one mtime tick
    return f"{_signature(info)}:{info.get('ino', '')}"


def _marker_signature(store: DataStore, burst: str, window: str) -> str:
    path = store.coherence_job_active_path(burst, window)
    store.fs.invalidate_cache(path)
    try:
        return _marker_signature_of(store.fs.info(path))
    except FileNotFoundError:
        return UNMARKED


def _retire(store: DataStore, burst: str, window: str, entry: DonePartition, marker_signature: str) -> None:
    """Write the done record and remove the marker, if no run holds the ledger or marked the partition since
    the tick read it (else it stays active)."""
    with suppress(LedgerBusyError), held_ledger(store, burst, window, holder=SENSOR, wait_seconds=0):
        if _marker_signature(store, burst, window) == marker_signature:
            store.write_json(_record_path(store, entry), entry.to_json())
            if marker_signature != UNMARKED:
                store.fs.rm(store.coherence_job_active_path(burst, window))


def _forget_marker_without_ledger(store: DataStore, burst: str, window: str, signature: str) -> None:
    """A marker whose run died before it wrote its first ledger: nothing to wait for."""
    with (
        suppress(LedgerBusyError),
        held_ledger(store, burst, window, holder=SENSOR, wait_seconds=0),
    ):
        if _marker_signature(store, burst, window) == signature and not _exists_now(
            store, store.coherence_job_path(burst, window)
        ):
            store.fs.rm(store.coherence_job_active_path(burst, window))


def tracked_jobs(ledgers: list[Ledger]) -> list[TrackedJob]:
    """Every created job of every ledger, oldest submission first."""
    jobs = [
        TrackedJob(ledger.burst, ledger.window, record, record.job_id in ledger.replaced_job_ids())
        for ledger in ledgers
        for record in ledger.jobs
        if record.job_id is not None
    ]
    return sorted(jobs, key=lambda job: (job.record.submitted_at, job.record.job_id or ""))
