"""Which pairs a re-run of ``coherence_job`` submits: only new ones, and failed ones a bounded number of times."""

import datetime as dt

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.jobs.ledger import Ledger
from coherence_assets.jobs.processes import CoherenceRequest
from coherence_assets.jobs.submission import enter_job, plan_submissions, refresh_statuses

BURST = BurstKey(15, 30343, "IW2")


def pairs(count: int, first_day: int = 0):
    start = dt.date(2023, 7, 5)
    return [
        (start + dt.timedelta(days=12 * i), start + dt.timedelta(days=12 * i + 12))
        for i in range(first_day, first_day + count)
    ]


def ledger_with_job(job_pairs, status, attempt=1):
    ledger = Ledger("t015_030343_iw2", "2023-07-01", "http://backend")
    plan = plan_submissions(ledger, job_pairs, max_attempts=2)
    record = enter_job(ledger, BURST, CoherenceRequest(), plan.new_batches[0], attempt=attempt)
    record.job_id, record.status = "j-1", status
    return ledger


def test_new_ledger_submits_every_pair_in_one_job():
    plan = plan_submissions(Ledger("b", "w", "u"), pairs(4), max_attempts=2)
    assert [len(batch.pairs) for batch in plan.new_batches] == [4]


def test_rerun_with_nothing_new_submits_nothing():
    for status in ("created", "queued", "running", "finished", "not_created"):
        plan = plan_submissions(ledger_with_job(pairs(4), status), pairs(4), max_attempts=2)
        assert plan.new_batches == [] and plan.resubmissions == [], status


def test_new_acquisitions_submit_only_the_new_pairs():
    plan = plan_submissions(ledger_with_job(pairs(4), "finished"), pairs(6), max_attempts=2)
    assert [batch.pairs for batch in plan.new_batches] == [tuple(pairs(2, first_day=4))]


def test_error_is_resubmitted_then_given_up():
    plan = plan_submissions(ledger_with_job(pairs(3), "error", attempt=1), pairs(3), max_attempts=2)
    assert [(job.job_id, batch.pairs) for job, batch in plan.resubmissions] == [("j-1", tuple(pairs(3)))]
    assert plan.new_batches == []
    plan = plan_submissions(ledger_with_job(pairs(3), "error", attempt=2), pairs(3), max_attempts=2)
    assert plan.resubmissions == [] and plan.new_batches == []
    assert [job.job_id for job in plan.given_up] == ["j-1"]


def test_replaced_error_job_is_not_resubmitted_again():
    ledger = ledger_with_job(pairs(2), "error")
    plan = plan_submissions(ledger, pairs(2), max_attempts=3)
    retry = enter_job(ledger, BURST, CoherenceRequest(), plan.resubmissions[0][1], attempt=2, replaces="j-1")
    retry.job_id, retry.status = "j-2", "running"
    plan = plan_submissions(ledger, pairs(2), max_attempts=3)
    assert plan.resubmissions == [] and plan.new_batches == []


def test_a_job_created_by_a_dead_run_is_adopted_by_title():
    ledger = Ledger("t015_030343_iw2", "2023-07-01", "http://backend")
    plan = plan_submissions(ledger, pairs(2), max_attempts=2)
    record = enter_job(ledger, BURST, CoherenceRequest(), plan.new_batches[0])
    refresh_statuses(ledger, {"j-9": {"id": "j-9", "title": record.title, "status": "running"}})
    assert (record.job_id, record.status) == ("j-9", "running")
    assert "sar_coherence_T015_IW2_30343 2023-07-01" in record.title


def test_ledger_round_trips_through_json():
    ledger = ledger_with_job(pairs(2), "finished")
    assert Ledger.from_json(ledger.to_json()) == ledger
