"""Ledger safety under faults: no pair paid for twice, no job left behind, one corrupt ledger isolated.

Each test drives the real chain (embedded backend over HTTP, on-disk Dagster instance, sensor
ticks) and checks what users care about: every pair has exactly one finished job on the
backend, every raster is there and valid, and what the user reads is one clear line.
"""

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from coherence_assets.jobs.ledger import NOT_CREATED
from coherence_assets.jobs.processes import CoherenceRequest, coherence_process_graph
from coherence_assets.jobs.submission import parse_job_title
from coherence_assets.pairs.pair import Pair
from coherence_assets.pairs.pair_table import read_pairs
from coherence_assets.partition_keys import split_partition_key
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.raster_files.validation import validate_coherence_raster
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.defs.conftest import BURST, PARTITION, WINDOW, Chain, materialization_metadata
from embedded_openeo.github_api import MAIN_COMMIT

NO_GRACE = {"orphan_grace_seconds": 0}


def printed_lines(capfd: pytest.CaptureFixture[str], containing: str) -> list[str]:
    """Lines the sensors and runs printed (Dagster's console log, as the daemon shows it) that contain a text."""
    return [line for line in capfd.readouterr().err.splitlines() if containing in line]


def our_jobs(chain: Chain) -> dict[str, dict]:
    """The backend's jobs whose titles are ours, by id."""
    return {job_id: job for job_id, job in chain.backend_jobs().items() if parse_job_title(job.get("title"))}


def jobs_per_pair(chain: Chain, partition: str = PARTITION) -> Counter[Pair]:
    """How many backend jobs of ours (any status) compute each of the partition's pairs, from their process graphs."""
    connection = chain.openeo_backend.connect()
    burst, window = split_partition_key(partition)
    counts: Counter[Pair] = Counter()
    table = read_pairs(chain.store, burst, window)
    for job_id, job in our_jobs(chain).items():
        if parse_job_title(job["title"]).window != window:
            continue
        graph = connection.job(job_id).describe()["process"]["process_graph"]
        arguments = next(iter(graph.values()))["arguments"]
        start, end = arguments["temporal_extent"]
        counts.update(pair for pair in table if start <= pair[0].isoformat() and pair[1].isoformat() <= end)
    return counts


def finish_the_chain(chain: Chain, partitions: tuple[str, ...] = (PARTITION,), timeout: float = 90.0) -> None:
    """Tick as the daemon does until every job of ours is a finished ledger job whose download ran."""
    cursor, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = chain.tick(cursor)
        cursor = data.cursor or cursor
        chain.launch(data)
        recorded = {record.job_id for partition in partitions for record in chain.ledger(partition).jobs}
        listing = our_jobs(chain)
        if set(listing) == recorded and all(
            job["status"] == "finished" and chain.runs_with_key(f"rasters-{job_id}-1")
            for job_id, job in listing.items()
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"the chain did not finish within {timeout} s: {our_jobs(chain)}")


def assert_every_pair_computed_once_with_a_valid_raster(chain: Chain, partition: str = PARTITION) -> None:
    burst, window = split_partition_key(partition)
    pairs = read_pairs(chain.store, burst, window)
    assert pairs, "the partition has no pairs: the test proves nothing"
    assert jobs_per_pair(chain, partition) == Counter(pairs)  # each pair exactly once
    folder = chain.store.coherence_rasters_dir(burst, window)
    for pair in pairs:
        validate_coherence_raster(chain.store.fs, f"{folder}/{raster_file_name(*pair)}")


def create_on_backend(chain: Chain, title: str, arguments: dict) -> str:
    """What a create that landed late leaves on the backend: a created job with our title."""
    connection = chain.openeo_backend.connect()
    return connection.create_job(
        coherence_process_graph(connection, CoherenceRequest(apex_commit=MAIN_COMMIT), arguments), title=title
    ).job_id


@pytest.mark.slow
def test_a_create_that_landed_after_its_run_failed_is_adopted_by_the_sensor_and_computed_once(
    backend: LiveBackend, make_chain: Callable[..., Chain]
):
    chain = make_chain(backend, openeo=NO_GRACE)
    chain.refresh_bursts()
    backend.add_fault(path="^/jobs$", method="POST", status=500, times=20)
    assert not chain.submit(raise_on_error=False).success
    backend.clear_faults()
    (record,) = chain.ledger().jobs
    assert record.status == NOT_CREATED
    landed = create_on_backend(chain, record.title, record.arguments)

    finish_the_chain(chain)

    assert [record.job_id for record in chain.ledger().jobs] == [landed]
    assert_every_pair_computed_once_with_a_valid_raster(chain)


def test_a_created_twin_of_a_recorded_job_is_deleted_by_the_sensor(
    backend: LiveBackend, make_chain: Callable[..., Chain]
):
    chain = make_chain(backend, openeo=NO_GRACE)
    chain.refresh_bursts()
    chain.submit()
    (record,) = chain.ledger().jobs
    twin = create_on_backend(chain, record.title, record.arguments)

    finish_the_chain(chain)

    assert twin not in chain.backend_jobs()
    assert_every_pair_computed_once_with_a_valid_raster(chain)


REPO_ROOT = Path(__file__).resolve().parents[2]
COHERENCE_JOB_RUN = """
import sys
import dagster as dg
import pytest
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.defs.conftest import chain_definitions, chain_resources
url, data_dir, home, partition = sys.argv[1:]
defs = chain_definitions(chain_resources(LiveBackend(url, data_dir), data_dir))
with dg.DagsterInstance.from_config(home) as instance:
    dg.materialize(defs.assets, selection=["coherence_job"], instance=instance, partition_key=partition,
                   resources=defs.resources)
"""


def coherence_job_in_a_process(chain: Chain) -> subprocess.Popen:
    """A ``coherence_job`` run of PARTITION in its own process, on the chain's instance, data dir and backend."""
    arguments = [chain.backend.url, str(chain.data_dir), chain.instance.root_directory, PARTITION]
    # from the repository root: the test package is not installed, so it is importable only from there
    return subprocess.Popen([sys.executable, "-c", COHERENCE_JOB_RUN, *arguments], cwd=REPO_ROOT)


@pytest.mark.slow
def test_two_concurrent_runs_of_one_partition_create_one_job_for_its_pairs(
    backend: LiveBackend, make_chain: Callable[..., Chain]
):
    chain = make_chain(backend, openeo=NO_GRACE)
    chain.refresh_bursts()
    chain.materialize(["insar_pairs"], PARTITION)
    backend.add_fault(
        path="^/jobs$", method="POST", delay_seconds=3, times=2
    )  # creates slow enough to overlap

    runs = [coherence_job_in_a_process(chain) for _ in range(2)]  # two processes, as two run workers would be

    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    records = chain.instance.fetch_materializations(dg.AssetKey("coherence_job"), limit=10).records
    submitted = [record.asset_materialization.metadata["submitted_jobs"].value for record in records]
    assert sorted(submitted) == [0, 1]
    assert len(our_jobs(chain)) == 1
    finish_the_chain(chain)
    assert_every_pair_computed_once_with_a_valid_raster(chain)


@pytest.mark.slow
def test_a_run_killed_during_a_slow_create_and_rerun_at_once_leaves_no_twin(
    backend: LiveBackend, make_chain: Callable[..., Chain], capfd: pytest.CaptureFixture[str]
):
    chain = make_chain(backend, openeo={"orphan_grace_seconds": 0.5})
    chain.refresh_bursts()
    chain.materialize(["insar_pairs"], PARTITION)
    backend.add_fault(path="^/jobs$", method="POST", delay_seconds=4, times=1)
    killed = coherence_job_in_a_process(chain)
    ledger_path = Path(chain.store.coherence_job_path(BURST, WINDOW))
    deadline = time.monotonic() + 60
    # the job is entered just before its create is sent; the create has reached the backend (and is
    # held there) once the delay rule is used up: a fixed pause let a loaded machine kill it unsent
    while not ledger_path.exists() or backend.faults():
        assert killed.poll() is None and time.monotonic() < deadline, "the run to kill ended early"
        time.sleep(0.05)
    killed.kill()
    killed.wait()
    (entered,) = chain.ledger().jobs
    assert entered.status == NOT_CREATED

    rerun = chain.materialize(["coherence_job"], PARTITION)  # at once: the dead run's lease does not block

    assert materialization_metadata(rerun, "coherence_job")["submitted_jobs"] == 1
    deadline = time.monotonic() + 30
    while len(our_jobs(chain)) < 2:  # the killed run's create lands late: the twin
        assert time.monotonic() < deadline, "the killed run's create never landed; the test proves nothing"
        time.sleep(0.1)
    time.sleep(0.6)  # older than the grace period: a twin, not a create in progress
    finish_the_chain(chain)

    assert [job["title"] for job in our_jobs(chain).values()] == [entered.title]
    (line,) = printed_lines(capfd, "deleted created job")
    assert (
        "- dagster - WARNING - t015_030343_iw2 2023-07-01: deleted created job" in line
        and "a twin of job" in line
    )
    assert_every_pair_computed_once_with_a_valid_raster(chain)


@pytest.mark.slow
def test_a_corrupt_ledger_is_skipped_by_the_sensor_then_rebuilt_without_paying_for_its_pairs_again(
    backend: LiveBackend, make_chain: Callable[..., Chain], capfd: pytest.CaptureFixture[str]
):
    chain = make_chain(backend)
    chain.refresh_bursts()
    healthy = f"{BURST}|2023-04-01"
    for partition in (PARTITION, healthy):
        chain.submit(partition)
        chain.wait_for_ledger_jobs(partition)
    jobs_before = set(our_jobs(chain))
    ledger_path = Path(chain.store.coherence_job_path(BURST, WINDOW))
    ledger_path.write_bytes(ledger_path.read_bytes()[:100])  # truncated

    data = chain.tick()

    (error,) = printed_lines(capfd, "ERROR")
    assert f"- dagster - ERROR - {ledger_path} is not a readable job ledger (not JSON" in error
    assert [request.partition_key for request in data.run_requests] == [healthy]
    chain.launch(data)

    repair = chain.submit(PARTITION)

    assert materialization_metadata(repair, "coherence_job")["submitted_jobs"] == 0
    assert set(our_jobs(chain)) == jobs_before
    assert len(list(ledger_path.parent.glob(f"{WINDOW}.json.corrupt-*"))) == 1
    repair_lines = [
        entry.user_message
        for entry in chain.instance.all_logs(repair.run_id)
        if "was corrupt" in entry.user_message
    ]
    assert len(repair_lines) == 1 and "\n" not in repair_lines[0]
    finish_the_chain(chain, (PARTITION, healthy))
    for partition in (PARTITION, healthy):
        assert_every_pair_computed_once_with_a_valid_raster(chain, partition)
