"""One writer per ledger at a time, on a local disk and on an object store alike.

Two ``coherence_job`` runs of one partition that both read the ledger, plan and create jobs
would both pay for the same pairs. So whoever reads a ledger to change it first takes its
*lease*: a small file next to the ledger, ``<window>.lease-<generation>``, made by exclusive
create. The holder is the run whose lease has the highest generation; a new lease is always
one generation above the highest one seen, so of two runs that saw the same lease only one
can create the next (the other gets ``FileExistsError`` and looks again). Nothing else is
needed from the filesystem: no rename, no conditional delete, which object stores lack.

Why not ``filelock``: it locks local files only, while ``COHERENCE_DATA_DIR`` may be ``s3://``.
Exclusive create (``fs.open(path, "xb")``) is the one atomic primitive fsspec offers on both:
``O_EXCL`` on a local disk, ``If-None-Match: *`` with s3fs >= 2025.7 (S3, MinIO, R2). With an
older s3fs ``"xb"`` degrades to ``"wb"`` (s3fs#973); then the Dagster instance's limit of one
``coherence_job`` run per partition is the remaining guard.

A lease ends when its holder releases it (the file says so), when it expires (a holder renews
it before each slow step; a run killed on another machine blocks others for at most
``ttl_seconds``), or at once when its holder ran on this machine and its process is gone.
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
from dataclasses import asdict, dataclass

from coherence_assets.storage import DataStore

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
    holder: str
    host: str
    pid: int
    acquired_at: str
    expires_at: float
    released: bool = False

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    def is_live(self, now: float) -> bool:
        if self.released or now >= self.expires_at:
            return False
        return self.host != socket.gethostname() or _process_exists(self.pid)


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
    ttl_seconds: float
    clock: Callable[[], float]

    @property
    def path(self) -> str:
        return lease_path(self.store, self.burst, self.window, self.generation)

    def renew(self) -> None:
        """Extend the lease before a slow step; fail if another run has taken the ledger over meanwhile."""
        newest = max(_generations(self.store, self.burst, self.window), default=self.generation)
        if newest != self.generation:
            raise LedgerLeaseLost(
                f"the lease on the ledger of {self.burst} {self.window} expired and another run took it "
                "over; this run stops before creating more jobs: retry it"
            )
        self.content = LeaseContent(**{**asdict(self.content), "expires_at": self.clock() + self.ttl_seconds})
        self.store.fs.pipe_file(self.path, self.content.to_bytes())

    def release(self) -> None:
        self.store.fs.pipe_file(
            self.path, LeaseContent(**{**asdict(self.content), "released": True}).to_bytes()
        )


def lease_path(store: DataStore, burst: str, window: str, generation: int) -> str:
    return f"{store.coherence_job_lease_prefix(burst, window)}{generation:09d}"


def _generations(store: DataStore, burst: str, window: str) -> list[int]:
    prefix = store.coherence_job_lease_prefix(burst, window)
    directory = prefix.rsplit("/", 1)[0]
    if not store.fs.exists(directory):
        return []
    name_prefix = prefix.rsplit("/", 1)[1]
    return sorted(
        int(name[len(name_prefix) :])
        for name in (path.rsplit("/", 1)[1] for path in store.fs.ls(directory, detail=False))
        if name.startswith(name_prefix) and name[len(name_prefix) :].isdigit()
    )


def _read_lease(store: DataStore, path: str, ttl_seconds: float) -> LeaseContent:
    """The lease's content; a lease still being written counts as live until it is ``ttl_seconds`` old."""
    try:
        return LeaseContent(**json.loads(store.read_bytes(path)))
    except (ValueError, TypeError):
        modified = store.fs.modified(path).timestamp()
        return LeaseContent("a run writing its lease", "", 0, "", modified + ttl_seconds)
    except FileNotFoundError:  # cleaned up by a newer holder between listing and reading
        return LeaseContent("", "", 0, "", 0.0, released=True)


def acquire_lease(
    store: DataStore,
    burst: str,
    window: str,
    holder: str,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    ttl_seconds: float = DEFAULT_TTL_SECONDS,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> LedgerLease:
    """Take the ledger's lease, waiting up to ``wait_seconds`` for a live holder to finish."""
    deadline = clock() + wait_seconds
    waited = False
    while True:
        generations = _generations(store, burst, window)
        newest = generations[-1] if generations else 0
        current = (
            _read_lease(store, lease_path(store, burst, window, newest), ttl_seconds) if generations else None
        )
        if current is not None and current.is_live(clock()):
            if clock() >= deadline:
                raise LedgerBusyError(
                    f"another coherence_job run ({current.holder}) holds the ledger of {burst} {window} "
                    f"since {current.acquired_at}; retry when it has ended"
                )
            if not waited:
                log.info("waiting for %s to release the ledger of %s %s", current.holder, burst, window)
                waited = True
            sleep(POLL_SECONDS)
            continue
        content = LeaseContent(
            holder=holder,
            host=socket.gethostname(),
            pid=os.getpid(),
            acquired_at=dt.datetime.fromtimestamp(clock(), dt.UTC).isoformat(timespec="seconds"),
            expires_at=clock() + ttl_seconds,
        )
        try:
            store.create_exclusively(lease_path(store, burst, window, newest + 1), content.to_bytes())
        except FileExistsError:
            continue  # another run took this generation first: look again
        lease = LedgerLease(store, burst, window, newest + 1, content, ttl_seconds, clock)
        if max(_generations(store, burst, window)) > lease.generation:
            # our listing was old: we re-created a generation that a newer holder had already cleaned up
            lease.release()
            continue
        if current is not None and not current.released:
            log.warning(
                "took over the ledger of %s %s from %s, whose lease had ended without release",
                burst,
                window,
                current.holder,
            )
        for old in generations:  # only the newest lease matters; a lower one never outranks it
            with suppress(FileNotFoundError):
                store.fs.rm(lease_path(store, burst, window, old))
        return lease


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
