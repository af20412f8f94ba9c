"""Sensors: ``openeo_job_sensor`` drives submitted jobs to downloads; ``coherence_cube_sensor`` restacks cubes."""

import datetime as dt
from typing import TYPE_CHECKING, Any

import dagster as dg

from coherence_assets.defs.asset_keys import COHERENCE_CUBE, COHERENCE_JOB, COHERENCE_RASTERS
from coherence_assets.defs.jobs import (
    download_coherence_rasters,
    resubmit_coherence_jobs,
    stack_coherence_cube,
)
from coherence_assets.defs.resources import CoherenceParameters, CoherenceStorage, OpenEOBackend
from coherence_assets.defs.sensor_instance import tick_instance
from coherence_assets.jobs.ledger import CANCELED, ERROR, FINISHED, LOST, QUEUED
from coherence_assets.jobs.ledger_index import TrackedJob
from coherence_assets.jobs.tick import LostOutcome, TickCursor, TickPlan
from coherence_assets.partition_keys import split_partition_key
from coherence_assets.settings import Settings
from coherence_assets.storage import DataFolderUnusable, one_line_store_errors

# the tick's openEO client and raster checks load at the first tick, not with the definitions
if TYPE_CHECKING:
    from coherence_assets.jobs.tick_run import TickRun

JOB_SENSOR = "openeo_job_sensor"  # names of the sensors below (the demo and tests evaluate them)
CUBE_SENSOR = "coherence_cube_sensor"

JOB_ID_TAG = "openeo/job_id"
MAX_LOG_LINES = 20
PARTITION_TAG = "dagster/partition"
IN_PROGRESS_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
# what a run requested for a job is for: the first part of its run key, which must never change
# (a restarted daemon would request the runs of old jobs again)
RASTERS_RUN, RESUBMIT_RUN, GIVEN_UP_RUN = "rasters", "resubmit", "given-up"
LOST_OUTCOMES = {
    LostOutcome.DONE: "no longer listed by the backend; every pair already has a raster, so it is done",
    LostOutcome.RESUBMIT: "no longer listed by the backend (lost); its pairs are resubmitted",
    LostOutcome.GIVEN_UP: "no longer listed by the backend (lost) after its last attempt; its pairs are given up",
}


def openeo_job_sensor(
    context: dg.SensorEvaluationContext,
    openeo_backend: OpenEOBackend,
    storage: CoherenceStorage,
    coherence: CoherenceParameters,
) -> dg.SensorResult | dg.SkipReason:
    from coherence_assets.jobs.tick_run import BackendUnreachableError, run_tick

    try:
        store = storage.store
        with one_line_store_errors():
            store.check_reachable()
            tick = run_tick(
                store,
                TickCursor.from_json(context.cursor),
                openeo_backend.connect,
                openeo_backend.tick_policy(coherence.max_attempts),
                openeo_backend.limits(),
                dt.timedelta(seconds=openeo_backend.orphan_grace_seconds),
                downloading=partitions_with_runs(context.instance, download_coherence_rasters.name),
                resubmitting=frozenset(partitions_with_runs(context.instance, resubmit_coherence_jobs.name)),
                log=context.log,
            )
    except DataFolderUnusable as error:  # its one line, not a traceback in the tick's history
        return dg.SkipReason(f"{error}; the cursor is kept and the next tick tries again")
    except BackendUnreachableError as error:
        openeo_backend.forget_connection()
        return dg.SkipReason(
            f"openEO backend {openeo_backend.root_url} did not answer ({error}); "
            "nothing changed, the next tick tries again"
        )
    if tick is None:
        return dg.SkipReason("no coherence_job ledgers yet: materialise coherence_job first")
    return dg.SensorResult(
        run_requests=tick_run_requests(tick.plan),
        asset_events=tick_observations(tick),
        cursor=tick.plan.cursor.to_json(),
    )


def tick_run_requests(plan: TickPlan) -> list[dg.RunRequest]:
    """Downloads of finished jobs, resubmissions of failed and lost ones, and a download run for a
    given-up job's partition, whose asset check names the missing pairs."""
    lost_to_resubmit = [lost.job for lost in plan.lost if lost.outcome == LostOutcome.RESUBMIT]
    lost_given_up = [lost.job for lost in plan.lost if lost.outcome == LostOutcome.GIVEN_UP]
    download, resubmit = download_coherence_rasters.name, resubmit_coherence_jobs.name
    return (
        [job_run_request(download, RASTERS_RUN, request.job, request.attempt) for request in plan.downloads]
        + [job_run_request(resubmit, RESUBMIT_RUN, job) for job in plan.to_resubmit + lost_to_resubmit]
        + [
            job_run_request(resubmit, RESUBMIT_RUN, request.job, request.attempt)
            for request in plan.resubmit_again
        ]
        + [job_run_request(download, GIVEN_UP_RUN, job) for job in plan.given_up + lost_given_up]
    )


def tick_observations(tick: "TickRun") -> list[dg.AssetObservation]:
    """What happened to each job this tick, on its ``coherence_job`` partition, in the order it happened."""
    plan = tick.plan
    return (
        [
            error_observation(job, tick.error_logs[job.record.job_id], given_up=False)
            for job in plan.to_resubmit
        ]
        + [error_observation(job, tick.error_logs[job.record.job_id], given_up=True) for job in plan.given_up]
        + [
            job_observation(job, CANCELED, "canceled on the backend; not resubmitted")
            for job in plan.canceled
        ]
        + [job_observation(lost.job, LOST, LOST_OUTCOMES[lost.outcome]) for lost in plan.lost]
        + [job_observation(job, QUEUED, "started by openeo_job_sensor") for job in tick.started]
        + [
            job_observation(
                job, FINISHED, f"finished; downloads of its {len(job.record.pairs)} pair(s) follow"
            )
            for job in plan.finished
        ]
        + [
            job_observation(
                job, FINISHED, f"downloaded: each of its {len(job.record.pairs)} pair(s) has a raster"
            )
            for job in plan.downloaded
        ]
        + [
            job_observation(
                job,
                FINISHED,
                "downloads given up after their last retry: see the every_pair_has_a_raster check",
            )
            for job in plan.downloads_given_up
        ]
        + [
            job_observation(
                job, ERROR, "resubmission given up after its last retry: see resubmit_coherence_jobs"
            )
            for job in plan.resubmits_given_up
        ]
    )


def error_observation(job: TrackedJob, logs: list[dict[str, Any]], given_up: bool) -> dg.AssetObservation:
    """The job's error logs, recorded on its ``coherence_job`` partition for the UI."""
    lines = [f"- `{entry.get('code', '')}` {entry.get('message', '')}" for entry in logs[-MAX_LOG_LINES:]]
    verdict = (
        f"given up after {job.record.attempt} attempt(s): its {len(job.record.pairs)} pairs get no raster"
        if given_up
        else f"resubmitting (attempt {job.record.attempt + 1})"
    )
    error_logs = dg.MetadataValue.md("\n".join(lines) or "(the backend logged no error lines)")
    return job_observation(job, ERROR, verdict, error_logs=error_logs)


def job_observation(job: TrackedJob, status: str, outcome: str, **details: Any) -> dg.AssetObservation:
    """A step in a job's life, recorded on its ``coherence_job`` partition so the UI tells its story."""
    return dg.AssetObservation(
        asset_key=COHERENCE_JOB,
        partition=job.partition_key,
        metadata={
            "job_id": job.record.job_id,
            "status": status,
            "attempt": job.record.attempt,
            "outcome": outcome,
            **details,
        },
    )


def job_run_request(
    job_name: str, purpose: str, job: TrackedJob, attempt: int | None = None
) -> dg.RunRequest:
    """A run for the job's partition, keyed by what it is for, the job id and the attempt: requested once, ever."""
    suffix = "" if attempt is None else f"-{attempt}"
    return dg.RunRequest(
        job_name=job_name,
        partition_key=job.partition_key,
        run_key=f"{purpose}-{job.record.job_id}{suffix}",
        tags={JOB_ID_TAG: str(job.record.job_id)},
    )


def partitions_with_runs(instance: dg.DagsterInstance, job_name: str) -> set[str]:
    """Partitions with a run of ``job_name`` that has not ended."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=IN_PROGRESS_RUN_STATUSES))
    return {run.tags.get(PARTITION_TAG, "") for run in runs}


def coherence_cube_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    instance = tick_instance(context)
    after = int(context.cursor) if context.cursor else None
    result = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=COHERENCE_RASTERS, after_storage_id=after),
        limit=1000,
        ascending=True,
    )
    if not result.records:
        return dg.SkipReason("no new coherence_rasters materialisations")
    latest_by_burst: dict[str, dg.EventLogRecord] = {}
    first_by_burst: dict[str, int] = {}
    for record in result.records:
        if not has_rasters(record):
            continue  # e.g. every pair given up: a stack run would only fail and mislead
        burst = split_partition_key(str(record.partition_key))[0]
        latest_by_burst[burst] = record  # records come in ascending storage order
        first_by_burst.setdefault(burst, record.storage_id)
    # one writer per cube: a burst whose stack run is still queued or running waits for a later tick
    stacking = partitions_with_runs(instance, stack_coherence_cube.name)
    deferred = sorted(set(latest_by_burst) & stacking)
    cursor = (
        min(first_by_burst[burst] for burst in deferred) - 1 if deferred else result.records[-1].storage_id
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(partition_key=burst, run_key=f"cube-{burst}-{rasters.storage_id}")
            for burst, rasters in sorted(latest_by_burst.items())
            if burst not in stacking and not cube_has_read(instance, burst, rasters)
        ],
        cursor=str(cursor),
    )


def cube_has_read(instance: dg.DagsterInstance, burst: str, rasters: dg.EventLogRecord) -> bool:
    """Whether the burst's latest cube comes from a stack run that started after those rasters were
    materialised, and so read them (a fresh daemon's empty cursor replays every rasters
    materialisation; the cubes the demo stacked need no restack). The run's start counts, not its
    cube's materialisation: a stack run that started before a download ended and finished after it
    never saw that download's rasters."""
    latest_cube = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=COHERENCE_CUBE, asset_partitions=[burst]),
        limit=1,
        ascending=False,
    ).records
    if not latest_cube:
        return False
    stack_run = instance.get_run_record_by_id(latest_cube[0].run_id)
    return bool(stack_run and stack_run.start_time and stack_run.start_time > rasters.timestamp)


def has_rasters(record: dg.EventLogRecord) -> bool:
    files = record.asset_materialization.metadata.get("files") if record.asset_materialization else None
    return files is None or bool(files.value)


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    """The two sensors, each at its interval from the settings: built when the definitions load (Dagster
    needs the interval then), from the settings read there, not at import."""
    return [
        dg.sensor(
            name=JOB_SENSOR,
            jobs=[download_coherence_rasters, resubmit_coherence_jobs],
            minimum_interval_seconds=settings.job_sensor_interval_seconds,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description="Lists the backend's jobs (only as far as the awaited ones) once per tick, starts created "
            "jobs while slots are free, requests downloads until every pair of a finished job has a raster, and "
            "resubmits failed and lost jobs",
        )(openeo_job_sensor),
        dg.sensor(
            name=CUBE_SENSOR,
            job=stack_coherence_cube,
            minimum_interval_seconds=settings.cube_sensor_interval_seconds,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description="Restacks a burst's cube after new coherence_rasters were materialised for it",
        )(coherence_cube_sensor),
    ]
