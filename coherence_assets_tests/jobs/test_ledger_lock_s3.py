"""The ledger's lease on a real S3 server (moto over HTTP): the store's clock decides expiry, racing
processes never hold it together and none fails for losing a race, a renewal and a takeover cannot both
land, and a waiting run keeps its deadline whatever the listing says."""

import json
import multiprocessing
import time
from itertools import pairwise
from multiprocessing.synchronize import Barrier

import pytest

from coherence_assets.jobs.ledger_lock import (
    LedgerBusyError,
    LedgerLeaseLost,
    _observe,
    _take_over,
    acquire_lease,
    lease_path,
)
from coherence_assets.storage import DataStore
from coherence_assets_tests.s3_server import S3Server

BURST, WINDOW = "t015_030343_iw2", "2023-07-01"


def test_a_lease_from_a_host_an_hour_ahead_stops_blocking_once_the_store_says_it_expired(s3_env: S3Server):
    store = DataStore(f"s3://{s3_env.new_bucket()}/data")
    ahead = {"holder": "run on a fast clock", "host": "elsewhere", "pid": 1, "ttl_seconds": 2.0}
    ahead["acquired_at"] = "2099-01-01T00:00:00+00:00"
    ahead["expires_at"] = time.time() + 3600  # what the old lease judged by: the holder's clock
    store.fs.pipe_file(lease_path(store, BURST, WINDOW, 1), json.dumps(ahead).encode())
    started = time.monotonic()

    taken = acquire_lease(store, BURST, WINDOW, "run-2", wait_seconds=10)

    assert taken.generation == 2
    assert 1.0 <= time.monotonic() - started < 6.0


def test_a_second_run_on_s3_waits_within_its_deadline_then_gets_the_ledger(s3_env: S3Server):
    store = DataStore(f"s3://{s3_env.new_bucket()}/data")
    first = acquire_lease(store, BURST, WINDOW, "run-1")
    store.fs.ls(
        store.coherence_job_lease_prefix(BURST, WINDOW).rsplit("/", 1)[0]
    )  # cached before the release
    first.release()

    second = acquire_lease(store, BURST, WINDOW, "run-2", wait_seconds=2)

    assert second.generation == first.generation + 1


def race_for_leases(
    store_url: str, racer: int, rounds: int, barrier: Barrier, results: multiprocessing.Queue
) -> None:
    """One racer process: each round, all racers ask for the same fresh partition's lease at once and
    hold it briefly; reports (round, racer, held from, held until) or the error, on a shared clock."""
    store = DataStore(store_url)
    for round_number in range(rounds):
        window = f"race-{round_number:03d}"
        barrier.wait()
        try:
            lease = acquire_lease(store, BURST, window, f"racer {racer}", wait_seconds=30, sleep=quick_poll)
        except Exception as error:  # every failure is what the test counts
            results.put((round_number, racer, "failed", f"{type(error).__name__}: {error}"))
            continue
        held_from = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of this machine
        time.sleep(0.01)
        held_until = time.monotonic()
        lease.release()
        results.put((round_number, racer, held_from, held_until))


def quick_poll(_seconds: float) -> None:
    time.sleep(0.02)


@pytest.mark.slow
def test_racing_processes_on_s3_never_hold_a_lease_together_and_every_one_gets_it_in_turn(s3_env: S3Server):
    store = DataStore(f"s3://{s3_env.new_bucket()}/data")
    racers, rounds = 2, 50
    context = multiprocessing.get_context("spawn")  # not fork: s3fs runs an event-loop thread
    barrier, results = context.Barrier(racers), context.Queue()
    processes = [
        context.Process(target=race_for_leases, args=(store.url, racer, rounds, barrier, results))
        for racer in range(racers)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in range(racers * rounds)]
    for process in processes:
        process.join(timeout=30)

    failures = [outcome for outcome in outcomes if outcome[2] == "failed"]
    assert failures == [], f"{len(failures)} spurious failures, the first: {failures[0]}"
    double_holders = []
    for round_number in range(rounds):
        holds = sorted(outcome[2:] for outcome in outcomes if outcome[0] == round_number)
        assert len(holds) == racers
        double_holders += [round_number for (_, until), (start, _) in pairwise(holds) if start < until]
    assert double_holders == [], f"two holders at once in rounds {double_holders}"
    leftovers = store.fs.find(store.path("coherence_job", BURST))
    assert [path for path in leftovers if ".lease-" in path] == [], "lease files beside the ledgers"


def test_a_holder_renewing_as_its_lease_is_judged_expired_and_the_taker_cannot_both_go_on(s3_env: S3Server):
    """The renew-vs-expiry race, both orders: the write that lands second fails (If-Match)."""
    store = DataStore(f"s3://{s3_env.new_bucket()}/data")
    path = lease_path(store, BURST, WINDOW, 1)
    holder = acquire_lease(store, BURST, WINDOW, "slow run", ttl_seconds=0.5)
    time.sleep(0.7)
    judged = _observe(store, BURST, WINDOW, 1, ttl_seconds=0.5)
    assert not judged.is_live(lambda: time.time() + 3600)  # expired, whatever the clock

    holder.renew()  # lands first
    assert not _take_over(store, judged, path, "taker"), "the taker took a lease renewed after its judgement"

    judged = _observe(store, BURST, WINDOW, 1, ttl_seconds=0.5)
    assert _take_over(store, judged, path, "taker")  # lands first
    with pytest.raises(LedgerLeaseLost):
        holder.renew()


class LaggingListing(DataStore):
    """The S3 store whose folder listings keep answering what they answered first (a listing that stays
    stale), as a listing cache or an eventually consistent store can; reads and writes are the store's."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self._first_answers: dict[str, list[str]] = {}

    def list_names(self, directory: str) -> list[str]:
        return self._first_answers.setdefault(directory, super().list_names(directory))


def test_a_waiting_run_gives_up_at_its_deadline_under_a_listing_that_stays_stale(s3_env: S3Server):
    url = f"s3://{s3_env.new_bucket()}/data"
    acquire_lease(DataStore(url), BURST, WINDOW, "run-1").release()
    lagging = LaggingListing(url)
    lagging.list_names(
        lagging.coherence_job_lease_prefix(BURST, WINDOW).rsplit("/", 1)[0]
    )  # sees run-1's only
    acquire_lease(DataStore(url), BURST, WINDOW, "run-2")  # holds, unseen by the lagging listing
    started = time.monotonic()

    with pytest.raises(LedgerBusyError):
        acquire_lease(lagging, BURST, WINDOW, "run-3", wait_seconds=2)

    assert time.monotonic() - started < 4
