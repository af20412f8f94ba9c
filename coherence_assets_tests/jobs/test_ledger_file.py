"""A corrupt ledger file is named and skipped; the other partitions' ledgers are read as usual."""

from pathlib import Path

import pytest

from coherence_assets.jobs.ledger import CorruptLedgerError, Ledger
from coherence_assets.jobs.ledger_index import read_all_ledgers
from coherence_assets.storage import DataStore

GOOD = Ledger("t015_030343_iw2", "2023-07-01", "http://backend")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"burst": "t015_030343_iw2", "window": "2023-', "not JSON"),
        (b"\x00\x00\x00", "not JSON"),
        (b"[1, 2]", "not a ledger"),
        (b'{"burst": "t015_030343_iw2", "window": "2023-07-01"}', "not a ledger"),
        (b'{"burst": "b", "window": "w", "backend_url": "u", "jobs": [{"title": "x"}]}', "not a ledger"),
    ],
)
def test_anything_but_a_whole_ledger_is_a_corrupt_ledger_error_naming_the_file(content: bytes, reason: str):
    with pytest.raises(CorruptLedgerError) as raised:
        Ledger.from_bytes(content, "data/coherence_job/b/w.json")

    message = str(raised.value)
    assert message.startswith(f"data/coherence_job/b/w.json is not a readable job ledger ({reason}")
    assert "materialised for it, which rebuilds the ledger" in message and "\n" not in message


def test_read_all_ledgers_reports_a_corrupt_ledger_once_and_returns_the_others(tmp_path: Path):
    store = DataStore(str(tmp_path))
    store.write_json(store.coherence_job_path(GOOD.burst, GOOD.window), GOOD.to_json())
    corrupt = store.coherence_job_path("t015_030344_iw2", "2023-07-01")
    store.write_bytes_atomically(corrupt, b'{"burst": "t015_030344_iw2", "jo')
    reports: list[str] = []

    ledgers = read_all_ledgers(store, report=reports.append)

    assert [(ledger.burst, ledger.window) for ledger in ledgers] == [(GOOD.burst, GOOD.window)]
    assert len(reports) == 1 and reports[0].startswith(f"{corrupt} is not a readable job ledger")
