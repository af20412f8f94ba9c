"""The ledger as a Markdown table: one row per job, replacements and pair ranges included."""

import datetime as dt

from coherence_assets.jobs.ledger import JobRecord, Ledger
from coherence_assets.jobs.ledger_table import NO_JOBS, ledger_markdown


def record(
    job_id: str | None, status: str, pairs, attempt: int = 1, replaces: str | None = None
) -> JobRecord:
    return JobRecord(
        submission_id=f"s-{job_id}",
        title=f"title {job_id}",
        process="sentinel1_sar_coherence",
        baseline_days=12,
        pairs=pairs,
        arguments={},
        attempt=attempt,
        replaces=replaces,
        job_id=job_id,
        status=status,
        submitted_at="2026-11-27T05:00:00Z",
    )


def rows(markdown: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown.splitlines()[2:]]


def test_every_job_is_a_row_with_its_status_attempt_replacement_and_pairs():
    july = [(dt.date(2023, 7, day), dt.date(2023, 7, day + 12)) for day in (6, 18)]
    august = [(dt.date(2023, 8, 11), dt.date(2023, 8, 23))]
    ledger = Ledger(
        burst="t015_030343_iw2",
        window="2023-07-01",
        backend_url="http://127.0.0.1:8712",
        jobs=[
            record("j-1", "error", july),
            record("j-2", "finished", july, attempt=2, replaces="j-1"),
            record(None, "not_created", august),
        ],
    )

    table = rows(ledger_markdown(ledger))

    assert [row[:5] for row in table] == [
        ["j-1", "error", "1", "", "2"],
        ["j-2", "finished", "2", "j-1", "2"],
        ["(not created: title None)", "not_created", "1", "", "1"],
    ]
    assert table[0][5] == "2023-07-06 .. 2023-07-18"
    assert table[2][5] == "2023-08-11"


def test_an_empty_ledger_says_so():
    ledger = Ledger(burst="t015_030343_iw2", window="2023-07-01", backend_url="http://127.0.0.1:8712")

    assert ledger_markdown(ledger) == NO_JOBS
