"""Where every asset lives under ``COHERENCE_DATA_DIR`` (README, "Where outputs land"), through fsspec.

All paths are built here and only here, so a local folder and an object store
(``s3://bucket/prefix``) work the same way.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.implementations.local import LocalFileSystem

from coherence_assets.asset_names import (
    BURST_CATALOGUE,
    COHERENCE_AOI_SERIES,
    COHERENCE_CUBE,
    COHERENCE_DECAY,
    COHERENCE_JOB,
    COHERENCE_RASTERS,
    INSAR_PAIRS,
)

# botocore's errors for a store that does not answer (s3fs raises them once botocore's own retries
# are spent), by name: botocore is imported only with the s3 extra
# botocore's (named, not imported: it comes with the optional s3 extra); urllib3 has classes of the same
# names, raised by an openEO backend or GitHub that does not answer, which are not the store's fault
UNREACHABLE_STORE_ERRORS = frozenset(
    {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}
)


class DataFolderUnusable(OSError):
    """The data folder's bucket is missing or its object store does not answer: one line, what to do."""


class ObjectChanged(Exception):
    """A conditional write found that another writer had changed the object since it was read."""


class DataStore:
    """The output tree: a filesystem plus a root path, and the path of each asset's partition."""

    def __init__(self, root: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(root)
        self.root = self.root.rstrip("/")
        self.url = root

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def burst_catalogue_path(self) -> str:
        return self.path(f"{BURST_CATALOGUE}.parquet")

    def insar_pairs_path(self, burst: str, window: str) -> str:
        return self.path(INSAR_PAIRS, burst, f"{window}.parquet")

    def coherence_job_path(self, burst: str, window: str) -> str:
        return self.path(COHERENCE_JOB, burst, f"{window}.json")

    def coherence_job_lease_prefix(self, burst: str, window: str) -> str:
        """Lease files of the ledger's lock (``_leases/<burst>/<window>.lease-<generation>``, see
        jobs.ledger_lock): apart from the ledgers, where the one a released lease leaves is no litter."""
        return self.path(COHERENCE_JOB, "_leases", burst, f"{window}.lease-")

    def legacy_lease_prefix(self, burst: str, window: str) -> str:
        """Where versions before ``_leases/`` kept a ledger's lease files: beside the ledger (removed)."""
        return self.path(COHERENCE_JOB, burst, f"{window}.lease-")

    def corrupt_ledger_path(self, burst: str, window: str, timestamp: str) -> str:
        """Where a corrupt ledger is kept after it was rebuilt: next to it, never read as a ledger."""
        return self.path(COHERENCE_JOB, burst, f"{window}.json.corrupt-{timestamp}")

    def coherence_job_root(self) -> str:
        return self.path(COHERENCE_JOB)

    def coherence_job_index_path(self) -> str:
        """Present once the index of active partitions is kept (see jobs.ledger_index)."""
        return self.path(COHERENCE_JOB, "_index.json")

    def coherence_job_legacy_index_path(self) -> str:
        """The index of done partitions that versions before the active index kept (read once, then removed)."""
        return self.path(COHERENCE_JOB, "_done.json")

    def coherence_job_active_root(self) -> str:
        return self.path(COHERENCE_JOB, "_active")

    def coherence_job_active_path(self, burst: str, window: str) -> str:
        """The marker of a partition whose jobs the sensor still acts on (see jobs.ledger_index)."""
        return self.path(COHERENCE_JOB, "_active", burst, f"{window}.json")

    def coherence_job_done_root(self) -> str:
        return self.path(COHERENCE_JOB, "_done")

    def coherence_job_done_path(self, burst: str, window: str) -> str:
        """What the sensor resolved in a done partition, and what is stuck there (see jobs.ledger_index)."""
        return self.path(COHERENCE_JOB, "_done", burst, f"{window}.json")

    def coherence_job_stuck_root(self) -> str:
        return self.path(COHERENCE_JOB, "_stuck")

    def coherence_job_stuck_path(self, burst: str, window: str) -> str:
        """A done partition's record while something in it is stuck, apart so that a tick lists only
        these to see whether they recovered (see jobs.ledger_index)."""
        return self.path(COHERENCE_JOB, "_stuck", burst, f"{window}.json")

    def backend_listing_marker_path(self) -> str:
        """Present once the backend's jobs were listed for this data folder (see jobs.ledger_repair);
        not ``.json``, so never taken for a ledger."""
        return self.path(COHERENCE_JOB, "_adoptable", "listed.marker")

    def adoptable_jobs_path(self, burst: str, window: str) -> str:
        """The backend's jobs named for a partition that had no ledger when the folder was first used."""
        return self.path(COHERENCE_JOB, "_adoptable", burst, f"{window}.json")

    def coherence_rasters_dir(self, burst: str, window: str) -> str:
        return self.path(COHERENCE_RASTERS, burst, window)

    def coherence_rasters_root(self, burst: str) -> str:
        return self.path(COHERENCE_RASTERS, burst)

    def coherence_cube_path(self, burst: str) -> str:
        return self.path(COHERENCE_CUBE, f"{burst}.zarr")

    def coherence_quicklook_path(self, burst: str) -> str:
        return self.path(COHERENCE_CUBE, f"{burst}.png")

    def coherence_decay_path(self, burst: str) -> str:
        return self.path(COHERENCE_DECAY, f"{burst}.zarr")

    def coherence_decay_quicklook_path(self, burst: str) -> str:
        return self.path(COHERENCE_DECAY, f"{burst}.png")

    def coherence_aoi_series_path(self, burst: str) -> str:
        return self.path(COHERENCE_AOI_SERIES, f"{burst}.parquet")

    def coherence_aoi_plot_path(self, burst: str) -> str:
        return self.path(COHERENCE_AOI_SERIES, f"{burst}.png")

    def coherence_aoi_decay_path(self, burst: str) -> str:
        return self.path(COHERENCE_AOI_SERIES, f"{burst}_decay.parquet")

    def coherence_aoi_decay_plot_path(self, burst: str) -> str:
        return self.path(COHERENCE_AOI_SERIES, f"{burst}_decay.png")

    def stac_root(self) -> str:
        return self.path("stac")

    def stac_catalog_path(self) -> str:
        return self.path("stac", "catalog.json")

    def stac_collection_dir(self, burst: str) -> str:
        return self.path("stac", burst)

    def require_output(self, path: str, produced_by: str, partition: str = "") -> None:
        """Fail, naming the asset to materialise first, when another asset's output is missing."""
        if not self.fs.exists(path):
            raise missing_output(path, produced_by, partition)

    def open_output(self, path: str, produced_by: str, partition: str = "") -> io.BytesIO:
        """Another asset's output (a table: small) for reading, or say which asset to materialise first.

        Read whole (:meth:`read_bytes`), so that a table another run rewrote meanwhile is read as it
        is now, not through a stale cached ETag.
        """
        data = self.read_bytes_if_present(path)
        if data is None:
            raise missing_output(path, produced_by, partition)
        return io.BytesIO(data)

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    @property
    def bucket(self) -> str | None:
        """The bucket (or container) of an object store's data folder; ``None`` on a local disk or in memory.

        Object-store filesystems (s3fs, gcsfs, adlfs) have no root marker: their first path segment is a bucket.
        """
        if self.is_local or self.fs.root_marker:
            return None
        return self.root.split("/", 1)[0]

    def check_reachable(self) -> None:
        """:class:`DataFolderUnusable` in one line if the bucket is missing or the store does not answer.

        One HEAD of the bucket. A missing bucket is never created (see :meth:`make_parent_folder`).
        """
        if self.bucket is None:
            return
        with one_line_store_errors():
            try:
                self.fs.info(self.bucket, refresh=True)
            except FileNotFoundError:
                raise DataFolderUnusable(
                    f"bucket {self.bucket} of COHERENCE_DATA_DIR={self.url} does not exist"
                    f"{_at_endpoint(self.fs)}: create it or correct the name (it is never created here, so "
                    "that a typo cannot start from nothing and pay for every job again)"
                ) from None

    def make_parent_folder(self, path: str) -> None:
        """Create ``path``'s folder on a local disk; an object store has no folders to create.

        s3fs's ``makedirs`` would create a missing *bucket*: a typo in its name, or a bucket a
        lifecycle rule emptied, must be an error (see :meth:`check_reachable`), never a fresh start.
        """
        make_parent_folder(self.fs, path)

    def write_bytes_atomically(self, path: str, data: bytes) -> None:
        """Write so that readers never see half a file: through a temporary sibling and a rename on a
        local disk; in one PUT on an object store, where an object is replaced whole anyway."""
        if not self.is_local:
            self.fs.pipe_file(path, data)
            return
        self.make_parent_folder(path)
        temporary = f"{path}.{uuid.uuid4().hex}.tmp"
        with self.fs.open(temporary, "wb") as stream:
            stream.write(data)
        self.fs.mv(temporary, path)

    def write_json(self, path: str, document: Any) -> None:
        self.write_bytes_atomically(path, json.dumps(document, indent=2, sort_keys=True).encode())

    def create_exclusively(self, path: str, data: bytes) -> str | None:
        """Create ``path`` only if it does not exist (``FileExistsError`` otherwise); its ETag, where the
        store gives one (for :meth:`replace_if_unchanged`).

        Atomic on a local disk (``O_EXCL``) and, with s3fs >= 2025.7, on S3 and stores with
        conditional writes (``If-None-Match: *``); older s3fs writes unconditionally.
        """
        if self.is_local:
            self.make_parent_folder(path)
            with self.fs.open(path, "xb") as stream:
                stream.write(data)
            return None
        return _etag(self.fs.pipe_file(path, data, mode="create"))

    def replace_if_unchanged(self, path: str, data: bytes, etag: str | None) -> str | None:
        """Replace ``path`` only if it is still the version ``etag`` names (``If-Match``), else
        :class:`ObjectChanged`; the new ETag. Without an ETag (a local disk gives none) it simply
        replaces: there this guard is not available.
        """
        if etag is None:
            self.fs.pipe_file(path, data)
            return None
        try:
            return _etag(self.fs.pipe_file(path, data, IfMatch=etag))
        except OSError as error:
            if _precondition_failed(error):
                raise ObjectChanged(f"{path} was changed by another writer") from None
            raise

    def version_now(self, path: str) -> tuple[float, str | None]:
        """When ``path`` was last written on the store's own clock (seconds since the epoch), and its
        ETag, from one look at the store (no cached listing): the two always describe the same write."""
        self.fs.invalidate_cache(path)
        info = self.fs.info(path)
        modified = info.get("LastModified") or info.get("mtime")
        if modified is None:  # a store of another shape (e.g. memory://): ask it by name
            return self.fs.modified(path).timestamp(), None
        seconds = modified.timestamp() if hasattr(modified, "timestamp") else float(modified)
        return seconds, info.get("ETag")

    def read_bytes(self, path: str) -> bytes:
        """The file's current content, in one GET that no cached listing or ETag stands in for.

        ``fs.open`` on s3fs takes size and ETag from its per-process listing cache and fails with
        ``FileExpired`` once another process has rewritten the object; ``cat_file`` does not.
        """
        return self.fs.cat_file(path)

    def read_bytes_if_present(self, path: str) -> bytes | None:
        """:meth:`read_bytes`, or ``None`` when there is no such file (asked of the store, not of a cache)."""
        try:
            return self.read_bytes(path)
        except FileNotFoundError:
            return None

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_bytes(path))

    def modified_seconds(self, path: str) -> float:
        """When ``path`` was last written, on the store's own clock (seconds since the epoch)."""
        return self.version_now(path)[0]

    def store_time(self, near: str) -> float:
        """The store's clock now: the modification time of a small object written next to ``near`` and removed.

        Hosts of one deployment disagree on the time; the store stamps every object it writes with
        its own, so comparing its stamps with each other needs no host's clock.
        """
        probe = f"{near}.clock-{uuid.uuid4().hex}"
        self.write_bytes_atomically(probe, b"")
        try:
            return self.modified_seconds(probe)
        finally:
            self.fs.rm(probe)

    def list_names(self, directory: str) -> list[str]:
        """The names in ``directory`` as the store has them now (no cached listing); none if it is absent."""
        self.fs.invalidate_cache(directory)
        try:
            return [path.rstrip("/").rsplit("/", 1)[-1] for path in self.fs.ls(directory, detail=False)]
        except FileNotFoundError:
            return []


def unreachable_store_line(error: BaseException) -> str | None:
    """The one line for an object store that does not answer, if ``error`` (or its cause) is that; else ``None``."""
    seen: BaseException | None = error
    while seen is not None:
        if any(
            cls.__name__ in UNREACHABLE_STORE_ERRORS and cls.__module__.startswith("botocore")
            for cls in type(seen).__mro__
        ):
            endpoint = urlsplit(str(getattr(seen, "kwargs", {}).get("endpoint_url", "")))
            where = f" at {endpoint.scheme}://{endpoint.netloc}" if endpoint.netloc else ""
            return (
                f"the object store{where} does not answer ({type(seen).__name__}): start it or correct "
                "AWS_ENDPOINT_URL, then run again; what was stored is kept and no job is submitted twice"
            )
        seen = seen.__cause__ or seen.__context__
    return None


@contextmanager
def one_line_store_errors() -> Iterator[None]:
    """Turn an unanswering object store into :class:`DataFolderUnusable` (its one line); the cause stays
    chained, so a run's log keeps the full trace."""
    try:
        yield
    except DataFolderUnusable:
        raise
    except Exception as error:
        line = unreachable_store_line(error)
        if line is None:
            raise
        raise DataFolderUnusable(line) from error


def _etag(response: object) -> str | None:
    """The ETag of a write's answer (s3fs returns S3's; other filesystems return nothing)."""
    return response.get("ETag") if isinstance(response, dict) else None


def _precondition_failed(error: OSError) -> bool:
    """s3fs's error for HTTP 412: an ``If-Match`` that no longer held."""
    answer = getattr(error.__cause__, "response", None) or {}
    return answer.get("Error", {}).get("Code") == "PreconditionFailed"


def _at_endpoint(fs: fsspec.AbstractFileSystem) -> str:
    """`` at <endpoint>``: the URL the store's client was sent to (``AWS_ENDPOINT_URL`` or AWS's own), once connected."""
    endpoint = getattr(getattr(getattr(fs, "s3", None), "meta", None), "endpoint_url", None)
    return f" at {endpoint}" if endpoint else ""


def missing_output(path: str, produced_by: str, partition: str) -> FileNotFoundError:
    target = f" for {partition}" if partition else ""
    return FileNotFoundError(f"{path} is missing: materialise {produced_by}{target} first")


def make_parent_folder(fs: fsspec.AbstractFileSystem, path: str) -> None:
    """See :meth:`DataStore.make_parent_folder`."""
    if isinstance(fs, LocalFileSystem):
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)


def move_tree(fs: fsspec.AbstractFileSystem, source: str, target: str) -> None:
    """Move the folder ``source`` (a Zarr store written aside) to ``target``, which must not exist.

    On a local disk this is one rename. s3fs's ``mv(..., recursive=True)`` also tries to copy
    the folder's own pseudo-key and fails with ``NoSuchKey``, so off the local disk the files
    are copied one by one (concurrently, in one call) and the source removed after.
    """
    if isinstance(fs, LocalFileSystem):
        fs.mv(source, target, recursive=True)
        return
    fs.invalidate_cache(source)  # a listing cached before the store was written would miss files
    files = fs.find(source)
    fs.copy(files, [f"{target}{file[len(source) :]}" for file in files])
    fs.rm(source, recursive=True)
