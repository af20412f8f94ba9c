"""The sensor's pure decisions: what a tick costs, what it requests, and that its memory stays small."""

from __future__ import annotations

import copy
import datetime as dt

import openeo

from coherence_assets.jobs.ledger import RESOLVED, RESUBMITTING, JobRecord, Ledger
from coherence_assets.jobs.ledger_index import DonePartition
from coherence_assets.jobs.listing import JobListing, list_jobs_until_seen
from coherence_assets.jobs.stuck import StuckKind, StuckReason
from coherence_assets.jobs.tick import (
    TickCursor,
    TickPolicy,
    awaited_jobs,
    inherit_done_records,
    plan_tick,
    stuck_reasons,
    stuck_work,
)
from coherence_assets_tests.embedded_openeo.api_client import ApiClient

PAIR = (dt.date(2023, 7, 5), dt.date(2023, 7, 17))
PARTITION_KEY = "t015_030343_iw2|2023-07-01"
POLICY = TickPolicy(
    max_attempts=2,
    lost_after_ticks=3,
    max_download_attempts=2,
    download_retry_seconds=60,
    max_resubmit_runs=2,
    resubmit_retry_seconds=60,
)


def ledger(window: str, *jobs: tuple[str, int]) -> Ledger:
    records = [
        JobRecord(
            f"s-{job_id}", f"title {job_id}", "p", 12, [PAIR], {}, attempt, job_id=job_id, status="created"
        )
        for job_id, attempt in jobs
    ]
    return Ledger("t015_030343_iw2", window, "http://backend", records)


def listing(complete: bool = True, **statuses: str) -> JobListing:
    return JobListing(
        {job_id: {"id": job_id, "status": status} for job_id, status in statuses.items()}, complete, 1
    )


def no_raster(job) -> list:
    return list(job.record.pairs)


def all_rasters(job) -> list:
    return []


def test_with_500_jobs_of_history_a_tick_lists_one_page_while_the_awaited_jobs_are_on_it(backend):
    api = ApiClient(backend.url)
    for index in range(500):
        api.create_job(title=f"history {index}")
    awaited = {api.create_job(title=f"awaited {index}") for index in range(3)}
    connection = openeo.connect(backend.url).authenticate_basic("local", "local")

    recent = list_jobs_until_seen(connection, awaited)
    everything = list_jobs_until_seen(connection, None)

    assert recent.requests == 1 and awaited <= recent.jobs.keys() and not recent.complete
    assert everything.requests == 6 and len(everything.jobs) == 503 and everything.complete


def test_a_few_awaited_jobs_older_than_page_one_are_described_directly_and_an_unknown_one_proven_absent(
    backend,
):
    api = ApiClient(backend.url)
    old = api.create_job(title="old, still awaited")
    for index in range(150):
        api.create_job(title=f"history {index}")
    recent = api.create_job(title="recent")
    connection = openeo.connect(backend.url).authenticate_basic("local", "local")

    listing = list_jobs_until_seen(connection, {old, recent, "j-the-backend-never-had"})

    assert listing.requests == 3  # page one, then the two missing jobs described: not two more pages
    assert listing.jobs[old]["status"] == "created" and recent in listing.jobs
    assert listing.proves_absent("j-the-backend-never-had") and not listing.proves_absent("j-not-asked")


def test_a_finished_job_is_downloaded_again_spaced_and_bounded_then_reported_stuck():
    ledgers = [ledger("2023-07-01", ("j1", 1))]
    finished = listing(j1="finished")
    first = plan_tick(ledgers, finished, TickCursor(), POLICY, 1000.0, no_raster, set())
    too_soon = plan_tick(first.ledgers, finished, first.cursor, POLICY, 1030.0, no_raster, set())
    running = plan_tick(
        first.ledgers, finished, first.cursor, POLICY, 1070.0, no_raster, {"t015_030343_iw2|2023-07-01"}
    )
    second = plan_tick(first.ledgers, finished, first.cursor, POLICY, 1070.0, no_raster, set())
    used_up = plan_tick(second.ledgers, finished, second.cursor, POLICY, 1200.0, no_raster, set())

    assert [request.attempt for request in first.downloads] == [1]
    assert too_soon.downloads == [] and running.downloads == []
    assert [request.attempt for request in second.downloads] == [2]
    assert used_up.downloads == [] and [job.record.job_id for job in used_up.downloads_given_up] == ["j1"]
    (reason,) = used_up.done_partitions["t015_030343_iw2|2023-07-01"]
    assert "failed 2 time(s)" in reason.line() and "2023-07-05/2023-07-17" in reason.line()
    assert used_up.cursor == TickCursor()  # the done partition leaves nothing behind


def test_a_job_is_reported_finished_once_and_downloaded_once_when_its_last_pair_has_a_raster():
    ledgers = [ledger("2023-07-01", ("j1", 1))]
    first = plan_tick(ledgers, listing(j1="finished"), TickCursor(), POLICY, 1000.0, no_raster, set())
    waiting = plan_tick(
        first.ledgers, listing(j1="finished"), first.cursor, POLICY, 1010.0, no_raster, {PARTITION_KEY}
    )
    done = plan_tick(first.ledgers, listing(j1="finished"), first.cursor, POLICY, 1020.0, all_rasters, set())
    at_once = plan_tick(ledgers, listing(j1="finished"), TickCursor(), POLICY, 1000.0, all_rasters, set())

    assert [job.record.job_id for job in first.finished] == ["j1"] and first.downloaded == []
    assert waiting.finished == [] and waiting.downloaded == []
    assert done.finished == [] and [job.record.job_id for job in done.downloaded] == ["j1"]
    assert [job.record.job_id for job in at_once.finished + at_once.downloaded] == ["j1", "j1"]


def test_the_cursor_stays_empty_as_partitions_finish_and_awaits_nothing_done():
    ledgers = [ledger(f"20{year}-07-01", (f"j{year}", 1)) for year in range(10, 30)]
    statuses = {f"j{year}": "finished" for year in range(10, 30)}

    plan = plan_tick(ledgers, listing(**statuses), TickCursor(), POLICY, 0.0, all_rasters, set())

    assert plan.downloads == []  # the rasters are there: nothing to fetch
    assert len(plan.done_partitions) == 20
    assert plan.cursor == TickCursor()
    assert awaited_jobs(plan.ledgers) == set()  # the ledgers say each job was acted on


def test_a_job_missing_from_complete_listings_is_lost_after_the_configured_ticks():
    ledgers = [
        ledger("2023-07-01", ("j1", 1)),
        ledger("2023-10-01", ("j2", 2)),
        ledger("2024-01-01", ("j3", 1)),
    ]
    with_rasters = {"j3"}
    cursor = TickCursor()
    outcomes = []
    for _ in range(POLICY.lost_after_ticks):
        incomplete = plan_tick(ledgers, listing(complete=False), cursor, POLICY, 0.0, no_raster, set())
        assert incomplete.changed == []
        assert (
            incomplete.lost == [] and incomplete.cursor.unseen == cursor.unseen
        )  # a partial listing proves nothing
        plan = plan_tick(
            ledgers,
            listing(),
            cursor,
            POLICY,
            0.0,
            lambda job: [] if job.record.job_id in with_rasters else no_raster(job),
            set(),
        )
        cursor, ledgers = plan.cursor, plan.ledgers
        outcomes.append({lost.job.record.job_id: lost.outcome for lost in plan.lost})

    assert outcomes == [{}, {}, {"j1": "resubmit", "j2": "given_up", "j3": "done"}]
    assert set(plan.done_partitions) == {"t015_030343_iw2|2023-10-01", "t015_030343_iw2|2024-01-01"}
    assert ledgers[0].jobs[0].progress.handled == RESUBMITTING  # done once the resubmission replaces it
    assert [job.status for ledger in ledgers for job in ledger.jobs] == ["lost", "lost", "finished"]
    (line,) = stuck_work(
        [DonePartition(key, tuple(reasons)) for key, reasons in plan.done_partitions.items()], ledgers[:1]
    )
    assert line.startswith("t015_030343_iw2|2023-10-01: job j2 is no longer listed")


def test_created_jobs_are_candidates_to_start_and_handled_ones_are_not_awaited():
    ledgers = [ledger("2023-07-01", ("j1", 1), ("j2", 1))]
    ledgers[0].jobs[0].progress.handled = RESOLVED

    plan = plan_tick(ledgers, listing(j2="created"), TickCursor(), POLICY, 0.0, all_rasters, set())

    assert awaited_jobs(ledgers) == {"j2"}
    assert plan.to_start == ["j2"]
    assert plan.done_partitions == {}


def test_a_rewritten_done_ledger_awaits_only_its_new_jobs_and_keeps_what_is_still_stuck():
    rewritten = ledger("2023-07-01", ("j1", 1), ("j2", 2), ("j3", 1))
    rewritten.jobs[2].replaces = "j1"
    entry = DonePartition(
        "t015_030343_iw2|2023-07-01",
        (StuckReason(StuckKind.FAILED, "j1", 1), StuckReason(StuckKind.FAILED, "j2", 2)),
        ("j1", "j2"),
    )

    inherit_done_records([(entry, rewritten)])

    assert awaited_jobs([rewritten]) == {"j3"}
    assert stuck_reasons(rewritten) == [StuckReason(StuckKind.FAILED, "j2", 2)]


def test_the_cursor_keeps_only_what_a_tick_needs_and_a_done_record_is_read_back_not_written():
    rewritten = ledger("2023-07-01", ("j1", 2), ("j2", 1))
    recorded = StuckReason(StuckKind.FAILED, "j1", 2, (PAIR,))
    entry = DonePartition(PARTITION_KEY, (recorded,), ("j1",))  # what the partition's marker carries
    inherit_done_records([(entry, rewritten)])

    plan = plan_tick([rewritten], listing(j2="running"), TickCursor(), POLICY, 0.0, no_raster, set())

    assert plan.cursor == TickCursor() and plan.changed == []  # j2 still runs: all else is in the record
    again = ledger("2023-07-01", ("j1", 2), ("j2", 1))  # the same ledger read again next tick
    inherit_done_records([(entry, again)])
    assert awaited_jobs([again]) == {"j2"} and stuck_reasons(again) == [recorded]


def test_a_resubmission_whose_run_failed_is_requested_again_until_the_replacement_shows_or_tries_run_out():
    failed = [ledger("2023-07-01", ("j1", 1))]
    first = plan_tick(failed, listing(j1="error"), TickCursor(), POLICY, 1000.0, no_raster, set())
    running = plan_tick(
        first.ledgers,
        listing(),
        first.cursor,
        POLICY,
        1100.0,
        no_raster,
        set(),
        resubmitting=frozenset({PARTITION_KEY}),
    )
    again = plan_tick(first.ledgers, listing(), first.cursor, POLICY, 1100.0, no_raster, set())
    used_up = plan_tick(again.ledgers, listing(), again.cursor, POLICY, 1200.0, no_raster, set())
    (replaced,) = copy.deepcopy(again.ledgers)  # the resubmit run enters the replacement
    replaced.jobs += ledger("2023-07-01", ("j2", 2)).jobs
    replaced.jobs[1].replaces = "j1"
    healed = plan_tick([replaced], listing(j2="created"), again.cursor, POLICY, 1200.0, no_raster, set())

    assert [job.record.job_id for job in first.to_resubmit] == ["j1"]
    assert running.resubmit_again == []
    assert [(request.job.record.job_id, request.attempt) for request in again.resubmit_again] == [("j1", 2)]
    assert [job.record.job_id for job in used_up.resubmits_given_up] == ["j1"]
    assert "resubmitting job j1 failed 2 time(s)" in used_up.done_partitions[PARTITION_KEY][0].line()
    assert healed.resubmit_again == [] and healed.ledgers[0].jobs[0].progress.resubmits is None
    assert healed.to_start == ["j2"]


def test_a_finished_job_awaiting_its_download_is_still_compared_with_the_backend_and_lost_if_gone():
    ledgers = [ledger("2023-07-01", ("j1", 1))]
    first = plan_tick(ledgers, listing(j1="finished"), TickCursor(), POLICY, 1000.0, no_raster, set())
    assert awaited_jobs(first.ledgers) == {"j1"}  # its download is pending

    ledgers, cursor, plans = first.ledgers, first.cursor, []
    for tick in range(POLICY.lost_after_ticks):
        plans.append(plan_tick(ledgers, listing(), cursor, POLICY, 2000.0 + tick, no_raster, set()))
        ledgers, cursor = plans[-1].ledgers, plans[-1].cursor

    assert all(plan.downloads == [] for plan in plans)  # no download of a job the backend may have lost
    (lost,) = plans[-1].lost
    assert (lost.job.record.job_id, lost.outcome, lost.missing_pairs) == ("j1", "resubmit", (PAIR,))
    progress = ledgers[0].jobs[0].progress
    assert progress.downloads is None and progress.handled == RESUBMITTING


def test_a_finished_job_whose_partition_is_downloading_is_judged_after_the_run_not_closed_before():
    ledgers = [ledger("2023-07-01", ("j1", 1))]

    during = plan_tick(
        ledgers, listing(j1="finished"), TickCursor(), POLICY, 0.0, no_raster, {"t015_030343_iw2|2023-07-01"}
    )
    after = plan_tick(during.ledgers, listing(j1="finished"), during.cursor, POLICY, 1.0, no_raster, set())

    assert during.done_partitions == {} and during.downloads == []
    assert [request.attempt for request in after.downloads] == [1]


def test_cursor_entries_of_partitions_closed_elsewhere_are_dropped_so_the_sensor_goes_quiet():
    """Another Dagster instance on the same data folder closed 2023-07-01: its ledger is no longer active here."""
    still_active = ledger("2023-10-01", ("j2", 1))
    cursor = TickCursor(unseen={"j1": 1, "j0": 2, "j2": 1}, last_start_at=5.0)

    plan = plan_tick([still_active], listing(j2="finished"), cursor, POLICY, 30.0, no_raster, set())
    quiet = plan_tick([], listing(), cursor, POLICY, 30.0, no_raster, set())

    assert plan.cursor == TickCursor(last_start_at=5.0) and quiet.cursor == TickCursor(last_start_at=5.0)
    assert plan.ledgers[0].jobs[0].progress.handled == RESOLVED and plan.changed == plan.ledgers


def test_a_stuck_line_names_the_first_pairs_and_where_the_rest_are():
    pairs = [
        (dt.date(2023, 7, 1) + dt.timedelta(days=6 * n), dt.date(2023, 7, 13) + dt.timedelta(days=6 * n))
        for n in range(16)
    ]
    many = ledger("2023-07-01", ("j1", 2))
    many.jobs[0].pairs = pairs

    plan = plan_tick([many], listing(j1="error"), TickCursor(), POLICY, 0.0, no_raster, set())

    (line,) = stuck_work(
        [DonePartition(key, tuple(reasons)) for key, reasons in plan.done_partitions.items()]
    )
    assert (
        "16 pair(s)" in line
        and "2023-07-01/2023-07-13, 2023-07-07/2023-07-19, 2023-07-13/2023-07-25 and 13 more" in line
    )
    assert "every_pair_has_a_raster" in line and len(line) < 400 and "\n" not in line


def test_a_lost_job_whose_ledger_a_run_holds_is_decided_again_next_tick_and_its_partition_stays_open():
    ledgers = [ledger("2023-07-01", ("j1", 1))]
    cursor = TickCursor(unseen={"j1": POLICY.lost_after_ticks - 1})

    held = plan_tick(
        ledgers,
        listing(),
        cursor,
        POLICY,
        0.0,
        no_raster,
        set(),
        busy=frozenset({"t015_030343_iw2|2023-07-01"}),
    )
    free = plan_tick(ledgers, listing(), held.cursor, POLICY, 0.0, no_raster, set())

    assert held.lost == [] and [job.record.job_id for job in held.unseen] == ["j1"]
    assert held.cursor.unseen == {"j1": POLICY.lost_after_ticks - 1} and held.done_partitions == {}
    assert [(lost.job.record.job_id, lost.outcome) for lost in free.lost] == [("j1", "resubmit")]
