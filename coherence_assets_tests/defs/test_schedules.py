"""``current_window_schedule``: every day, one ``submit_coherence_jobs`` run per burst for the current window."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from coherence_assets.windows import window_key_of
from coherence_assets_tests.defs.conftest import BURST, Chain, write_burst_file

SCHEDULE = "current_window_schedule"
NEIGHBOUR = "t015_030344_iw2"


def evaluate(chain: Chain, scheduled_execution_time: dt.datetime):
    schedule = chain.defs.resolve_schedule_def(SCHEDULE)
    # entered as a context manager, so the resources it builds are torn down with it
    with (
        dg.build_schedule_context(
            instance=chain.instance,
            scheduled_execution_time=scheduled_execution_time,
            repository_def=chain.defs.get_repository_def(),
            resources=chain.defs.resources,
        ) as context,
        dg.partition_loading_context(dynamic_partitions_store=chain.instance),
    ):
        return schedule.evaluate_tick(context)


def test_the_schedule_requests_one_run_per_burst_partition_for_the_window_of_the_tick(
    chain: Chain, tmp_path: Path
):
    chain.refresh_bursts(write_burst_file(tmp_path / "two.geojson", [BURST, NEIGHBOUR]))

    data = evaluate(chain, dt.datetime(2023, 8, 15, 6, tzinfo=dt.UTC))

    assert [(request.partition_key, request.run_key) for request in data.run_requests] == [
        (f"{BURST}|2023-07-01", f"{BURST}|2023-07-01|2023-08-15"),
        (f"{NEIGHBOUR}|2023-07-01", f"{NEIGHBOUR}|2023-07-01|2023-08-15"),
    ]


@pytest.mark.stand_in
def test_the_current_window_requested_today_is_a_partition_that_runs(chain: Chain):
    """The window still in progress is the one the daily schedule exists for: it must be runnable."""
    chain.refresh_bursts()
    now = dt.datetime.now(dt.UTC).replace(hour=6, minute=0, second=0, microsecond=0)

    data = evaluate(chain, now)

    (request,) = data.run_requests
    assert request.partition_key == f"{BURST}|{window_key_of(now.date())}"
    job = chain.defs.resolve_job_def("submit_coherence_jobs")
    with dg.partition_loading_context(dynamic_partitions_store=chain.instance):
        assert job.partitions_def.has_partition_key(request.partition_key)
    assert chain.submit(request.partition_key).success


def test_the_schedule_skips_with_a_reason_when_there_are_no_bursts(chain: Chain):
    data = evaluate(chain, dt.datetime(2023, 8, 15, 6, tzinfo=dt.UTC))

    assert not data.run_requests
    assert "no burst partitions yet" in data.skip_message


def test_early_in_a_quarter_the_previous_window_is_refreshed_too_for_its_edge_pairs(chain: Chain):
    """A pair of late September needs its October secondary: the July window still grows in October."""
    chain.refresh_bursts()

    early = evaluate(chain, dt.datetime(2023, 10, 10, 6, tzinfo=dt.UTC))
    later = evaluate(chain, dt.datetime(2023, 10, 20, 6, tzinfo=dt.UTC))

    assert [request.partition_key for request in early.run_requests] == [
        f"{BURST}|2023-07-01",
        f"{BURST}|2023-10-01",
    ]
    assert [request.partition_key for request in later.run_requests] == [f"{BURST}|2023-10-01"]
