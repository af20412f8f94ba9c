"""Sensors: ``openeo_job_sensor`` drives submitted jobs to downloads; ``coherence_cube_sensor`` restacks cubes."""

import datetime as dt
import time
from typing import Any

import dagster as dg
import requests
from openeo.rest import OpenEoApiError, OpenEoClientException

from coherence_assets.defs.jobs import (
    download_coherence_rasters,
    resubmit_coherence_jobs,
    stack_coherence_cube,
)
from coherence_assets.defs.resources import CoherenceParameters, CoherenceStorage, OpenEOBackend
from coherence_assets.jobs.ledger import CANCELED, ERROR, FINISHED, LOST, QUEUED
from coherence_assets.jobs.ledger_index import (
    DonePartition,
    LedgerScan,
    TrackedJob,
    read_done_index,
    record_job_status,
    scan_ledgers,
    tracked_jobs,
    write_done_index,
)
from coherence_assets.jobs.listing import JobListing, list_jobs_until_seen
from coherence_assets.jobs.orphan_jobs import settle_orphan_jobs
from coherence_assets.jobs.starter import StartOutcome, start_jobs
from coherence_assets.jobs.tick import (
    TickCursor,
    TickPlan,
    awaited_jobs,
    plan_tick,
    resume_rewritten_partitions,
)
from coherence_assets.pairs.pair import Pair
from coherence_assets.partition_keys import partition_key, split_partition_key
from coherence_assets.rasters.asset_matching import raster_file_name
from coherence_assets.settings import Settings
from coherence_assets.storage import DataStore

JOB_SENSOR = "openeo_job_sensor"  # names of the sensors below (the demo and tests evaluate them)
CUBE_SENSOR = "coherence_cube_sensor"

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


def error_observation(connection, job: TrackedJob, given_up: bool) -> dg.AssetObservation:
    """The job's error logs, recorded on its ``coherence_job`` partition for the UI."""
    logs = connection.job(job.record.job_id).logs(level="error")
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
        asset_key="coherence_job",
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


class RasterPresence:
    """Which pairs of a job have a raster on disk: one listing of the partition's folder per tick."""

    def __init__(self, store: DataStore) -> None:
        self._store = store
        self._names: dict[str, set[str]] = {}

    def pairs_without_raster(self, job: TrackedJob) -> list[Pair]:
        if job.partition_key not in self._names:
            folder = self._store.coherence_rasters_dir(job.burst, job.window)
            found = self._store.fs.ls(folder, detail=False) if self._store.fs.exists(folder) else []
            self._names[job.partition_key] = {path.rsplit("/", 1)[-1] for path in found}
        names = self._names[job.partition_key]
        return [pair for pair in job.record.pairs if raster_file_name(*pair) not in names]


def openeo_job_sensor(
    context: dg.SensorEvaluationContext,
    openeo_backend: OpenEOBackend,
    storage: CoherenceStorage,
    coherence: CoherenceParameters,
) -> dg.SensorResult | dg.SkipReason:
    store = storage.store
    cursor = TickCursor.from_json(context.cursor)
    done = read_done_index(store)
    scan = scan_ledgers(store, done, report=context.log.error)
    if not scan.total:
        return dg.SkipReason("no coherence_job ledgers yet: materialise coherence_job first")
    ledgers = list(scan.ledgers.values())
    resume_rewritten_partitions(
        cursor, [(done[path], ledger) for path, ledger in scan.ledgers.items() if path in done]
    )
    awaited = awaited_jobs(ledgers, cursor)
    # a record still waiting for its job id may have a job to adopt: the listing's first page shows it
    adoptable = any(record.job_id is None for ledger in ledgers for record in ledger.jobs)
    connection = None
    listing = JobListing()
    try:
        if awaited or adoptable:
            connection = openeo_backend.connect()
            listing = list_jobs_until_seen(connection, awaited)
    except BACKEND_UNREACHABLE as error:
        openeo_backend.forget_connection()
        return dg.SkipReason(
            f"openEO backend {openeo_backend.root_url} did not answer ({type(error).__name__}: {error}); "
            "nothing changed, the next tick tries again"
        )
    if connection is not None:
        for line in settle_orphan_jobs(
            store,
            connection,
            listing.jobs,
            ledgers,
            dt.timedelta(seconds=openeo_backend.orphan_grace_seconds),
        ):
            context.log.warning(line)
    plan = plan_tick(
        ledgers,
        listing,
        cursor,
        openeo_backend.tick_policy(coherence.max_attempts),
        time.time(),
        RasterPresence(store).pairs_without_raster,
        partitions_with_runs(context.instance, download_coherence_rasters.name),
        lambda lost: record_job_status(
            store,
            lost.job.burst,
            lost.job.window,
            lost.job.record.job_id,
            FINISHED if lost.outcome == "done" else LOST,  # done: every pair has its raster
        ),
        frozenset(partitions_with_runs(context.instance, resubmit_coherence_jobs.name)),
    )
    lost_to_resubmit = [lost.job for lost in plan.lost if lost.outcome == "resubmit"]
    lost_given_up = [lost.job for lost in plan.lost if lost.outcome == "given_up"]
    # a given-up job's partition still gets a download run, whose asset check names the missing pairs
    run_requests = (
        [
            job_run_request(download_coherence_rasters.name, "rasters", request.job, request.attempt)
            for request in plan.downloads
        ]
        + [job_run_request(resubmit_coherence_jobs.name, "resubmit", job) for job in plan.to_resubmit]
        + [job_run_request(resubmit_coherence_jobs.name, "resubmit", job) for job in lost_to_resubmit]
        + [
            job_run_request(resubmit_coherence_jobs.name, "resubmit", request.job, request.attempt)
            for request in plan.resubmit_again
        ]
        + [
            job_run_request(download_coherence_rasters.name, "given-up", job)
            for job in plan.given_up + lost_given_up
        ]
    )
    observations = [error_observation(connection, job, given_up=False) for job in plan.to_resubmit]
    observations += [error_observation(connection, job, given_up=True) for job in plan.given_up]
    observations += [
        job_observation(job, CANCELED, "canceled on the backend; not resubmitted") for job in plan.canceled
    ]
    observations += [job_observation(lost.job, LOST, LOST_OUTCOMES[lost.outcome]) for lost in plan.lost]
    started = StartOutcome(last_start_at=cursor.last_start_at)
    if plan.to_start and connection is not None:
        started = start_jobs(
            connection,
            plan.to_start,
            listing.jobs,
            openeo_backend.limits(),
            last_start_at=cursor.last_start_at,
        )
    plan.cursor.last_start_at = started.last_start_at
    by_id = {job.record.job_id: job for job in tracked_jobs(ledgers)}
    observations += [
        job_observation(by_id[job_id], QUEUED, "started by openeo_job_sensor") for job_id in started.started
    ]
    requests = (
        listing.requests
        + len(started.started)
        + started.rate_limited
        + len(plan.to_resubmit)
        + len(plan.given_up)
    )
    context.log.info(
        f"tick: read {scan.read_count} of {scan.total} ledgers, {requests} backend request(s); "
        f"jobs by status {plan.status_counts}; started {started.started or 'none'}; "
        f"downloads requested {[f'{r.job.record.job_id}#{r.attempt}' for r in plan.downloads] or 'none'}"
    )
    for job in plan.unseen:
        context.log.warning(
            f"job {job.record.job_id} of {job.partition_key} is not listed by the backend "
            f"({plan.cursor.unseen[job.record.job_id]} tick(s)); it is recorded as lost after "
            f"{openeo_backend.lost_after_ticks}"
        )
    for job in plan.downloads_given_up + plan.resubmits_given_up:
        reasons = plan.cursor.stuck.get(job.partition_key) or plan.done_partitions[job.partition_key]
        context.log.error(f"{job.partition_key}: {reasons[-1]}")
    update_done_index(store, done, scan, plan)
    return dg.SensorResult(run_requests=run_requests, asset_events=observations, cursor=plan.cursor.to_json())


LOST_OUTCOMES = {
    "done": "no longer listed by the backend; every pair already has a raster, so it is done",
    "resubmit": "no longer listed by the backend (lost); its pairs are resubmitted",
    "given_up": "no longer listed by the backend (lost) after its last attempt; its pairs are given up",
}


def update_done_index(
    store: DataStore, done: dict[str, DonePartition], scan: LedgerScan, plan: TickPlan
) -> None:
    """Forget ledgers that changed or vanished, remember the partitions done this tick; write only on change."""
    updated = {
        path: entry for path, entry in done.items() if path in scan.signatures and path not in scan.ledgers
    }
    for path, ledger in scan.ledgers.items():
        partition = partition_key(ledger.burst, ledger.window)
        if partition in plan.done_partitions:
            updated[path] = DonePartition(
                partition,
                scan.signatures[path],
                tuple(plan.done_partitions[partition]),
                tuple(job.job_id for job in ledger.jobs if job.job_id),
            )
    if updated != done:
        write_done_index(store, updated)


def coherence_cube_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    after = int(context.cursor) if context.cursor else None
    result = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("coherence_rasters"), after_storage_id=after),
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
    stacking = partitions_with_runs(context.instance, stack_coherence_cube.name)
    deferred = sorted(set(latest_by_burst) & stacking)
    cursor = (
        min(first_by_burst[burst] for burst in deferred) - 1 if deferred else result.records[-1].storage_id
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(partition_key=burst, run_key=f"cube-{burst}-{rasters.storage_id}")
            for burst, rasters in sorted(latest_by_burst.items())
            if burst not in stacking and not cube_has_read(context.instance, burst, rasters)
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
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("coherence_cube"), asset_partitions=[burst]),
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
    """The two sensors, ticking every ``COHERENCE_SENSOR_INTERVAL_SECONDS``: built when the definitions
    load (Dagster needs the interval then), from the settings read there, not at import."""
    return [
        dg.sensor(
            name=JOB_SENSOR,
            jobs=[download_coherence_rasters, resubmit_coherence_jobs],
            minimum_interval_seconds=settings.sensor_interval_seconds,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description="Lists the backend's jobs (only as far as the awaited ones) once per tick, starts created "
            "jobs while slots are free, requests downloads until every pair of a finished job has a raster, and "
            "resubmits failed and lost jobs",
        )(openeo_job_sensor),
        dg.sensor(
            name=CUBE_SENSOR,
            job=stack_coherence_cube,
            minimum_interval_seconds=settings.sensor_interval_seconds,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description="Restacks a burst's cube after new coherence_rasters were materialised for it",
        )(coherence_cube_sensor),
    ]
