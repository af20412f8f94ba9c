"""A partition's rasters: download what its finished jobs produced, validate, and say what is missing.

The whole ``coherence_rasters`` step without Dagster: which jobs finished (each described by id),
which result asset holds which pair (STAC dates, then names), the validation of every raster
present (a file that is not a valid coherence raster is removed and downloaded again in the same
run), the downloads (resumed from ``.part`` files), and the ``every_pair_has_a_raster`` verdict:
a pair without a raster is *waiting* while its job is queued or running, *missing* otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openeo

from coherence_assets.http_session import retrying_session
from coherence_assets.jobs.job_store import JobStore
from coherence_assets.jobs.ledger import FINISHED, IN_FLIGHT, TERMINAL, Ledger
from coherence_assets.jobs.listing import describe_jobs
from coherence_assets.pairs.pair import Pair, format_pair, summarise_pairs
from coherence_assets.pairs.pair_table import read_pairs
from coherence_assets.partition_keys import partition_key
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.raster_files.presence import present_rasters, valid_rasters
from coherence_assets.rasters.asset_matching import match_assets_to_pairs, safe_target_path
from coherence_assets.rasters.download import DownloadBatchError, DownloadJob, DownloadOutcome, download_all
from coherence_assets.rasters.job_results import job_result_assets
from coherence_assets.rasters.provenance import write_raster_provenance
from coherence_assets.storage import DataStore

if TYPE_CHECKING:
    from coherence_assets.raster_files.validation import RasterSummary

MAX_PARALLEL_DOWNLOADS = 4

module_log = logging.getLogger(__name__)


@dataclass
class PartitionRasters:
    """What one download pass left in the partition's folder."""

    folder: str
    pairs: list[Pair]
    summaries: dict[Pair, RasterSummary]
    outcomes: list[DownloadOutcome]
    usage: dict[str, dict[str, Any]]
    in_flight: set[Pair] = field(default_factory=set)

    @property
    def waiting(self) -> list[Pair]:
        return [pair for pair in self.pairs if pair not in self.summaries and pair in self.in_flight]


@dataclass(frozen=True)
class RasterCheck:
    """The ``every_pair_has_a_raster`` verdict of a partition, with the pairs it names."""

    partition: str
    passed: bool
    description: str
    missing: list[Pair]
    waiting: list[Pair]
    cause: str | None


@dataclass(frozen=True)
class CheckedRasters:
    """A download pass and its verdict: the rasters when the pass completed, else the error that broke it."""

    check: RasterCheck
    rasters: PartitionRasters | None = None
    error: Exception | None = None


def download_and_check_partition(
    store: DataStore,
    connect: Callable[[], openeo.Connection],
    burst: str,
    window: str,
    *,
    backend_url: str,
    log: logging.Logger | logging.LoggerAdapter = module_log,
) -> CheckedRasters:
    """The ``coherence_rasters`` step: read the partition's pairs and ledger, download, and judge.

    Missing inputs raise at once. Once they are read, the verdict is given whatever breaks (it names
    the cause and the pairs still without a raster); the error is returned beside it for the caller
    to raise after reporting the verdict, so the run still fails.
    """
    pairs = read_pairs(store, burst, window)
    jobs = JobStore(store)
    jobs.require_ledger(burst, window, partition_key(burst, window))
    ledger = jobs.ledger(burst, window, backend_url)
    try:
        rasters = download_partition_rasters(connect(), store, ledger, pairs, log)
    except Exception as error:
        present = present_rasters(store, store.coherence_rasters_dir(burst, window), pairs)
        return CheckedRasters(check_rasters(burst, window, pairs, present, set(), error), error=error)
    return CheckedRasters(
        check_rasters(burst, window, pairs, set(rasters.summaries), rasters.in_flight), rasters
    )


def download_partition_rasters(
    connection: openeo.Connection,
    store: DataStore,
    ledger: Ledger,
    pairs: list[Pair],
    log: logging.Logger | logging.LoggerAdapter = module_log,
) -> PartitionRasters:
    """Download the rasters of the ledger's finished jobs into the partition's folder and validate them."""
    folder = store.coherence_rasters_dir(ledger.burst, ledger.window)
    # by id, never from the listing: the run pays for its own jobs, not for the account's history
    described = describe_jobs(
        connection,
        [job.job_id for job in ledger.jobs if job.job_id and job.status not in TERMINAL - {FINISHED}],
    ).jobs
    statuses = {job_id: job["status"] for job_id, job in described.items()}
    present = valid_rasters(store, folder, pairs)
    for line in present.invalid.values():
        log.warning(f"{line}; it was removed and is downloaded again")
    outcomes: list[DownloadOutcome] = []
    downloads: list[DownloadJob] = []
    usage: dict[str, dict[str, Any]] = {}
    for job in ledger.jobs:
        if job.job_id is None or statuses.get(job.job_id) != FINISHED:
            continue
        assets = job_result_assets(connection, job.job_id)
        for asset in assets:
            safe_target_path(folder, asset.name)  # a name that would escape the folder marks a hostile result
        matches = match_assets_to_pairs(assets, job.pairs)
        for unmatched in matches.unmatched_assets:
            log.warning(f"job {job.job_id}: asset {unmatched.name} matches no pair of the job; skipped")
        for pair, dropped in matches.duplicate_assets.items():
            log.warning(
                f"job {job.job_id}: assets {', '.join(asset.name for asset in dropped)} repeat pair "
                f"{format_pair(pair)} (duplicate burst records in the catalogue); kept {matches.matched[pair].name}"
            )
        for pair, asset in matches.matched.items():
            target = f"{folder}/{raster_file_name(*pair)}"
            if pair in present.summaries:  # valid, so its provenance was written when it was downloaded
                outcomes.append(DownloadOutcome(asset.href, target, store.fs.size(target), "skipped", 0))
            else:
                downloads.append(
                    DownloadJob(asset.href, target, asset.size, f"job {job.job_id} asset {asset.name}")
                )
        description = described[job.job_id]
        usage[job.job_id] = {"usage": description.get("usage"), "costs": description.get("costs")}

    log.info(
        f"{ledger.burst} {ledger.window}: {len(present.summaries)} valid raster(s) present, skipped; "
        f"{len(downloads)} to download"
    )

    def report(outcome: DownloadOutcome, done: int, total: int) -> None:
        log.info(f"{ledger.burst} {ledger.window}: {outcome.action} {done}/{total}: {outcome.target_path}")

    try:
        fetched_now = download_all(
            retrying_session(raise_on_status=False),
            store.fs,
            downloads,
            max_workers=MAX_PARALLEL_DOWNLOADS,
            on_done=report,
        )
    except DownloadBatchError as error:
        for line in error.lines:
            log.error(f"{ledger.burst} {ledger.window}: download failed: {line}")
        raise
    write_raster_provenance(store, ledger, fetched_now, log)
    outcomes += fetched_now
    fetched = valid_rasters(store, folder, [pair for pair in pairs if pair not in present.summaries])
    if fetched.invalid:
        from coherence_assets.raster_files.validation import InvalidRasterError

        raise InvalidRasterError(
            f"{len(fetched.invalid)} raster(s) just downloaded were not valid coherence GeoTIFFs and were removed, "
            f"the first: {next(iter(fetched.invalid.values()))}; the next run downloads them again, and if it "
            "repeats, the backend's results are broken"
        )
    summaries = {**present.summaries, **fetched.summaries}
    in_flight = {
        pair for job in ledger.jobs if statuses.get(job.job_id or "") in IN_FLIGHT for pair in job.pairs
    }
    return PartitionRasters(folder, pairs, summaries, outcomes, usage, in_flight)


def check_rasters(
    burst: str,
    window: str,
    pairs: list[Pair],
    present: set[Pair],
    in_flight: set[Pair],
    error: BaseException | None = None,
) -> RasterCheck:
    """``every_pair_has_a_raster`` for the partition, naming the pairs without one and, if the run broke, why."""
    partition = partition_key(burst, window)
    missing = [pair for pair in pairs if pair not in present and pair not in in_flight]
    waiting = [pair for pair in pairs if pair not in present and pair in in_flight]
    cause = f"{type(error).__name__}: {error}" if error is not None else None
    if cause:
        description = (
            f"{partition}: the download run failed ({cause}); {len(missing)} of {len(pairs)} pair(s) have no "
            f"raster yet{_listed(missing)}"
        )
    elif missing:
        description = (
            f"{partition}: {len(missing)} pair(s) have no raster and no running job{_listed(missing)}. "
            "See the coherence_job observations for the jobs' error logs."
        )
    else:
        description = (
            f"{partition}: all {len(pairs) - len(waiting)} pairs without a running job have a raster"
        )
    return RasterCheck(partition, not missing and cause is None, description, missing, waiting, cause)


def _listed(missing: list[Pair]) -> str:
    """The first few missing pairs, and where the rest are: the check's ``missing_pairs`` metadata."""
    if not missing:
        return ""
    return f": {summarise_pairs(missing)}" + (" (all in missing_pairs)" if len(missing) > 3 else "")
