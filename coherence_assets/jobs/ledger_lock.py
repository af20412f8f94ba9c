"""One writer per ledger at a time, on a local disk and on an object store alike.

Two ``coherence_job`` runs of one partition that both read the ledger, plan and create jobs
would both pay for the same pairs. So whoever reads a ledger to change it first takes its
*lease*: a small file ``coherence_job/_leases/<burst>/<window>.lease-<generation>``, made by
exclusive create. The holder is the run whose lease has the highest generation; a new lease is
always one generation above the highest one seen, so of two runs that saw the same lease only one
can create the next (the other gets ``FileExistsError`` and looks again).

Generations only grow, so the newest lease file stays when released (it holds the count; older
ones are removed): one small file per partition, kept in ``_leases/`` apart from the ledgers.
Removing it would let a run that looks next start again at generation 1 while another, which saw
the old one, creates the one after it: two holders. Lease files that versions before ``_leases/``
left beside the ledgers are removed when a partition's first lease here is taken.

Why not ``filelock``: it locks local files only, while ``COHERENCE_DATA_DIR`` may be ``s3://``.
Exclusive create is the one atomic primitive both offer: ``O_EXCL`` on a local disk,
``If-None-Match: *`` with s3fs >= 2025.7 (S3, MinIO, R2). With an older s3fs it degrades to a
plain write (s3fs#973); then the Dagster instance's limit of one ``coherence_job`` run per
partition is the remaining guard.

A lease ends when its holder releases it (the file says so), when it expires (a holder renews
it before each slow step; a run killed on another machine blocks others for at most
``ttl_seconds``), or at once when its holder ran on this machine and its process is gone.

Expiry is judged on the *store's* clock: the lease object's modification time (S3 and local
disks both stamp it) against a fresh object's stamp, never the holder's own idea of the time,
since hosts of one deployment disagree. Nothing here trusts a cached listing or ETag: every
look asks the store (s3fs keeps a per-process listing cache that other processes' writes make
stale). A waiting run waits ``wait_seconds`` on its own monotonic clock, whatever the store answers.

A run that finds a lease expired and a holder that renews it at that moment must not both go
on. On a store with ETags (S3), both write the lease object only *if it is still the version
they saw* (``If-Match``): the taker first marks the expired lease as taken over, the holder
renews; whichever write lands second fails, and the holder stops (``LedgerLeaseLost``) or the
taker looks again. A local disk has no such guard; there a holder on the same machine is known
dead or alive by its process id, and only hosts sharing a network disk rely on the ttl alone.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields

from coherence_assets.storage import DataStore, ObjectChanged

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 300.0
DEFAULT_WAIT_SECONDS = 120.0
POLL_SECONDS = 0.5


class LedgerBusyError(RuntimeError):
    """Another live run holds the ledger: one line naming it, since when, and what to do."""


class LedgerLeaseLost(RuntimeError):
    """The lease expired and another run took the ledger over: stop before changing anything more."""


@dataclass(frozen=True)
class LeaseContent:
    """What a lease file says. ``acquired_at`` is the holder's clock, shown to people, never compared."""

    holder: str
    host: str
    pid: int
    acquired_at: str
    ttl_seconds: float
    released: bool = False
    # new at every write: an object's ETag is its content's digest, so a renewal must change the bytes
    written: str = ""

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> LeaseContent:
        """Parse a lease file; ``ValueError`` for one still being written (or of another shape)."""
        document = json.loads(data)
        try:
            return cls(
                **{field.name: document[field.name] for field in fields(cls) if field.name in document}
            )
        except TypeError as error:
            raise ValueError(f"not a lease: {error}") from error


@dataclass(frozen=True)
class ObservedLease:
    """The newest lease as the store has it now: its content and when the store last wrote it."""

    generation: int
    content: LeaseContent
    modified: float  # the store's clock
    etag: str | None = None  # of the version judged, for a conditional takeover

    def is_live(self, store_now: Callable[[], float]) -> bool:
        """Not released, renewed within its ttl on the store's clock, and not of a dead process here."""
        if self.content.released:
            return False
        if self.content.host == socket.gethostname() and not _process_exists(self.content.pid):
            return False
        return store_now() - self.modified < self.content.ttl_seconds


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


@dataclass
class LedgerLease:
    """The lease of one partition's ledger, held by this process."""

    store: DataStore
    burst: str
    window: str
    generation: int
    content: LeaseContent
    etag: str | None = None  # of this holder's last write (None on a local disk)

    @property
    def path(self) -> str:
        return lease_path(self.store, self.burst, self.window, self.generation)

    def renew(self) -> None:
        """Extend the lease before a slow step (rewriting it restamps it on the store's clock); fail if
        another run has taken the ledger over meanwhile."""
        newest = max(_generations(self.store, self.burst, self.window), default=self.generation)
        try:
            if newest != self.generation:
                raise ObjectChanged(self.path)
            self.etag = self.store.replace_if_unchanged(self.path, _stamped(self.content), self.etag)
        except ObjectChanged:
            raise LedgerLeaseLost(
                f"the lease on the ledger of {self.burst} {self.window} expired and another run took it "
                "over; this run stops before creating more jobs: retry it"
            ) from None

    def release(self) -> None:
        """Say the lease is free; nothing to say if another run took it over meanwhile."""
        released = LeaseContent(**{**asdict(self.content), "released": True})
        with suppress(ObjectChanged):
            self.store.replace_if_unchanged(self.path, _stamped(released), self.etag)


def _stamped(content: LeaseContent) -> bytes:
    """The lease file's bytes for one write: unique, so that its ETag names this write alone."""
    return LeaseContent(**{**asdict(content), "written": uuid.uuid4().hex}).to_bytes()


def lease_path(store: DataStore, burst: str, window: str, generation: int) -> str:
    return f"{store.coherence_job_lease_prefix(burst, window)}{generation:09d}"


def _generations(store: DataStore, burst: str, window: str) -> list[int]:
    """The lease generations present now, as the store lists them (never a cached listing)."""
    directory, name_prefix = store.coherence_job_lease_prefix(burst, window).rsplit("/", 1)
    return sorted(
        int(name[len(name_prefix) :])
        for name in store.list_names(directory)
        if name.startswith(name_prefix) and name[len(name_prefix) :].isdigit()
    )


def _observe(store: DataStore, burst: str, window: str, generation: int, ttl_seconds: float) -> ObservedLease:
    """The lease of ``generation``; one still being written counts as live until it is ``ttl_seconds`` old."""
    path = lease_path(store, burst, window, generation)
    gone = ObservedLease(generation, LeaseContent("", "", 0, "", 0.0, released=True), 0.0)
    data = store.read_bytes_if_present(path)
    if data is None:  # cleaned up by a newer holder between listing and reading
        return gone
    try:
        content = LeaseContent.from_bytes(data)
    except ValueError:
        content = LeaseContent("a run writing its lease", "", 0, "", ttl_seconds)
    try:
        modified, etag = store.version_now(path)
    except FileNotFoundError:
        return gone
    return ObservedLease(generation, content, modified, etag)


def _take_over(store: DataStore, lease: ObservedLease, path: str, holder: str) -> bool:
    """Mark an expired lease taken over, only if it is still the version judged (``If-Match``): false when
    its holder renewed it meanwhile (or another run took it first). Without ETags there is nothing to mark."""
    if lease.etag is None:
        return True
    taken = LeaseContent(**{**asdict(lease.content), "released": True, "holder": f"{holder} (took over)"})
    try:
        store.replace_if_unchanged(path, _stamped(taken), lease.etag)
    except (ObjectChanged, FileNotFoundError):
        return False
    return True


class _StoreClock:
    """The store's time, measured once (one probe object) and then carried on by this host's monotonic
    clock: only the offset between the two matters, not whether this host's wall clock is right."""

    def __init__(self, store: DataStore, near: str) -> None:
        self.store, self.near = store, near
        self._offset: float | None = None

    def __call__(self) -> float:
        if self._offset is None:
            self._offset = self.store.store_time(self.near) - time.monotonic()
        return time.monotonic() + self._offset


def acquire_lease(
    store: DataStore,
    burst: str,
    window: str,
    holder: str,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> LedgerLease:
    """Take the ledger's lease, waiting up to ``wait_seconds`` for a live holder to finish.

    ``LedgerBusyError`` once ``wait_seconds`` have passed on this host's monotonic clock, however
    the store answers meanwhile (a run that loses every race gives up in time too).
    """
    deadline = time.monotonic() + wait_seconds
    store_now = _StoreClock(store, store.coherence_job_lease_prefix(burst, window))
    waited_for: LeaseContent | None = None
    while True:
        generations = _generations(store, burst, window)
        newest = generations[-1] if generations else 0
        current = _observe(store, burst, window, newest, ttl_seconds) if generations else None
        if current is not None and current.is_live(store_now):
            if time.monotonic() >= deadline:
                raise LedgerBusyError(
                    f"another coherence_job run ({current.content.holder}) holds the ledger of {burst} {window} "
                    f"since {current.content.acquired_at}; retry when it has ended"
                )
            if waited_for is None:
                log.info(
                    "waiting for %s to release the ledger of %s %s", current.content.holder, burst, window
                )
            waited_for = current.content
            sleep(POLL_SECONDS)
            continue
        expired = current is not None and not current.content.released
        if expired and not _take_over(store, current, lease_path(store, burst, window, newest), holder):
            # renewed at this very moment, or taken by another run: look again, within the deadline
            if time.monotonic() >= deadline:
                raise LedgerBusyError(
                    f"another coherence_job run took or renewed the lease of {burst} {window} at the same "
                    "moment; retry when it has ended"
                )
            continue
        content = LeaseContent(
            holder=holder,
            host=socket.gethostname(),
            pid=os.getpid(),
            acquired_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            ttl_seconds=ttl_seconds,
        )
        try:
            etag = store.create_exclusively(lease_path(store, burst, window, newest + 1), _stamped(content))
        except FileExistsError:
            # another run took this generation first: look again (and wait for it), within the deadline
            if time.monotonic() >= deadline:
                raise LedgerBusyError(
                    f"another coherence_job run took the ledger of {burst} {window} at the same moment; "
                    "retry when it has ended"
                ) from None
            continue
        lease = LedgerLease(store, burst, window, newest + 1, content, etag)
        if max(_generations(store, burst, window)) > lease.generation:
            # another run moved on between our listing and our create: ours is not the newest
            lease.release()
            continue
        if expired:
            log.warning(
                "took over the ledger of %s %s from %s, whose lease had ended without release",
                burst,
                window,
                current.content.holder,
            )
        for old in generations:  # only the newest lease matters; a lower one never outranks it
            with suppress(FileNotFoundError):
                store.fs.rm(lease_path(store, burst, window, old))
        if not generations:
            _remove_legacy_leases(store, burst, window)
        return lease


def _remove_legacy_leases(store: DataStore, burst: str, window: str) -> None:
    """Remove the lease files an older version left beside the partition's ledger (one listing, once)."""
    directory, name_prefix = store.legacy_lease_prefix(burst, window).rsplit("/", 1)
    for name in store.list_names(directory):
        if name.startswith(name_prefix):
            with suppress(FileNotFoundError):
                store.fs.rm(f"{directory}/{name}")


@contextmanager
def held_ledger(
    store: DataStore,
    burst: str,
    window: str,
    holder: str | None = None,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
) -> Iterator[LedgerLease]:
    """Hold the ledger of ``burst`` x ``window`` for the block; ``LedgerBusyError`` when it stays taken."""
    lease = acquire_lease(
        store, burst, window, holder or f"pid {os.getpid()} {uuid.uuid4().hex[:6]}", wait_seconds, ttl_seconds
    )
    try:
        yield lease
    finally:
        lease.release()
