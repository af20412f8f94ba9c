"""Ledger safety under faults: no pair paid for twice, no job left behind, one corrupt ledger isolated.

Each test drives the real chain (embedded backend over HTTP, on-disk Dagster instance, sensor
ticks) and checks what users care about: every pair has exactly one finished job on the
backend, every raster is there and valid, and what the user reads is one clear line.
"""

import time
from collections import Counter
from collections.abc import Callable

from coherence_assets.jobs.ledger import NOT_CREATED
from coherence_assets.jobs.processes import CoherenceRequest, Pair, coherence_process_graph
from coherence_assets.jobs.submission import parse_job_title
from coherence_assets.rasters.asset_matching import raster_file_name
from coherence_assets.rasters.validation import validate_coherence_raster
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.defs.conftest import BURST, WINDOW, Chain

NO_GRACE = {"orphan_grace_seconds": 0}


def jobs_per_pair(chain: Chain, statuses: frozenset[str] = frozenset({"finished"})) -> Counter[Pair]:
    """How many backend jobs of ours in ``statuses`` compute each pair, from the backend's own process graphs."""
    connection = chain.openeo_backend.connect()
    counts: Counter[Pair] = Counter()
    ledger_pairs = {record.submission_id: record.pairs for record in chain.ledger().jobs}
    for job_id, job in chain.backend_jobs().items():
        titled = parse_job_title(job.get("title"))
        if titled is None or job["status"] not in statuses:
            continue
        arguments = next(iter(connection.job(job_id).describe()["process"]["process_graph"].values()))[
            "arguments"
        ]
        start, end = arguments["temporal_extent"]
        counts.update(
            pair
            for pair in ledger_pairs[titled.submission_id]
            if start <= pair[0].isoformat() and pair[1].isoformat() <= end
        )
    return counts


def finish_the_chain(chain: Chain, timeout: float = 90.0) -> None:
    """Tick as the daemon does until every ledger job finished and its download run succeeded."""
    cursor, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = chain.tick(cursor)
        cursor = data.cursor or cursor
        chain.launch(data)
        records = chain.ledger().jobs
        listing = chain.backend_jobs()
        if records and all(
            record.job_id in listing
            and listing[record.job_id]["status"] == "finished"
            and chain.runs_with_key(f"rasters-{record.job_id}-1")
            for record in records
        ):
            return
        time.sleep(0.2)
    raise AssertionError(f"the chain did not finish within {timeout} s: {chain.ledger().jobs}")


def assert_every_pair_computed_once_with_a_valid_raster(chain: Chain) -> None:
    pairs = [pair for record in chain.ledger().jobs for pair in record.pairs]
    assert pairs, "the partition has no pairs: the test proves nothing"
    assert jobs_per_pair(chain) == Counter(pairs)
    assert set(Counter(pairs).values()) == {1}
    folder = chain.store.coherence_rasters_dir(BURST, WINDOW)
    for pair in pairs:
        validate_coherence_raster(chain.store.fs, f"{folder}/{raster_file_name(*pair)}")


def create_on_backend(chain: Chain, title: str, arguments: dict) -> str:
    """What a create that landed late leaves on the backend: a created job with our title."""
    connection = chain.openeo_backend.connect()
    return connection.create_job(
        coherence_process_graph(connection, CoherenceRequest(), arguments), title=title
    ).job_id


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
    assert [job["title"] for job in chain.backend_jobs().values()] == [record.title]
    assert_every_pair_computed_once_with_a_valid_raster(chain)
