"""Where every asset lives under ``COHERENCE_DATA_DIR`` (README, "Where outputs land"), through fsspec.

All paths are built here and only here, so a local folder and an object store
(``s3://bucket/prefix``) work the same way.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem


class DataStore:
    """The output tree: a filesystem plus a root path, and the path of each asset's partition."""

    def __init__(self, root: str) -> None:
        self.fs, self.root = fsspec.core.url_to_fs(root)
        self.root = self.root.rstrip("/")
        self.url = root

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def burst_catalogue_path(self) -> str:
        return self.path("burst_catalogue.parquet")

    def insar_pairs_path(self, burst: str, window: str) -> str:
        return self.path("insar_pairs", burst, f"{window}.parquet")

    def coherence_job_path(self, burst: str, window: str) -> str:
        return self.path("coherence_job", burst, f"{window}.json")

    def coherence_job_lease_prefix(self, burst: str, window: str) -> str:
        """Lease files of the ledger's lock (``<window>.lease-<generation>``, see jobs.ledger_lock)."""
        return self.path("coherence_job", burst, f"{window}.lease-")

    def corrupt_ledger_path(self, burst: str, window: str, timestamp: str) -> str:
        """Where a corrupt ledger is kept after it was rebuilt: next to it, never read as a ledger."""
        return self.path("coherence_job", burst, f"{window}.json.corrupt-{timestamp}")

    def coherence_job_root(self) -> str:
        return self.path("coherence_job")

    def coherence_job_index_path(self) -> str:
        """The sensor's index of partitions whose jobs are all done (see jobs.ledger_index)."""
        return self.path("coherence_job", "_done.json")

    def coherence_rasters_dir(self, burst: str, window: str) -> str:
        return self.path("coherence_rasters", burst, window)

    def coherence_rasters_root(self, burst: str) -> str:
        return self.path("coherence_rasters", burst)

    def coherence_cube_path(self, burst: str) -> str:
        return self.path("coherence_cube", f"{burst}.zarr")

    def coherence_quicklook_path(self, burst: str) -> str:
        return self.path("coherence_cube", f"{burst}.png")

    def coherence_decay_path(self, burst: str) -> str:
        return self.path("coherence_decay", f"{burst}.zarr")

    def coherence_decay_quicklook_path(self, burst: str) -> str:
        return self.path("coherence_decay", f"{burst}.png")

    def coherence_aoi_series_path(self, burst: str) -> str:
        return self.path("coherence_aoi_series", f"{burst}.parquet")

    def coherence_aoi_plot_path(self, burst: str) -> str:
        return self.path("coherence_aoi_series", f"{burst}.png")

    def coherence_aoi_decay_path(self, burst: str) -> str:
        return self.path("coherence_aoi_series", f"{burst}_decay.parquet")

    def coherence_aoi_decay_plot_path(self, burst: str) -> str:
        return self.path("coherence_aoi_series", f"{burst}_decay.png")

    def stac_root(self) -> str:
        return self.path("stac")

    def stac_catalog_path(self) -> str:
        return self.path("stac", "catalog.json")

    def stac_collection_dir(self, burst: str) -> str:
        return self.path("stac", burst)

    def require_output(self, path: str, produced_by: str, partition: str = "") -> None:
        """Fail, naming the asset to materialise first, when another asset's output is missing."""
        if not self.fs.exists(path):
            target = f" for {partition}" if partition else ""
            raise FileNotFoundError(f"{path} is missing: materialise {produced_by}{target} first")

    def open_output(self, path: str, produced_by: str, partition: str = ""):
        """Open another asset's output for reading, or say which asset to materialise first."""
        self.require_output(path, produced_by, partition)
        return self.fs.open(path, "rb")

    def write_bytes_atomically(self, path: str, data: bytes) -> None:
        """Write through a temporary sibling and rename, so readers never see half a file."""
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{path}.{uuid.uuid4().hex}.tmp"
        with self.fs.open(temporary, "wb") as stream:
            stream.write(data)
        self.fs.mv(temporary, path)

    def write_json(self, path: str, document: Any) -> None:
        self.write_bytes_atomically(path, json.dumps(document, indent=2, sort_keys=True).encode())

    def create_exclusively(self, path: str, data: bytes) -> None:
        """Create ``path`` only if it does not exist (``FileExistsError`` otherwise).

        Mode ``"xb"`` is atomic on a local disk (``O_EXCL``) and, with s3fs >= 2025.7, on S3 and
        stores with conditional writes (``If-None-Match: *``); older s3fs treats it as ``"wb"``.
        """
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        with self.fs.open(path, "xb") as stream:
            stream.write(data)

    def read_bytes(self, path: str) -> bytes:
        with self.fs.open(path, "rb") as stream:
            return stream.read()

    def read_json(self, path: str) -> Any:
        with self.fs.open(path, "rb") as stream:
            return json.load(stream)


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
