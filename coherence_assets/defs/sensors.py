"""Sensors: ``openeo_job_sensor`` drives submitted jobs to downloads; ``coherence_cube_sensor`` restacks cubes."""

import datetime as dt

import dagster as dg
import requests
from openeo.rest import OpenEoApiError, OpenEoClientException

from coherence_assets.defs.jobs import (
    download_coherence_rasters,
    resubmit_coherence_jobs,
    stack_coherence_cube,
)
from coherence_assets.defs.resources import CoherenceParameters, CoherenceStorage, OpenEOBackend
from coherence_assets.jobs.ledger_index import TrackedJob, read_all_ledgers, tracked_jobs
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.jobs.orphan_jobs import settle_orphan_jobs
from coherence_assets.jobs.starter import start_jobs
from coherence_assets.jobs.tick import TickCursor, newly_handled, plan_tick
from coherence_assets.settings import Settings

BACKEND_UNREACHABLE = (requests.RequestException, OpenEoApiError, OpenEoClientException, RuntimeError)
JOB_ID_TAG = "openeo/job_id"
MAX_LOG_LINES = 20
PARTITION_TAG = "dagster/partition"
IN_PROGRESS_RUN_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
TICK_SECONDS = Settings.from_env().sensor_interval_seconds


def error_observation(connection, job: TrackedJob, given_up: bool) -> dg.AssetObservation:
    """The job's error logs, recorded on its ``coherence_job`` partition for the UI."""
    logs = connection.job(job.record.job_id).logs(level="error")
    lines = [f"- `{entry.get('code', '')}` {entry.get('message', '')}" for entry in logs[-MAX_LOG_LINES:]]
    verdict = (
        f"given up after {job.record.attempt} attempt(s): its {len(job.record.pairs)} pairs get no raster"
        if given_up
        else f"resubmitting (attempt {job.record.attempt + 1})"
    )
    return dg.AssetObservation(
        asset_key="coherence_job",
        partition=job.partition_key,
        metadata={
            "job_id": job.record.job_id,
            "status": "error",
            "attempt": job.record.attempt,
            "outcome": verdict,
            "error_logs": dg.MetadataValue.md("\n".join(lines) or "(the backend logged no error lines)"),
        },
    )


def job_run_request(job_name: str, purpose: str, job: TrackedJob) -> dg.RunRequest:
    """A run for the job's partition, keyed by what it is for and the job id: requested once, ever."""
    return dg.RunRequest(
        job_name=job_name,
        partition_key=job.partition_key,
        run_key=f"{purpose}-{job.record.job_id}",
        tags={JOB_ID_TAG: str(job.record.job_id)},
    )


@dg.sensor(
    jobs=[download_coherence_rasters, resubmit_coherence_jobs],
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lists the backend's jobs once per tick, starts created jobs while slots are free, "
    "requests downloads of finished jobs and resubmits failed ones",
)
def openeo_job_sensor(
    context: dg.SensorEvaluationContext,
    openeo_backend: OpenEOBackend,
    storage: CoherenceStorage,
    coherence: CoherenceParameters,
) -> dg.SensorResult | dg.SkipReason:
    cursor = TickCursor.from_json(context.cursor)
    ledgers = read_all_ledgers(storage.store, report=context.log.error)
    tracked = tracked_jobs(ledgers)
    if not ledgers:
        return dg.SkipReason("no coherence_job ledgers yet: materialise coherence_job first")
    try:
        connection = openeo_backend.connect()
        backend_jobs = list_all_jobs(connection)
    except BACKEND_UNREACHABLE as error:
        openeo_backend.forget_connection()
        return dg.SkipReason(
            f"openEO backend {openeo_backend.root_url} did not answer ({type(error).__name__}: {error}); "
            "nothing changed, the next tick tries again"
        )
    for line in settle_orphan_jobs(
        storage.store,
        connection,
        backend_jobs,
        ledgers,
        dt.timedelta(seconds=openeo_backend.orphan_grace_seconds),
    ):
        context.log.warning(line)
    plan = plan_tick(tracked, backend_jobs, cursor.handled, coherence.max_attempts)
    # a given-up job's partition still gets a download run, whose asset check names the missing pairs
    run_requests = (
        [job_run_request(download_coherence_rasters.name, "rasters", job) for job in plan.finished]
        + [job_run_request(resubmit_coherence_jobs.name, "resubmit", job) for job in plan.to_resubmit]
        + [job_run_request(download_coherence_rasters.name, "given-up", job) for job in plan.given_up]
    )
    observations = [error_observation(connection, job, given_up=False) for job in plan.to_resubmit]
    observations += [error_observation(connection, job, given_up=True) for job in plan.given_up]
    observations += [
        dg.AssetObservation(
            asset_key="coherence_job",
            partition=job.partition_key,
            metadata={
                "job_id": job.record.job_id,
                "status": "canceled",
                "outcome": "canceled on the backend; not resubmitted",
            },
        )
        for job in plan.canceled
    ]
    started = start_jobs(
        connection, plan.to_start, backend_jobs, openeo_backend.limits(), last_start_at=cursor.last_start_at
    )
    context.log.info(
        f"jobs by status {plan.status_counts}; started {started.started or 'none'}; "
        f"downloads requested for {[job.record.job_id for job in plan.finished] or 'none'}"
    )
    for job in plan.unknown_to_backend:
        context.log.warning(
            f"job {job.record.job_id} of {job.partition_key} is not listed by the backend any more"
        )
    return dg.SensorResult(
        run_requests=run_requests,
        asset_events=observations,
        cursor=TickCursor(cursor.handled | newly_handled(plan), started.last_start_at).to_json(),
    )


@dg.sensor(
    job=stack_coherence_cube,
    minimum_interval_seconds=TICK_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Restacks a burst's cube after new coherence_rasters were materialised for it",
)
def coherence_cube_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    after = int(context.cursor) if context.cursor else None
    result = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("coherence_rasters"), after_storage_id=after),
        limit=1000,
        ascending=True,
    )
    if not result.records:
        return dg.SkipReason("no new coherence_rasters materialisations")
    latest_by_burst: dict[str, int] = {}
    first_by_burst: dict[str, int] = {}
    for record in result.records:
        burst = str(record.partition_key).split("|")[0]
        latest_by_burst[burst] = max(latest_by_burst.get(burst, 0), record.storage_id)
        first_by_burst.setdefault(burst, record.storage_id)
    # one writer per cube: a burst whose stack run is still queued or running waits for a later tick
    stacking = stacking_bursts(context.instance)
    deferred = sorted(set(latest_by_burst) & stacking)
    cursor = (
        min(first_by_burst[burst] for burst in deferred) - 1 if deferred else result.records[-1].storage_id
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(partition_key=burst, run_key=f"cube-{burst}-{storage_id}")
            for burst, storage_id in sorted(latest_by_burst.items())
            if burst not in stacking and not cube_is_newer(context.instance, burst, storage_id)
        ],
        cursor=str(cursor),
    )


def cube_is_newer(instance: dg.DagsterInstance, burst: str, rasters_storage_id: int) -> bool:
    """Whether the burst's cube was stacked after those rasters (a fresh daemon's empty cursor
    replays every rasters materialisation; the cubes the demo stacked need no restack)."""
    latest_cube = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("coherence_cube"), asset_partitions=[burst]),
        limit=1,
        ascending=False,
    ).records
    return bool(latest_cube) and latest_cube[0].storage_id > rasters_storage_id


def stacking_bursts(instance: dg.DagsterInstance) -> set[str]:
    """Bursts with a ``stack_coherence_cube`` run that has not ended."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=stack_coherence_cube.name, statuses=IN_PROGRESS_RUN_STATUSES)
    )
    return {run.tags.get(PARTITION_TAG, "") for run in runs}
