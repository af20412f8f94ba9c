"""``coherence-assets demo``: the whole chain on a real Dagster instance, with the job sensor in a loop.

It does what the daemon does (evaluate ``openeo_job_sensor`` every few seconds and launch the
runs it requests), in one process, so that a newcomer sees the chain finish without starting
``dagster dev``. Runs land in ``DAGSTER_HOME`` and show in the UI (``coherence-assets ui``) afterwards.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable

import dagster as dg
import pandas as pd
import requests

from coherence_assets.bursts.burst_map import burst_file_version
from coherence_assets.cube.stacking import find_pair_rasters, open_coherence_cube
from coherence_assets.defs import jobs as asset_jobs
from coherence_assets.defs.burst_partitions_sensor import tick_burst_partitions_sensor
from coherence_assets.defs.catalogue_versions import recorded_burst_file_version
from coherence_assets.defs.partitions import burst_partitions
from coherence_assets.defs.sensor_ticks import evaluate_sensor, launch_requested_runs, record_asset_events
from coherence_assets.defs.sensors import JOB_SENSOR
from coherence_assets.jobs.job_store import JobStore
from coherence_assets.jobs.ledger import TERMINAL, JobRecord
from coherence_assets.jobs.tick_run import runs_awaited, stuck_now
from coherence_assets.partition_keys import partition_key
from coherence_assets.preflight import SetupError
from coherence_assets.settings import prepare_dagster_home
from coherence_assets.storage import DataFolderUnusable, DataStore

# The demo prints one line per run; a failure's trace stays in the run's event log (the UI shows it).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
TICK_SECONDS = 3.0


def job_counts(statuses: Iterable[str]) -> str:
    """``2 created, 4 finished``: how many jobs are in each status, for a person to read."""
    counted = Counter(statuses)
    return ", ".join(f"{counted[status]} {status}" for status in sorted(counted)) or "none"


def demo_instance() -> dg.DagsterInstance:
    """The instance in ``DAGSTER_HOME`` (default ``./.dagster_home``), the one ``coherence-assets ui``
    opens, created as :func:`prepare_dagster_home` does."""
    prepare_dagster_home()
    return dg.DagsterInstance.get()


def run_job(
    defs: dg.Definitions, instance: dg.DagsterInstance, job_name: str, partition_key: str | None, tags=None
):
    """Execute one job run in this process, recorded in the instance like a launched run."""
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=partition_key,
        tags=tags or {},
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )
    outcome = "ok" if result.success else f"FAILED: {failure_cause(result)}"
    print(f"  run {job_name} {partition_key or ''}: {outcome} (run id {result.run_id})", flush=True)
    return result


def failure_cause(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step's own exception in one line, without Dagster's wrapping error; or, for a
    run that failed before any step (a resource that could not start), that failure's."""
    errors = [event.step_failure_data.error for event in result.get_step_failure_events()]
    errors += [
        event.event_specific_data.error
        for event in result.all_events
        if event.event_type in (dg.DagsterEventType.RESOURCE_INIT_FAILURE, dg.DagsterEventType.RUN_FAILURE)
    ]
    for error in errors:
        if error is None:
            continue
        # down to the cause, unless a one-line error for the user wraps it (its cause stays in the run's log)
        while error.cause is not None and error.cls_name != DataFolderUnusable.__name__:
            error = error.cause
        return " ".join(error.message.split())
    return "the run failed before any step (see its log in the Dagster UI)"


def tick(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: str | None) -> tuple[str | None, int]:
    """One tick of ``openeo_job_sensor`` as the daemon runs it; the new cursor and the runs launched."""
    data = evaluate_sensor(defs, instance, JOB_SENSOR, cursor)
    record_asset_events(instance, data)
    launched = launch_requested_runs(
        instance, data, lambda job_name, partition, tags: run_job(defs, instance, job_name, partition, tags)
    )
    return data.cursor, len(launched)


def job_statuses(window: str, bursts: list[str], defs: dg.Definitions) -> dict[str, str]:
    """Current backend status of every job of the window's ledgers of ``bursts``.

    The listing is read only as far as those jobs (as the sensor reads it), so a tick of the demo
    costs the same on an account with years of jobs as on an empty one.
    """
    from coherence_assets.jobs.listing import JobListing, list_jobs_until_seen

    store = defs.resources["storage"].store
    records = [
        record
        for burst in bursts
        for record in _ledger_jobs(store, burst, window)
        if record.job_id is not None
    ]
    awaited = {record.job_id for record in records if record.status not in TERMINAL}
    listing = (
        list_jobs_until_seen(defs.resources["openeo_backend"].connect(), awaited) if awaited else JobListing()
    )
    return {
        # a job the backend no longer lists keeps the fate the sensor wrote into its ledger
        record.job_id: listing.jobs.get(record.job_id, {}).get("status")
        or (record.status if record.status in TERMINAL else "unknown")
        for record in records
    }


def _ledger_jobs(store: DataStore, burst: str, window: str) -> list[JobRecord]:
    """The jobs of a partition's ledger; none while it has no ledger, or a corrupt one (the sensor reports it)."""
    ledger = JobStore(store).readable_ledger(burst, window)
    return ledger.jobs if ledger else []


def print_summary(defs: dg.Definitions, bursts: list[str]) -> None:
    store = defs.resources["storage"].store
    print("\nCoherence cubes:")
    for burst in bursts:
        path = store.coherence_cube_path(burst)
        if not store.fs.exists(path):
            print(f"  {burst}: no cube (no pairs or no finished job)")
            continue
        cube = open_coherence_cube(store.fs, path)
        means = cube["mean_coherence"].compute()  # stored per pair when stacked: no need to read the rasters
        pair_count = cube["coherence"].shape[0]  # along time, or pair with several baselines
        print(
            f"  {burst}: {store.fs.unstrip_protocol(path)}  ({pair_count} pairs, grid {cube.sizes['y']}x{cube.sizes['x']})"
        )
        print("    reference    secondary    baseline  mean coherence")
        for index in range(pair_count):
            reference = str(cube["time"].values[index])[:10]
            secondary = str(cube["secondary_time"].values[index])[:10]
            baseline = int(cube["temporal_baseline"].values[index])
            print(f"    {reference}   {secondary}   {baseline:>4} d    {float(means.values[index]):.3f}")
        decay = store.coherence_decay_path(burst)
        if store.fs.exists(decay):
            print(f"    seasonal decay (rho_inf, tau per pixel): {store.fs.unstrip_protocol(decay)}")
        aoi_series = store.coherence_aoi_series_path(burst)
        if store.fs.exists(aoi_series):
            aois = (
                ", ".join(pd.read_parquet(aoi_series, filesystem=store.fs)["aoi_id"].unique())
                or "none inside"
            )
            print(f"    coherence per AOI ({aois}): {store.fs.unstrip_protocol(aoi_series)}")
    catalog = store.stac_catalog_path()
    if store.fs.exists(catalog):
        print(f"\nSTAC catalogue of rasters and cubes: {store.fs.unstrip_protocol(catalog)}")


def refresh_burst_catalogue(defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    """Materialise ``burst_catalogue`` unless the instance holds it for this very burst file."""
    store, bursts_file = defs.resources["storage"].store, defs.resources["bursts_file"].path
    if (
        recorded_burst_file_version(instance) == burst_file_version(bursts_file)
        and instance.get_dynamic_partitions(burst_partitions.name)
        and store.fs.exists(store.burst_catalogue_path())
    ):
        print(f"  unchanged since its last materialisation: {bursts_file}", flush=True)
        return
    catalogue_run = run_job(defs, instance, asset_jobs.refresh_burst_catalogue.name, None)
    if not catalogue_run.success:
        raise SetupError(
            f"the burst catalogue could not be built: {failure_cause(catalogue_run)} "
            f"(run {catalogue_run.run_id}; its full log is in the Dagster UI)"
        )
    tick_burst_partitions_sensor(defs, instance)  # its burst partitions, as the daemon's tick would add them


def run_demo_chain(window: str, timeout_seconds: float) -> int:
    """The chain on the instance in ``DAGSTER_HOME``; call it once ``preflight`` passed."""
    from coherence_assets.definitions import defs

    instance = demo_instance()
    home = os.environ["DAGSTER_HOME"]
    print(
        f"Dagster instance: {home} (its UI: coherence-assets ui, from this folder or with this DAGSTER_HOME)",
        flush=True,
    )
    print("1. burst catalogue", flush=True)
    refresh_burst_catalogue(defs, instance)
    bursts = sorted(instance.get_dynamic_partitions(burst_partitions.name))
    print(f"2. pairs and jobs for {len(bursts)} bursts in window {window}", flush=True)
    failures = [
        result
        for burst in bursts
        if not (
            result := run_job(
                defs, instance, asset_jobs.submit_coherence_jobs.name, partition_key(burst, window)
            )
        ).success
    ]
    print("3. waiting for jobs (the sensor starts them as slots free up, then downloads)", flush=True)
    cursor, deadline, counts = None, time.monotonic() + timeout_seconds, "none yet"
    while True:
        try:
            cursor, launched = tick(defs, instance, cursor)
            statuses = job_statuses(window, bursts, defs)
        except requests.RequestException as error:
            # The backend went away mid-request; the next connect() finds it again (or starts the
            # embedded one from its own folder), and the deadline bounds the wait.
            print(f"  the openEO backend did not answer ({type(error).__name__}); trying again", flush=True)
        else:
            counts = job_counts(statuses.values())
            print(f"  jobs: {counts}", flush=True)
            # failed downloads and resubmissions the sensor requests again
            retrying = runs_awaited(defs.resources["storage"].store)
            if all(status in TERMINAL for status in statuses.values()) and launched == 0 and not retrying:
                break
        if time.monotonic() > deadline:
            print_stuck(defs)
            raise SetupError(
                f"gave up waiting for jobs after {timeout_seconds:.0f} s (jobs: {counts}); re-run the demo to continue "
                "where it stopped, or give it longer with --timeout"
            )
        time.sleep(TICK_SECONDS)
    print("4. stacking cubes", flush=True)
    store = defs.resources["storage"].store
    with_rasters = [
        burst for burst in bursts if find_pair_rasters(store.fs, store.coherence_rasters_root(burst))
    ]
    failures += [
        result
        for burst in with_rasters  # a burst without rasters has no cube to stack: the summary says so
        if not (result := run_job(defs, instance, asset_jobs.stack_coherence_cube.name, burst)).success
    ]
    print_summary(defs, bursts)
    stuck = print_stuck(defs)
    if failures:
        first = failures[0]
        raise SetupError(
            f"{len(failures)} run(s) failed; the first, {first.job_def.name} {first.dagster_run.tags.get('dagster/partition', '')}: "
            f"{failure_cause(first)} (run {first.run_id}; its full log is in the Dagster UI)"
        )
    return 1 if stuck else 0


def print_stuck(defs: dg.Definitions) -> bool:
    """One line saying what cannot progress without the user, and what to do; whether there was any."""
    stuck = stuck_now(defs.resources["storage"].store)
    if stuck:
        print("Stuck, needs you: " + " | ".join(stuck), flush=True)
    return bool(stuck)
