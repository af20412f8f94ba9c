"""The ledger's lease on a real S3 server (moto over HTTP): the store's clock decides expiry."""

import json
import time

from coherence_assets.jobs.ledger_lock import acquire_lease, lease_path
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
    store.fs.ls(store.path("coherence_job", BURST))  # a listing cached before the release
    first.release()

    second = acquire_lease(store, BURST, WINDOW, "run-2", wait_seconds=2)

    assert second.generation == first.generation + 1
