"""``coherence_rasters``: the GeoTIFFs of a partition's finished jobs, one per pair, validated."""

import dagster as dg
import pandas as pd

from coherence_assets.defs.assets.coherence_job import coherence_job, read_ledger, read_pairs
from coherence_assets.defs.partitions import burst_and_window, burst_window_partitions
from coherence_assets.defs.resources import CoherenceStorage, OpenEOBackend
from coherence_assets.http_session import retrying_session
from coherence_assets.jobs.ledger import FINISHED, IN_FLIGHT, Ledger
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.pairs.pair import Pair, format_pair
from coherence_assets.rasters.asset_matching import match_assets_to_pairs, raster_file_name, safe_target_path
from coherence_assets.rasters.download import DownloadJob, DownloadOutcome, download_all
from coherence_assets.rasters.job_results import job_result_assets
from coherence_assets.rasters.validation import InvalidRasterError, RasterSummary, validate_coherence_raster
from coherence_assets.storage import DataStore

EVERY_PAIR_HAS_A_RASTER = "every_pair_has_a_raster"
MAX_PARALLEL_DOWNLOADS = 4


def validate_present_rasters(store: DataStore, folder: str, pairs: list[Pair]) -> dict[Pair, RasterSummary]:
    """Summaries of the pairs' rasters that exist; a corrupt one is deleted (to be fetched again) and reported."""
    summaries: dict[Pair, RasterSummary] = {}
    invalid: list[str] = []
    for pair in pairs:
        path = f"{folder}/{raster_file_name(*pair)}"
        if not store.fs.exists(path):
            continue
        try:
            summaries[pair] = validate_coherence_raster(store.fs, path)
        except InvalidRasterError as error:
            store.fs.rm(path)
            invalid.append(str(error))
    if invalid:
        raise InvalidRasterError(
            f"{len(invalid)} raster(s) were not valid coherence GeoTIFFs and were removed; re-run to download "
            "them again, and if it repeats, the backend's results are broken:\n- " + "\n- ".join(invalid)
        )
    return summaries


@dg.asset(
    partitions_def=burst_window_partitions,
    deps=[coherence_job],
    description="One validated coherence GeoTIFF per pair, <reference>_<secondary>.tif, from the finished jobs",
    group_name="rasters",
    kinds={"geotiff"},
    check_specs=[
        dg.AssetCheckSpec(
            EVERY_PAIR_HAS_A_RASTER,
            asset="coherence_rasters",
            description="Every pair of the pair table whose job is no longer running has a raster",
        )
    ],
)
def coherence_rasters(
    context: dg.AssetExecutionContext, storage: CoherenceStorage, openeo_backend: OpenEOBackend
):
    burst, window = burst_and_window(context)
    store = storage.store
    pairs = read_pairs(store, burst, window)
    store.require_output(store.coherence_job_path(burst, window), "coherence_job", f"{burst}|{window}")
    ledger = read_ledger(store, burst, window, openeo_backend.root_url)
    folder = store.coherence_rasters_dir(burst, window)
    try:
        outcomes, usage, statuses = fetch_rasters(context, openeo_backend, store, ledger, folder)
        summaries = validate_present_rasters(store, folder, pairs)
    except Exception as error:
        # the check is evaluated whatever broke, naming the cause; the run still fails (red) and the
        # openeo_job_sensor requests it again while its retries last
        yield raster_check(burst, window, pairs, present_rasters(store, folder, pairs), set(), error)
        raise
    in_flight_pairs = {
        pair for job in ledger.jobs if statuses.get(job.job_id or "") in IN_FLIGHT for pair in job.pairs
    }
    waiting = [pair for pair in pairs if pair not in summaries and pair in in_flight_pairs]
    table = pd.DataFrame(
        [
            {
                "pair": format_pair(pair),
                "mean_coherence": round(summary.mean_coherence, 4),
                "valid_fraction": round(summary.valid_fraction, 4),
            }
            for pair, summary in sorted(summaries.items())
        ]
    )
    yield dg.MaterializeResult(
        metadata={
            "files": len(summaries),
            "bytes": sum(outcome.size for outcome in outcomes),
            "downloaded_now": sum(outcome.action != "skipped" for outcome in outcomes),
            "pairs_waiting_for_jobs": len(waiting),
            "folder": dg.MetadataValue.path(folder),
            "per_pair": dg.MetadataValue.md(
                table.to_markdown(index=False) if not table.empty else "(no rasters yet)"
            ),
            "job_usage_and_costs": dg.MetadataValue.json(usage),
        }
    )
    yield raster_check(burst, window, pairs, set(summaries), in_flight_pairs)


def fetch_rasters(
    context: dg.AssetExecutionContext,
    openeo_backend: OpenEOBackend,
    store: DataStore,
    ledger: Ledger,
    folder: str,
) -> tuple[list[DownloadOutcome], dict[str, dict], dict[str, str]]:
    """Download the rasters of the ledger's finished jobs (resuming ``.part`` files); outcomes, usage, statuses."""
    connection = openeo_backend.connect()
    statuses = {job_id: job["status"] for job_id, job in list_all_jobs(connection).items()}
    downloads: list[DownloadJob] = []
    usage: dict[str, dict] = {}
    for job in ledger.jobs:
        if job.job_id is None or statuses.get(job.job_id) != FINISHED:
            continue
        assets = job_result_assets(connection, job.job_id)
        for asset in assets:
            safe_target_path(folder, asset.name)  # a name that would escape the folder marks a hostile result
        matches = match_assets_to_pairs(assets, job.pairs)
        for unmatched in matches.unmatched_assets:
            context.log.warning(
                f"job {job.job_id}: asset {unmatched.name} matches no pair of the job; skipped"
            )
        for pair, dropped in matches.duplicate_assets.items():
            context.log.warning(
                f"job {job.job_id}: assets {', '.join(asset.name for asset in dropped)} repeat pair "
                f"{format_pair(pair)} (duplicate burst records in the catalogue); kept {matches.matched[pair].name}"
            )
        downloads += [
            DownloadJob(asset.href, f"{folder}/{raster_file_name(*pair)}", asset.size)
            for pair, asset in matches.matched.items()
        ]
        description = connection.job(job.job_id).describe()
        usage[job.job_id] = {"usage": description.get("usage"), "costs": description.get("costs")}

    def report(outcome, done: int, total: int) -> None:
        context.log.info(
            f"{ledger.burst} {ledger.window}: {outcome.action} {done}/{total}: {outcome.target_path}"
        )

    outcomes = download_all(
        retrying_session(raise_on_status=False),
        store.fs,
        downloads,
        max_workers=MAX_PARALLEL_DOWNLOADS,
        on_done=report,
    )
    return outcomes, usage, statuses


def present_rasters(store: DataStore, folder: str, pairs: list[Pair]) -> set[Pair]:
    """Pairs with a raster under its final name (downloads only ever rename complete files)."""
    return {pair for pair in pairs if store.fs.exists(f"{folder}/{raster_file_name(*pair)}")}


def raster_check(
    burst: str,
    window: str,
    pairs: list[Pair],
    present: set[Pair],
    in_flight: set[Pair],
    error: BaseException | None = None,
) -> dg.AssetCheckResult:
    """``every_pair_has_a_raster`` for the partition, naming the pairs without one and, if the run broke, why."""
    partition = f"{burst}|{window}"
    missing = [pair for pair in pairs if pair not in present and pair not in in_flight]
    waiting = [pair for pair in pairs if pair not in present and pair in in_flight]
    cause = f"{type(error).__name__}: {error}" if error is not None else None
    if cause:
        description = (
            f"{partition}: the download run failed ({cause}); {len(missing)} of {len(pairs)} pair(s) have no "
            "raster yet: " + (", ".join(format_pair(pair) for pair in missing) or "none")
        )
    elif missing:
        description = (
            f"{partition}: {len(missing)} pair(s) have no raster and no running job: "
            + ", ".join(format_pair(pair) for pair in missing)
            + ". See the coherence_job observations for the jobs' error logs."
        )
    else:
        description = (
            f"{partition}: all {len(pairs) - len(waiting)} pairs without a running job have a raster"
        )
    return dg.AssetCheckResult(
        check_name=EVERY_PAIR_HAS_A_RASTER,
        passed=not missing and cause is None,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            "partition": partition,
            "missing_pairs": ", ".join(format_pair(pair) for pair in missing) or "none",
            "waiting_pairs": len(waiting),
            "error": cause or "none",
        },
    )
