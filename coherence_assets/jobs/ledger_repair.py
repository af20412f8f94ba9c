"""Rebuilding a corrupt or lost ledger from the backend's jobs, so that its pairs are not paid for again.

A ledger is the only record of which jobs computed which pairs; starting a partition over
without it would resubmit every pair. But the backend still knows every job: its title names
the partition and the submission (see ``submission.job_title``), and its process arguments
(``temporal_extent`` and ``temporal_baseline``, or ``InSAR_pairs``) say which of the
partition's pairs it computes.

A ledger can also be gone with its whole data folder (a bucket emptied by a lifecycle rule, a
new folder for an old project). Finding a partition's jobs then needs the account's whole job
listing, whose cost grows with its history; so it is read only for a partition submitted before
(the Dagster instance remembers it: a new partition has nothing to adopt), and once per data
folder, not per partition: the first run that finds no marker (``_adoptable/listed.marker``) lists every job,
notes the ids named for each partition without a ledger (``_adoptable/<burst>/<window>.json``),
then writes the marker. A partition without a ledger then reads only its own note: a run with a
ledger, or in a folder whose marker is there, never lists the history.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import openeo
from openeo.rest import OpenEoApiError

from coherence_assets.jobs.job_store import HeldLedger, JobStore
from coherence_assets.jobs.ledger import CREATED, ERROR, JobRecord, Ledger
from coherence_assets.jobs.listing import list_all_jobs
from coherence_assets.jobs.processes import PROCESS_NAMES
from coherence_assets.jobs.submission import parse_job_title
from coherence_assets.pairs.pair import Pair
from coherence_assets.storage import DataStore


def _process_node(job: dict[str, Any]) -> dict[str, Any] | None:
    graph = (job.get("process") or {}).get("process_graph") or {}
    return next((node for node in graph.values() if node.get("process_id") in PROCESS_NAMES), None)


def _computed_pairs(arguments: dict[str, Any], all_pairs: list[Pair]) -> tuple[list[Pair], int]:
    """The partition's pairs that a job with these arguments computes, and its baseline in days."""
    if "InSAR_pairs" in arguments:
        listed = {(dt.date.fromisoformat(r), dt.date.fromisoformat(s)) for r, s in arguments["InSAR_pairs"]}
        pairs = [pair for pair in all_pairs if pair in listed]
        return pairs, (pairs[0][1] - pairs[0][0]).days if pairs else 0
    start, end = (dt.date.fromisoformat(day) for day in arguments["temporal_extent"])
    baseline = int(arguments["temporal_baseline"])
    pairs = [
        (reference, secondary)
        for reference, secondary in all_pairs
        if start <= reference and secondary <= end and (secondary - reference).days == baseline
    ]
    return pairs, baseline


def rebuild_ledger(
    burst: str, window: str, backend_url: str, all_pairs: list[Pair], described_jobs: Iterable[dict[str, Any]]
) -> Ledger:
    """The ledger that the partition's jobs on the backend imply (``described_jobs``: ``GET /jobs/{id}`` bodies).

    Attempts are counted again from the jobs' order: a job whose pairs an earlier ``error``
    job also had is that job's resubmission. A second job of one submission that is still
    ``created`` is a twin left by an interrupted create: it is not entered, so the sensor
    deletes it instead of computing its pairs twice.
    """
    ledger = Ledger(burst=burst, window=window, backend_url=backend_url)
    for job in sorted(described_jobs, key=lambda job: (str(job.get("created", "")), job["id"])):
        titled = parse_job_title(job.get("title"))
        node = _process_node(job)
        if titled is None or (titled.burst, titled.window) != (burst, window) or node is None:
            continue
        known = [record for record in ledger.jobs if record.submission_id == titled.submission_id]
        if known and job["status"] == CREATED:
            continue
        pairs, baseline = _computed_pairs(node.get("arguments", {}), all_pairs)
        failed_before = [
            record for record in ledger.jobs if record.status == ERROR and set(record.pairs) & set(pairs)
        ]
        ledger.jobs.append(
            JobRecord(
                submission_id=titled.submission_id,
                title=job["title"],
                process=node["process_id"],
                baseline_days=baseline,
                pairs=pairs,
                arguments=node.get("arguments", {}),
                attempt=1 + max((record.attempt for record in failed_before), default=0),
                replaces=failed_before[-1].job_id if failed_before else None,
                job_id=job["id"],
                status=job["status"],
                submitted_at=str(job.get("created", "")),
            )
        )
    return ledger


def _describe(connection: openeo.Connection, job_ids: Iterable[str]) -> list[dict[str, Any]]:
    """``GET /jobs/{id}`` of each job; one deleted since it was listed is left out."""
    described = []
    for job_id in job_ids:
        try:
            described.append(connection.job(job_id).describe())
        except OpenEoApiError as error:
            if error.http_status_code != 404:  # deleted since the listing: nothing to rebuild from it
                raise
    return described


def _ours(backend_jobs: dict[str, dict[str, Any]]) -> Iterable[tuple[str, str, str]]:
    """``(burst, window, job id)`` of every listed job whose title is one of our submissions'."""
    for job_id, job in backend_jobs.items():
        if (titled := parse_job_title(job.get("title"))) is not None:
            yield titled.burst, titled.window, job_id


def _rebuilt_line(ledger: Ledger, all_pairs: list[Pair]) -> str:
    covered = len({pair for record in ledger.jobs for pair in record.pairs})
    return f"{len(ledger.jobs)} job(s) covering {covered} of {len(all_pairs)} pairs, which are not submitted again"


def repair_corrupt_ledger(
    held: HeldLedger,
    connection: openeo.Connection,
    backend_url: str,
    all_pairs: list[Pair],
    backend_jobs: dict[str, dict[str, Any]],
) -> tuple[Ledger, str]:
    """Keep the corrupt file aside, write the ledger rebuilt from the backend, and say so in one line."""
    burst, window = held.burst, held.window
    aside = held.set_aside()
    ours = [
        job_id
        for job_burst, job_window, job_id in _ours(backend_jobs)
        if (job_burst, job_window) == (burst, window)
    ]
    ledger = rebuild_ledger(burst, window, backend_url, all_pairs, _describe(connection, ours))
    held.write(ledger)
    return ledger, (
        f"{burst} {window}: the ledger was corrupt; kept it as {aside} and rebuilt it from the backend's "
        f"job listing: {_rebuilt_line(ledger, all_pairs)}"
    )


def note_adoptable_jobs(store: DataStore, backend_url: str, backend_jobs: dict[str, dict[str, Any]]) -> None:
    """Note, for every partition without a ledger here, the listed jobs named for it; then the marker.

    The marker comes last: a run killed halfway leaves no marker, so the next one lists again.
    """
    with_ledger = JobStore(store).partitions_with_ledger()
    adoptable: dict[tuple[str, str], list[str]] = defaultdict(list)
    for burst, window, job_id in _ours(backend_jobs):
        if (burst, window) not in with_ledger:
            adoptable[(burst, window)].append(job_id)
    for (burst, window), job_ids in adoptable.items():
        store.write_json(store.adoptable_jobs_path(burst, window), {"job_ids": sorted(job_ids)})
    store.write_json(
        store.backend_listing_marker_path(),
        {
            "backend_url": backend_url,
            "listed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "jobs_listed": len(backend_jobs),
            "partitions_noted": len(adoptable),
        },
    )


def adopt_backend_jobs(
    held: HeldLedger, connection: openeo.Connection, backend_url: str, all_pairs: list[Pair]
) -> tuple[Ledger, str] | None:
    """For a partition with no ledger: write the ledger its jobs on the backend imply, if it has any,
    and say so in one line; ``None`` when the backend holds none.

    Lists the backend's jobs only when this data folder has no marker (see the module's doc), so
    at most once per folder.
    """
    store, burst, window = held.store, held.burst, held.window
    marker = store.read_bytes_if_present(store.backend_listing_marker_path())
    if marker is None or json.loads(marker).get("backend_url") != backend_url:
        note_adoptable_jobs(store, backend_url, list_all_jobs(connection))
    noted_path = store.adoptable_jobs_path(burst, window)
    noted = store.read_bytes_if_present(noted_path)
    if noted is None:
        return None
    ledger = rebuild_ledger(
        burst, window, backend_url, all_pairs, _describe(connection, json.loads(noted)["job_ids"])
    )
    held.write(ledger)
    store.fs.rm(noted_path)
    return ledger, (
        f"{burst} {window}: no ledger in this data folder, but the backend holds the partition's jobs; "
        f"adopted {_rebuilt_line(ledger, all_pairs)}"
    )
