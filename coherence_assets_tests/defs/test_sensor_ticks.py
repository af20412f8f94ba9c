"""``sensor_ticks``: a sensor tick handled as the daemon handles it, on a real instance."""

import dagster as dg

from coherence_assets.defs.sensor_ticks import (
    RUN_KEY_TAG,
    SENSOR_NAME_TAG,
    evaluate_sensor,
    launch_requested_runs,
    record_asset_events,
    runs_with_key,
)


@dg.op
def do_nothing() -> None:
    pass


@dg.job
def noted() -> None:
    do_nothing()


@dg.sensor(job=noted)
def repeating_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Asks for run key ``a`` twice and ``b`` once on every tick, without naming the job."""
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=key) for key in ("a", "a", "b")],
        asset_events=[dg.AssetObservation(asset_key="watched", metadata={"tick": context.cursor or "first"})],
        cursor="after-first",
    )


def test_each_run_key_runs_once_across_ticks_with_the_daemons_tags(tmp_path):
    """Runs are queued, not run, while the tick is handled (as the benchmark's run worker and the
    daemon's run queue do): the run key repeated within the tick must still run once."""
    defs = dg.Definitions(jobs=[noted], sensors=[repeating_sensor])
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:

        def queue(job_name: str, partition: str | None, tags: dict[str, str]) -> tuple[str, dict[str, str]]:
            return job_name, tags

        def run(job_name: str, tags: dict[str, str]) -> dg.ExecuteInProcessResult:
            return defs.resolve_job_def(job_name).execute_in_process(instance=instance, tags=tags)

        first = evaluate_sensor(defs, instance, "repeating_sensor")
        record_asset_events(instance, first)
        queued = launch_requested_runs(instance, first, queue)
        results = [run(job_name, tags) for job_name, tags in queued]
        later = evaluate_sensor(defs, instance, "repeating_sensor", first.cursor)
        queued_later = launch_requested_runs(instance, later, queue)

        assert [tags[RUN_KEY_TAG] for _, tags in queued] == ["a", "b"]
        assert {tags[SENSOR_NAME_TAG] for _, tags in queued} == {"repeating_sensor"}
        assert all(result.success and result.job_def.name == "noted" for result in results)
        assert queued_later == []
        assert [len(runs_with_key(instance, "repeating_sensor", key)) for key in ("a", "b")] == [1, 1]
        assert runs_with_key(instance, "another_sensor", "a") == []
        assert later.cursor == "after-first"
        recorded = instance.fetch_observations(dg.AssetKey("watched"), limit=10).records
        assert [record.asset_observation.metadata["tick"].value for record in recorded] == ["first"]
