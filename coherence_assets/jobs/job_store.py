"""The jobs' records behind one small interface: a partition's ledger, its lease, and the index of
active, done and stuck partitions.

Every step that reads or changes what is known about a job goes through :class:`JobStore`: the
``coherence_job`` step, the sensor's tick, orphan adoption, ledger repair, downloads and the demo.
How the records lie in the data folder (``coherence_job/<burst>/<window>.json``, the markers of
``jobs.ledger_index``, the leases of ``jobs.ledger_lock``) is known here and in those two modules only.

It plays the part of the ``openeo`` client's ``JobDatabaseInterface`` (``exists``, ``persist``,
``get_by_status``), keyed by partition rather than by row: a partition's jobs are read and written
whole, under its lease, since one run (or the sensor's tick) at a time may change them; and "by
status" is the index of active and stuck partitions, which keeps a tick's cost to the partitions
still at work.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from coherence_assets.asset_names import COHERENCE_JOB
from coherence_assets.jobs import ledger_index
from coherence_assets.jobs.ledger import CorruptLedgerError, Ledger
from coherence_assets.jobs.ledger_index import SENSOR, DonePartition, LedgerScan
from coherence_assets.jobs.ledger_lock import DEFAULT_WAIT_SECONDS, LedgerBusyError, LedgerLease, held_ledger
from coherence_assets.jobs.stuck import StuckReason
from coherence_assets.storage import DataStore

log = logging.getLogger(__name__)


@dataclass
class HeldLedger:
    """A partition's ledger while this process holds its lease: read it, change it, write it back."""

    jobs: JobStore
    burst: str
    window: str
    lease: LedgerLease

    @property
    def store(self) -> DataStore:
        return self.jobs.data

    @property
    def path(self) -> str:
        return self.store.coherence_job_path(self.burst, self.window)

    def exists(self) -> bool:
        """Whether the partition has a ledger file, asked of the store (a cached listing may predate it)."""
        return self.store.read_bytes_if_present(self.path) is not None

    def read(self, backend_url: str) -> Ledger:
        """The ledger, or a new one (see :meth:`JobStore.ledger`)."""
        return self.jobs.ledger(self.burst, self.window, backend_url)

    def read_existing(self) -> Ledger:
        """The ledger as it is now; ``FileNotFoundError`` or ``CorruptLedgerError`` when none is readable."""
        return Ledger.from_bytes(self.store.read_bytes(self.path), self.path)

    def write(self, ledger: Ledger) -> None:
        self.store.write_json(self.path, ledger.to_json())

    def mark_active(self) -> None:
        """Make the partition active before its ledger changes (``ledger_index.mark_active``)."""
        ledger_index.mark_active(self.store, self.burst, self.window)

    def set_aside(self) -> str:
        """Move a corrupt ledger aside (``<window>.json.corrupt-<time>``), never read as a ledger again."""
        aside = self.store.corrupt_ledger_path(
            self.burst, self.window, dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        )
        self.store.fs.mv(self.path, aside)
        return aside

    def renew(self) -> None:
        """Keep the lease before a slow step; ``LedgerLeaseLost`` if another run took it over."""
        self.lease.renew()


@dataclass(frozen=True)
class JobStore:
    """The job records of one data folder (module docstring)."""

    data: DataStore

    def ledger(self, burst: str, window: str, backend_url: str) -> Ledger:
        """The partition's ledger, or a new one; a ledger of another backend is refused, not mixed."""
        path = self.data.coherence_job_path(burst, window)
        raw = self.data.read_bytes_if_present(path)  # asked of the store: a cached listing may predate it
        if raw is None:
            return Ledger(burst=burst, window=window, backend_url=backend_url)
        ledger = Ledger.from_bytes(raw, path)
        if ledger.backend_url != backend_url:
            raise ValueError(
                f"{path} records jobs of {ledger.backend_url}, not of {backend_url}: use a separate "
                "COHERENCE_DATA_DIR per backend, or move the old ledger away to start over"
            )
        return ledger

    def readable_ledger(self, burst: str, window: str) -> Ledger | None:
        """The partition's ledger; ``None`` while it has none, or a corrupt one (the tick reports those)."""
        path = self.data.coherence_job_path(burst, window)
        try:
            return Ledger.from_bytes(self.data.read_bytes(path), path)
        except (FileNotFoundError, CorruptLedgerError):
            return None

    def require_ledger(self, burst: str, window: str, partition: str) -> None:
        """Fail, naming ``coherence_job`` as the asset to materialise first, when there is no ledger."""
        self.data.require_output(self.data.coherence_job_path(burst, window), COHERENCE_JOB, partition)

    def partitions_with_ledger(self) -> set[tuple[str, str]]:
        """Every partition that has a ledger file (one listing of the whole tree)."""
        return {ledger_index.partition_of(self.data, path) for path in ledger_index.ledger_paths(self.data)}

    def all_ledgers(self, report: Callable[[str], object] = log.error) -> list[Ledger]:
        """Every readable ledger; an unreadable one is reported in one line and skipped."""
        return ledger_index.read_all_ledgers(self.data, report)

    @contextmanager
    def hold(
        self, burst: str, window: str, holder: str, wait_seconds: float = DEFAULT_WAIT_SECONDS
    ) -> Iterator[HeldLedger]:
        """Hold the partition's ledger for the block; ``LedgerBusyError`` when another run keeps it."""
        with held_ledger(self.data, burst, window, holder=holder, wait_seconds=wait_seconds) as lease:
            yield HeldLedger(self, burst, window, lease)

    def active(self, report: Callable[[str], object] = log.error) -> LedgerScan:
        """The active partitions' ledgers, for a tick (``ledger_index.scan_ledgers``)."""
        return ledger_index.scan_ledgers(self.data, report)

    def stuck(self) -> dict[str, DonePartition]:
        """The done partitions with something stuck, by ledger path."""
        return ledger_index.read_stuck_index(self.data)

    def done(self) -> dict[str, DonePartition]:
        """Every done partition by ledger path, for reports; never for a tick."""
        return ledger_index.read_done_index(self.data)

    def retire(self, scan: LedgerScan, done_partitions: dict[str, list[StuckReason]]) -> None:
        """Record the partitions done this tick (one a run holds or marked again meanwhile stays active)."""
        ledger_index.update_done_index(self.data, scan, done_partitions)

    def clear_stuck(self, entry: DonePartition) -> bool:
        """A stuck partition recovered: record it as done with nothing stuck (False: decide next tick)."""
        return ledger_index.clear_stuck(self.data, entry)

    def write_progress(self, changed: Ledger) -> bool:
        """Write what a tick decided about some of the partition's jobs (their status and ``JobProgress``) into
        the ledger, under its lease: records are matched by job id, so the others, as a run may have changed
        or entered them since, stay as they are.

        False when a run holds the ledger: the caller decides again on a later tick. A ledger gone or
        unreadable since the tick read it (set aside by a repair) takes nothing: the tick reports it.
        """
        decided = {record.job_id: record for record in changed.jobs if record.job_id}
        try:
            with self.hold(changed.burst, changed.window, SENSOR, wait_seconds=0) as held:
                try:
                    ledger = held.read_existing()
                except (FileNotFoundError, CorruptLedgerError):
                    return True
                for record in ledger.jobs:
                    if record.job_id in decided:
                        record.status = decided[record.job_id].status
                        record.progress = decided[record.job_id].progress
                held.write(ledger)
        except LedgerBusyError:
            return False
        return True
