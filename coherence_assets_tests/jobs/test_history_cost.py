"""No run pays for the account's history: the job reads of a partition's submission and download,
counted where the embedded backend serves them (its access log), on an empty account and on one
with 1,000 jobs of another client."""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.catalogue.odata_client import BurstCatalogueClient
from coherence_assets.jobs.batching import PairBatch
from coherence_assets.jobs.ledger import FINISHED, Ledger
from coherence_assets.jobs.processes import CoherenceRequest, coherence_process_graph
from coherence_assets.jobs.submission import enter_job
from coherence_assets.pairs.window_pairs import pairs_for_window
from coherence_assets.rasters.partition_download import download_and_check_partition
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import start_backend
from coherence_assets_tests.jobs.conftest import BURST, WINDOW, connector, submit
from embedded_openeo.github_api import MAIN_COMMIT
from embedded_openeo.job_store import JobStore

BURST_KEY = BurstKey.parse(BURST)
HISTORY = 1_000
REQUEST = CoherenceRequest(apex_commit=MAIN_COMMIT)
JOB_READ = re.compile(r"^GET /jobs(/|\?|$)")


class JobReads(logging.Handler):
    """Requests the backend served that match ``pattern`` (``GET /jobs...``), from werkzeug's access log records."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        super().__init__(level=logging.INFO)
        self.pattern = pattern
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        request_line = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
        self.count += bool(self.pattern.match(request_line))


@contextmanager
def counted_job_reads(pattern: re.Pattern[str] = JOB_READ) -> Iterator[JobReads]:
    access_log, reads = logging.getLogger("werkzeug"), JobReads(pattern)
    level = access_log.level
    access_log.setLevel(logging.INFO)
    access_log.addHandler(reads)
    try:
        yield reads
    finally:
        access_log.removeHandler(reads)
        access_log.setLevel(level)


def seed_history(data_dir: Path, jobs: int) -> None:
    """Another client's jobs on the same account, made in the backend's own store and dated a day back."""
    store = JobStore(data_dir / "openeo")
    try:
        for number in range(jobs):
            store.create_job("local", {"process_graph": {}}, f"another client's job {number}", None, "info")
    finally:
        store.close()
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with closing(sqlite3.connect(data_dir / "openeo" / "jobs.sqlite3")) as database, database:
        database.execute("UPDATE jobs SET created = ?", (yesterday,))


def job_reads_of_a_partition(tmp_path: Path, history: int) -> int:
    """Job reads of a partition's life outside the sensor: a submission that adopts a job whose create
    landed after its run died, the download, and the daily re-submission."""
    seed_history(tmp_path / "backend", history)
    with contextmanager(start_backend)(tmp_path / "backend") as backend:
        store = DataStore(str(tmp_path / "data"))
        table = pairs_for_window(
            BurstCatalogueClient(backend.catalogue_url),
            BURST_KEY,
            "VV",
            dt.date(2023, 7, 1),
            dt.date(2023, 9, 30),
            [12],
        ).pairs.head(2)
        store.fs.makedirs(store.path("insar_pairs", BURST), exist_ok=True)
        table.to_parquet(store.insar_pairs_path(BURST, WINDOW), index=False)
        pairs = [(row.reference_date, row.secondary_date) for row in table.itertuples()]

        connect = connector(backend)

        ledger = Ledger(BURST, WINDOW, backend.url)
        record = enter_job(ledger, BURST_KEY, REQUEST, PairBatch(12, tuple(pairs)))
        store.write_json(store.coherence_job_path(BURST, WINDOW), ledger.to_json())
        connection = connect()
        landed = connection.create_job(
            coherence_process_graph(connection, REQUEST, record.arguments), title=record.title
        )
        with counted_job_reads() as submission:
            submit(store, backend, pairs, start_jobs_now=True)
        landed.start_job()  # the sensor's part
        deadline = time.monotonic() + 60
        while (status := landed.status()) != FINISHED:
            assert status in {"queued", "running"} and time.monotonic() < deadline, status
            time.sleep(0.2)
        with counted_job_reads() as download:
            checked = download_and_check_partition(store, connect, BURST, WINDOW, backend_url=backend.url)
            submit(store, backend, pairs, start_jobs_now=True)
        assert checked.check.passed and len(checked.rasters.summaries) == len(pairs) == 2
        (adopted,) = Ledger.from_json(store.read_json(store.coherence_job_path(BURST, WINDOW))).jobs
        assert adopted.job_id == landed.job_id and adopted.status == FINISHED
        return submission.count + download.count


@pytest.mark.slow
def test_a_partitions_job_reads_do_not_grow_with_a_thousand_jobs_of_history(tmp_path: Path):
    empty = job_reads_of_a_partition(tmp_path / "empty", 0)
    with_history = job_reads_of_a_partition(tmp_path / "history", HISTORY)

    assert empty > 0, "nothing was counted: the test proves nothing"
    assert with_history <= 1.1 * empty, (
        f"{with_history} job reads with {HISTORY} jobs of history, {empty} without"
    )
