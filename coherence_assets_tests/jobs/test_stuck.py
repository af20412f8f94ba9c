"""Stuck reasons are facts, kept as JSON and worded only when shown."""

from __future__ import annotations

import datetime as dt

from coherence_assets.jobs.ledger import JobRecord, Ledger
from coherence_assets.jobs.ledger_index import DonePartition
from coherence_assets.jobs.stuck import StuckKind, StuckReason
from coherence_assets.jobs.tick import TickCursor, resume_rewritten_partitions

PAIRS = ((dt.date(2023, 7, 5), dt.date(2023, 7, 17)), (dt.date(2023, 7, 11), dt.date(2023, 7, 23)))


def ledger(*job_ids: str) -> Ledger:
    records = [
        JobRecord(f"s-{job_id}", job_id, "p", 12, [PAIRS[0]], {}, 2, job_id=job_id) for job_id in job_ids
    ]
    return Ledger("t015_030343_iw2", "2023-07-01", "http://backend", records)


def test_every_kind_survives_the_cursor_and_names_its_job_and_pairs_in_one_line():
    reasons = [StuckReason(kind, "j1", 2, PAIRS) for kind in StuckKind if kind != StuckKind.WORDED]
    cursor = TickCursor(stuck={"t015_030343_iw2|2023-07-01": reasons})

    assert TickCursor.from_json(cursor.to_json()) == cursor
    for reason in reasons:
        line = reason.line()
        assert "job j1" in line and "\n" not in line and "re-materialise" in line
        assert (
            reason.kind in (StuckKind.CANCELED, StuckKind.RESUBMITS_FAILED) or "2023-07-05/2023-07-17" in line
        )


def test_a_line_an_earlier_version_kept_is_shown_as_it_was_and_goes_once_its_job_is_replaced():
    earlier = (
        "job j1 failed 2 time(s), its 1 pair(s) are given up (2023-07-05/2023-07-17): read its error logs"
    )
    entry = DonePartition.from_json({"partition_key": "t015_030343_iw2|2023-07-01", "stuck": [earlier]})
    assert [reason.line() for reason in entry.stuck] == [earlier]
    rewritten = ledger("j1", "j2")

    kept, replaced = TickCursor(), TickCursor()
    resume_rewritten_partitions(kept, [(entry, ledger("j1"))])
    rewritten.jobs[1].replaces = "j1"
    resume_rewritten_partitions(replaced, [(entry, rewritten)])

    assert kept.stuck == {"t015_030343_iw2|2023-07-01": list(entry.stuck)} and replaced.stuck == {}
