"""The index of active partitions: a tick opens, stats, lists and parses what the active partitions
need, however many partitions are done; counted on the real filesystem, never timed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from benchmarks.tick_cost import PAIR, build_tree, partitions, ticker
from coherence_assets.jobs.ledger import Ledger
from coherence_assets.jobs.ledger_index import (
    DonePartition,
    ledger_paths,
    mark_active,
    read_done_index,
    scan_ledgers,
)
from coherence_assets.jobs.stuck import StuckKind, StuckReason
from coherence_assets.jobs.tick import TickCursor
from coherence_assets.jobs.tick_run import stuck_now
from coherence_assets.partition_keys import partition_key
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.jobs.conftest import connector

ACTIVE = 2
STUCK = StuckReason(StuckKind.DOWNLOADS_FAILED, "j-done-0", 2, (PAIR,))


class CountedFile:
    """A file of the filesystem under test whose reads are counted in bytes."""

    def __init__(self, stream: Any, counts: Counter[str]) -> None:
        self.stream, self.counts = stream, counts

    def read(self, *args: Any) -> bytes:
        data = self.stream.read(*args)
        self.counts["bytes read"] += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def __enter__(self) -> CountedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.close()


class CountedFileSystem:
    """The store's real filesystem, with every open, stat and listing counted (and the entries listed)."""

    def __init__(self, fs: Any) -> None:
        self.fs, self.counts = fs, Counter()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fs, name)

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        self.counts["files opened"] += 1
        stream = self.fs.open(path, mode, **kwargs)
        return CountedFile(stream, self.counts) if "r" in mode else stream

    def cat_file(self, path: str, **kwargs: Any) -> bytes:
        self.counts["files opened"] += 1
        data = self.fs.cat_file(path, **kwargs)
        self.counts["bytes read"] += len(data)
        return data

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        self.counts["files stat'ed"] += 1
        return self.fs.info(path, **kwargs)

    def exists(self, path: str, **kwargs: Any) -> bool:
        self.counts["files stat'ed"] += 1
        return self.fs.exists(path, **kwargs)

    def find(self, path: str, **kwargs: Any) -> Any:
        self.counts["listings"] += 1
        found = self.fs.find(path, **kwargs)
        self.counts["entries listed"] += len(found)
        return found

    def ls(self, path: str, **kwargs: Any) -> Any:
        self.counts["listings"] += 1
        found = self.fs.ls(path, **kwargs)
        self.counts["entries listed"] += len(found)
        return found


def steady_tick_counts(data_dir: Path, backend: LiveBackend, done: int) -> Counter[str]:
    """What the third tick over ``done`` done partitions (the first of them stuck) and ACTIVE active
    partitions costs the filesystem."""
    store = DataStore(str(data_dir))
    connect = connector(backend)
    build_tree(store, connect(), backend.url, done, ACTIVE)
    ((burst, window),) = partitions(1, 100_000)
    record = DonePartition.from_json(store.read_json(store.coherence_job_done_path(burst, window)))
    store.write_json(
        store.coherence_job_stuck_path(burst, window), {**record.to_json(), "stuck": [STUCK.to_json()]}
    )
    store.fs.rm(store.coherence_job_done_path(burst, window))
    tick = ticker(store, connect)
    cursor = tick(tick(TickCursor()).plan.cursor).plan.cursor  # the first lists the tree once
    counted = CountedFileSystem(store.fs)
    store.fs = counted
    run = tick(cursor)
    counts = Counter(counted.counts)
    assert len(run.plan.to_start) == ACTIVE  # the active partitions' jobs were all looked at
    # its rasters are missing: still stuck
    assert stuck_now(store) == [f"{partition_key(burst, window)}: {STUCK.line()}"]
    return counts


@pytest.mark.slow
def test_a_tick_costs_the_same_files_and_bytes_at_10_and_at_10000_done_partitions_one_of_them_stuck(
    tmp_path: Path, backend: LiveBackend
):
    few = steady_tick_counts(tmp_path / "few", backend, 10)
    many = steady_tick_counts(tmp_path / "many", backend, 10_000)

    assert few == many, f"10 done: {dict(few)}; 10,000 done: {dict(many)}"
    # each active partition's marker and ledger; the stuck partition's record and ledger
    assert few["files opened"] == 2 * ACTIVE + 2
    assert few["entries listed"] <= 4 * ACTIVE + 2  # markers, each job's raster folder, the stuck records


def test_the_first_tick_adopts_the_old_index_and_later_ticks_read_only_active_partitions(
    tmp_path: Path, backend: LiveBackend
):
    """A tree of an earlier version: its ``_done.json`` holds the done ledgers' signatures then."""
    store = DataStore(str(tmp_path / "data"))
    connect = connector(backend)
    build_tree(store, connect(), backend.url, 3, 1)
    old_done = read_done_index(store)
    for burst, window in partitions(3, 100_000):  # as the earlier version left them: no done records
        store.fs.rm(store.coherence_job_done_path(burst, window))
    for burst, window in partitions(1, 200_000):
        store.fs.rm(store.coherence_job_active_path(burst, window))
    signatures = ledger_paths(store)
    store.write_json(
        store.coherence_job_legacy_index_path(),
        {path: {**entry.to_json(), "signature": signatures[path]} for path, entry in old_done.items()},
    )
    rewritten = next(iter(old_done))  # by a coherence_job run of an earlier version, since it was done
    store.write_json(rewritten, store.read_json(rewritten))

    first = ticker(store, connect)(TickCursor())

    # the active partition's job is listed; the rewritten one's was resolved, by the old index
    assert len(first.plan.to_start) == 1 and first.requests == 1
    assert first.plan.done_partitions == {old_done[rewritten].partition_key: []}
    assert read_done_index(store) == old_done
    assert scan_ledgers(store).read_count == 1
    assert not store.fs.exists(store.coherence_job_legacy_index_path())


def test_a_partition_marked_again_after_it_was_done_keeps_its_resolved_jobs_until_done_again(
    tmp_path: Path, backend: LiveBackend
):
    store = DataStore(str(tmp_path / "data"))
    connect = connector(backend)
    build_tree(store, connect(), backend.url, 2, 0)
    tick = ticker(store, connect)
    tick(TickCursor())
    ((burst, window), _) = partitions(2, 100_000)
    path = store.coherence_job_path(burst, window)
    mark_active(store, burst, window)  # a coherence_job run, e.g. the daily schedule's
    store.write_json(path, Ledger.from_json(store.read_json(path)).to_json())

    assert scan_ledgers(store).read_count == 1
    again = tick(TickCursor())

    assert again.requests == 0  # its job was resolved before: nothing to ask the backend
    assert again.plan.done_partitions == {partition_key(burst, window): []}
    assert scan_ledgers(store).read_count == 0 and len(read_done_index(store)) == 2
