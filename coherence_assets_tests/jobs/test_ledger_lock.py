"""The ledger's lease: one writer at a time, on a real folder, and no run blocked forever by a dead one."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from coherence_assets.jobs.ledger_lock import (
    LedgerBusyError,
    LedgerLeaseLost,
    acquire_lease,
    held_ledger,
    lease_path,
)
from coherence_assets.storage import DataStore

BURST, WINDOW = "t015_030343_iw2", "2023-07-01"


@pytest.fixture
def store(tmp_path: Path) -> DataStore:
    return DataStore(str(tmp_path / "data"))


def lease_files(store: DataStore) -> list[str]:
    directory = Path(store.coherence_job_lease_prefix(BURST, WINDOW)).parent
    return sorted(path.name for path in directory.glob(f"{WINDOW}.lease-*"))


def test_read_modify_write_under_the_lease_loses_no_update_among_concurrent_writers(store: DataStore):
    counter = store.path("counter.json")
    store.write_json(counter, 0)

    def increment() -> None:
        for _ in range(5):
            with held_ledger(store, BURST, WINDOW, wait_seconds=30):
                value = store.read_json(counter)
                time.sleep(0.002)  # widen the read-modify-write window
                store.write_json(counter, value + 1)

    threads = [threading.Thread(target=increment) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert store.read_json(counter) == 30
    assert len(lease_files(store)) == 1  # older generations are cleaned up


def test_a_second_run_waits_for_the_first_and_then_gets_the_ledger(store: DataStore):
    first = acquire_lease(store, BURST, WINDOW, "run-1")
    threading.Timer(0.5, first.release).start()
    started = time.monotonic()

    with held_ledger(store, BURST, WINDOW, "run-2", wait_seconds=10) as second:
        assert second.generation == first.generation + 1
    assert time.monotonic() - started >= 0.4


def test_a_live_holder_makes_the_second_run_fail_with_one_line_naming_it(store: DataStore):
    acquire_lease(store, BURST, WINDOW, "run-1")

    with pytest.raises(LedgerBusyError) as raised:
        acquire_lease(store, BURST, WINDOW, "run-2", wait_seconds=0.2)

    message = str(raised.value)
    assert "\n" not in message
    assert f"(run-1) holds the ledger of {BURST} {WINDOW} since " in message
    assert message.endswith("retry when it has ended")


def test_an_expired_lease_is_taken_over_and_its_holder_cannot_renew_it(store: DataStore):
    stale = acquire_lease(store, BURST, WINDOW, "run-1", ttl_seconds=0.2)
    time.sleep(0.3)

    taken = acquire_lease(store, BURST, WINDOW, "run-2", wait_seconds=0)

    assert taken.generation > stale.generation
    with pytest.raises(LedgerLeaseLost):
        stale.renew()
    taken.renew()  # the holder itself renews freely


def test_the_lease_of_a_killed_process_on_this_machine_is_taken_over_at_once(store: DataStore):
    script = (
        "import sys, time; from coherence_assets.storage import DataStore; "
        "from coherence_assets.jobs.ledger_lock import acquire_lease; "
        f"acquire_lease(DataStore(sys.argv[1]), {BURST!r}, {WINDOW!r}, 'doomed run'); "
        "print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script, store.url], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    (lease,) = lease_files(store)
    lease_folder = Path(store.coherence_job_lease_prefix(BURST, WINDOW)).parent
    assert json.loads((lease_folder / lease).read_text())["holder"] == "doomed run"

    with held_ledger(store, BURST, WINDOW, "re-run", wait_seconds=0) as taken:
        assert Path(lease_path(store, BURST, WINDOW, taken.generation)).exists()


def test_the_lease_works_on_an_fsspec_store_that_is_not_a_local_disk():
    """The object-store path: listing, exclusive create and release go through fsspec only."""
    remote = DataStore(f"memory://lease-test-{time.time_ns()}")
    first = acquire_lease(remote, BURST, WINDOW, "run-1")

    with pytest.raises(LedgerBusyError):
        acquire_lease(remote, BURST, WINDOW, "run-2", wait_seconds=0)
    first.release()

    with held_ledger(remote, BURST, WINDOW, "run-2", wait_seconds=0) as second:
        assert second.generation == first.generation + 1
    prefix = remote.coherence_job_lease_prefix(BURST, WINDOW)
    assert remote.fs.glob(f"{prefix}*") == [lease_path(remote, BURST, WINDOW, second.generation)]


def test_a_released_partition_leaves_no_lease_file_beside_its_ledger_and_old_ones_are_removed(
    store: DataStore,
):
    ledger_folder = Path(store.coherence_job_path(BURST, WINDOW)).parent
    ledger_folder.mkdir(parents=True)
    (ledger_folder / f"{WINDOW}.json").write_text("{}")
    (ledger_folder / f"{WINDOW}.lease-000000007").write_text("{}")  # left by a version before _leases/

    for holder in ("run-1", "run-2"):
        with held_ledger(store, BURST, WINDOW, holder):
            pass

    assert sorted(path.name for path in ledger_folder.iterdir()) == [f"{WINDOW}.json"]
    assert lease_files(store) == [f"{WINDOW}.lease-000000002"]  # the count, kept apart in _leases/
