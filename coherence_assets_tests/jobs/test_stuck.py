"""Stuck reasons are facts, kept as JSON and worded only when shown."""

from __future__ import annotations

import datetime as dt
import json

from coherence_assets.jobs.ledger import JobRecord, Ledger
from coherence_assets.jobs.ledger_index import DonePartition
from coherence_assets.jobs.stuck import StuckKind, StuckReason
from coherence_assets.jobs.tick import inherit_done_records, stuck_reasons

PAIRS = ((dt.date(2023, 7, 5), dt.date(2023, 7, 17)), (dt.date(2023, 7, 11), dt.date(2023, 7, 23)))


def ledger(*job_ids: str) -> Ledger:
    records = [
        JobRecord(f"s-{job_id}", job_id, "p", 12, [PAIRS[0]], {}, 2, job_id=job_id) for job_id in job_ids
    ]
    return Ledger("t015_030343_iw2", "2023-07-01", "http://backend", records)


def test_every_kind_survives_the_ledger_and_names_its_job_and_pairs_in_one_line():
    reasons = [
        StuckReason(kind, f"j{n}", 2, PAIRS) for n, kind in enumerate(StuckKind) if kind != StuckKind.WORDED
    ]
    kept = ledger(*(reason.job_id for reason in reasons))
    for record, reason in zip(kept.jobs, reasons, strict=True):
        record.progress.stuck = reason

    assert stuck_reasons(Ledger.from_json(json.loads(json.dumps(kept.to_json())))) == reasons
    for reason in reasons:
        line = reason.line()
        assert f"job {reason.job_id}" in line and "\n" not in line and "re-materialise" in line
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

    kept = ledger("j1")
    inherit_done_records([(entry, kept)])
    rewritten.jobs[1].replaces = "j1"
    inherit_done_records([(entry, rewritten)])

    assert stuck_reasons(kept) == list(entry.stuck) and stuck_reasons(rewritten) == []
