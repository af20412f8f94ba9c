"""Which listed jobs of ours no ledger owns, and whether each is adopted or deleted."""

import datetime as dt

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.jobs.batching import PairBatch
from coherence_assets.jobs.ledger import Ledger
from coherence_assets.jobs.orphan_jobs import Adoption, Deletion, decide_orphans
from coherence_assets.jobs.processes import CoherenceRequest
from coherence_assets.jobs.submission import enter_job, job_title, parse_job_title

BURST = BurstKey(15, 30343, "IW2")
WINDOW = "2023-07-01"
NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
GRACE = dt.timedelta(minutes=5)
PAIRS = ((dt.date(2023, 7, 5), dt.date(2023, 7, 17)),)


def ledger_with_record(job_id: str | None, window: str = WINDOW) -> Ledger:
    ledger = Ledger(str(BURST), window, "http://backend")
    record = enter_job(ledger, BURST, CoherenceRequest(), PairBatch(12, PAIRS))
    record.job_id = job_id
    record.status = "created" if job_id else "not_created"
    return ledger


def listed(job_id: str, title: str, status: str = "created", age_minutes: float = 10) -> dict:
    created = (NOW - dt.timedelta(minutes=age_minutes)).isoformat().replace("+00:00", "Z")
    return {"id": job_id, "title": title, "status": status, "created": created}


def listing(*jobs: dict) -> dict[str, dict]:
    return {job["id"]: job for job in jobs}


def test_titles_of_ours_name_their_partition_and_submission_and_others_name_none():
    titled = parse_job_title(job_title(BURST, WINDOW, "0123456789ab"))
    assert (titled.burst, titled.window, titled.submission_id) == (str(BURST), WINDOW, "0123456789ab")
    assert parse_job_title("my notebook job") is None
    assert parse_job_title(None) is None


def test_a_job_whose_record_waits_for_its_id_is_adopted_whatever_its_age():
    ledger = ledger_with_record(None)
    (record,) = ledger.jobs

    decision = decide_orphans(listing(listed("j-late", record.title, age_minutes=0)), [ledger], NOW, GRACE)

    assert decision.adopt == [
        Adoption(str(BURST), WINDOW, record.submission_id, "j-late", "created", decision.adopt[0].created)
    ]
    assert decision.delete == []


def test_of_two_jobs_of_one_waiting_submission_the_older_is_adopted_and_the_twin_deleted():
    ledger = ledger_with_record(None)
    title = ledger.jobs[0].title
    jobs = listing(listed("j-new", title, age_minutes=6), listed("j-old", title, age_minutes=8))

    decision = decide_orphans(jobs, [ledger], NOW, GRACE)

    assert [adoption.job_id for adoption in decision.adopt] == ["j-old"]
    assert [deletion.job_id for deletion in decision.delete] == ["j-new"]


def test_a_created_twin_of_a_recorded_job_is_deleted_once_older_than_the_grace_period():
    ledger = ledger_with_record("j-recorded")
    title = ledger.jobs[0].title
    owned = listed("j-recorded", title)

    young = decide_orphans(listing(owned, listed("j-twin", title, age_minutes=1)), [ledger], NOW, GRACE)
    old = decide_orphans(listing(owned, listed("j-twin", title, age_minutes=6)), [ledger], NOW, GRACE)

    assert young.delete == [] and young.adopt == []
    assert old.delete == [Deletion(str(BURST), WINDOW, "j-twin", title, "j-recorded")]


def test_started_jobs_other_titles_and_untracked_partitions_are_left_alone():
    ledger = ledger_with_record("j-recorded")
    title = ledger.jobs[0].title
    jobs = listing(
        listed("j-running-twin", title, status="running"),
        listed("j-notebook", "my notebook job"),
        listed("j-other-window", job_title(BURST, "2023-10-01", "fedcba987654")),
        listed("j-no-created", title) | {"created": None},
    )

    decision = decide_orphans(jobs, [ledger], NOW, GRACE)

    assert decision.adopt == [] and decision.delete == []


def test_a_submission_no_ledger_of_a_tracked_partition_knows_is_deleted():
    ledger = ledger_with_record("j-recorded")
    stray = job_title(BURST, WINDOW, "aaaaaaaaaaaa")

    decision = decide_orphans(listing(listed("j-stray", stray)), [ledger], NOW, GRACE)

    assert decision.delete == [Deletion(str(BURST), WINDOW, "j-stray", stray, None)]
