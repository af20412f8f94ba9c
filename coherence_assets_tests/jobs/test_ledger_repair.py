"""A ledger rebuilt from the backend's job descriptions covers what the jobs compute, and no more."""

import datetime as dt

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.jobs.batching import PairBatch
from coherence_assets.jobs.ledger import Ledger
from coherence_assets.jobs.ledger_repair import rebuild_ledger
from coherence_assets.jobs.processes import SAR_COHERENCE_PARALLEL, SENTINEL1_SAR_COHERENCE, CoherenceRequest
from coherence_assets.jobs.submission import enter_job, plan_submissions

BURST = BurstKey(15, 30343, "IW2")
WINDOW = "2023-07-01"
START = dt.date(2023, 7, 5)
PAIRS = [(START + dt.timedelta(days=12 * i), START + dt.timedelta(days=12 * i + 12)) for i in range(6)]


def described(job_id: str, record, status: str, minute: int) -> dict:
    """A ``GET /jobs/{id}`` body for the job a ledger record describes."""
    return {
        "id": job_id,
        "title": record.title,
        "status": status,
        "created": f"2026-01-01T12:{minute:02d}:00Z",
        "process": {
            "process_graph": {"node1": {"process_id": record.process, "arguments": record.arguments}}
        },
    }


def entered(pairs, process: str = SENTINEL1_SAR_COHERENCE):
    ledger = Ledger(str(BURST), WINDOW, "http://backend")
    return enter_job(ledger, BURST, CoherenceRequest(process=process), PairBatch(12, tuple(pairs)))


def test_each_job_covers_the_table_pairs_inside_its_extent_and_they_are_not_submitted_again():
    first, second = entered(PAIRS[:2]), entered(PAIRS[4:], process=SAR_COHERENCE_PARALLEL)
    jobs = [described("j-2", second, "running", 2), described("j-1", first, "finished", 1)]

    ledger = rebuild_ledger(str(BURST), WINDOW, "http://backend", PAIRS, jobs)

    assert [(record.job_id, record.status, record.pairs) for record in ledger.jobs] == [
        ("j-1", "finished", PAIRS[:2]),
        ("j-2", "running", PAIRS[4:]),
    ]
    assert [record.submission_id for record in ledger.jobs] == [first.submission_id, second.submission_id]
    plan = plan_submissions(ledger, PAIRS, max_attempts=2)
    assert [list(batch.pairs) for batch in plan.new_batches] == [PAIRS[2:4]]


def test_a_resubmission_counts_as_the_next_attempt_and_a_created_twin_is_left_out():
    failed, retry = entered(PAIRS), entered(PAIRS)
    other_window = enter_job(
        Ledger(str(BURST), "2023-10-01", "u"), BURST, CoherenceRequest(), PairBatch(12, tuple(PAIRS))
    )
    jobs = [
        described("j-failed", failed, "error", 1),
        described("j-retry", retry, "queued", 2),
        described("j-twin", retry, "created", 3),
        described("j-other-window", other_window, "finished", 4),
        {"id": "j-notebook", "title": "mine", "status": "finished", "process": {}},
    ]

    ledger = rebuild_ledger(str(BURST), WINDOW, "http://backend", PAIRS, jobs)

    assert [(record.job_id, record.attempt, record.replaces) for record in ledger.jobs] == [
        ("j-failed", 1, None),
        ("j-retry", 2, "j-failed"),
    ]
    plan = plan_submissions(ledger, PAIRS, max_attempts=2)
    assert plan.new_batches == [] and plan.resubmissions == []
