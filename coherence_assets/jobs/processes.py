"""The openEO processes that compute coherence, what each accepts, and how each is called.

CDSE removed ``sar_coherence_parallel`` (2026-03-31) and ``sar_coherence`` (2026-05-04); the
current one is the APEx user-defined process ``sentinel1_sar_coherence``. It returns a STAC
resource itself, so its job is created straight from the process; the older two need
``save_result(format="GTiff")``.

What each process accepts is checked here, before anything is submitted, so that a run fails
with one line naming the allowed values instead of a backend error after the ledger was written.

The APEx process is submitted at a pinned commit of its repository, never at the moving ``main``
branch, so that the code that ran is known later: ``main`` is resolved to a commit through
GitHub's REST API once per partition (:func:`pin_apex_commit`), the namespace URL of that commit
is recorded with each job, and later jobs of the partition reuse it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import requests

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.cdse_facts import (
    APEX_BRANCH,
    APEX_REPOSITORY,
    APEX_UDP_PATH,
    IW_SUBSWATHS,
    SAR_COHERENCE,
    SAR_COHERENCE_PARALLEL,
    SENTINEL1_SAR_COHERENCE,
    SUBSWATHS,
    is_commit_sha,
)
from coherence_assets.http_session import retrying_session
from coherence_assets.jobs.ledger import Ledger
from coherence_assets.pairs.pair import Pair

if TYPE_CHECKING:  # the client is needed only by the callers' objects
    import openeo

GITHUB_API_URL = "https://api.github.com"
_PINNED_NAMESPACE = re.compile(
    rf"^https://raw\.githubusercontent\.com/{re.escape(APEX_REPOSITORY)}/(?P<commit>[0-9a-f]{{40}})/"
    rf"{re.escape(APEX_UDP_PATH)}$"
)


@dataclass(frozen=True)
class ProcessRules:
    """The values a process accepts, and when CDSE removed it (``None``: still offered)."""

    polarisations: tuple[str, ...]
    subswaths: tuple[str, ...]
    removed_from_cdse: dt.date | None = None


PROCESS_RULES: dict[str, ProcessRules] = {
    # The UDP's own parameter schema (ESA-APEx/apex_algorithms, algorithm_catalog/eurac/
    # sentinel1_sar_coherence/openeo_udp/sentinel1_sar_coherence.json): polarization enum VV, VH;
    # sub_swath enum IW1, IW2, IW3.
    SENTINEL1_SAR_COHERENCE: ProcessRules(("VV", "VH"), IW_SUBSWATHS),
    # The older processes took any Sentinel-1 polarisation and sub-swath (their CWL types them as
    # plain strings, cloudinsar/s1-workflows cwl/sar_coherence_parallel.cwl).
    SAR_COHERENCE: ProcessRules(("VV", "VH", "HH", "HV"), SUBSWATHS, removed_from_cdse=dt.date(2026, 5, 4)),
    SAR_COHERENCE_PARALLEL: ProcessRules(
        ("VV", "VH", "HH", "HV"), SUBSWATHS, removed_from_cdse=dt.date(2026, 3, 31)
    ),
}
PROCESS_NAMES = tuple(PROCESS_RULES)


class ProcessNotOfferedError(RuntimeError):
    """The backend does not list the chosen process: submitting would only fail there."""


class NamespaceResolutionError(RuntimeError):
    """GitHub did not say which commit ``main`` is; the message names the URL and the commit setting."""


def apex_namespace(commit: str) -> str:
    """The UDP's namespace URL at ``commit``: the file as it was then, whatever ``main`` becomes."""
    return f"https://raw.githubusercontent.com/{APEX_REPOSITORY}/{commit}/{APEX_UDP_PATH}"


def commit_of_namespace(namespace: str | None) -> str | None:
    """The commit a pinned namespace URL names; ``None`` for a branch URL or none at all."""
    match = _PINNED_NAMESPACE.match(namespace or "")
    return match["commit"] if match else None


@cache  # once per process and API: a run of many partitions asks GitHub once, not per partition
def resolve_apex_commit(github_api_url: str) -> str:
    """The commit ``main`` of the APEx algorithm catalogue is at, from GitHub's REST API.

    ``GET /repos/{owner}/{repo}/commits/{ref}`` with ``Accept: application/vnd.github.sha``
    answers the bare 40-hex sha.
    """
    url = f"{github_api_url.rstrip('/')}/repos/{APEX_REPOSITORY}/commits/{APEX_BRANCH}"
    remedy = (
        f"set the coherence resource's apex_commit to a commit of {APEX_REPOSITORY} "
        f"(https://github.com/{APEX_REPOSITORY}/commits/{APEX_BRANCH}) or check its github_api_url"
    )
    try:
        response = retrying_session(attempts=3, raise_on_status=False).get(
            url, headers={"Accept": "application/vnd.github.sha"}, timeout=30
        )
    except requests.RequestException as error:
        raise NamespaceResolutionError(
            f"cannot resolve {APEX_REPOSITORY}@{APEX_BRANCH} to a commit: {url} did not answer "
            f"({type(error).__name__}); {remedy}"
        ) from None
    sha = response.text.strip()
    if response.status_code != 200 or not is_commit_sha(sha):
        answer = f"HTTP {response.status_code}" + (
            "" if response.status_code != 200 else " without a commit sha"
        )
        raise NamespaceResolutionError(
            f"cannot resolve {APEX_REPOSITORY}@{APEX_BRANCH} to a commit: {url} answered {answer}; {remedy}"
        )
    return sha


@dataclass(frozen=True)
class CoherenceRequest:
    """The run-wide choices: process, polarisation, coherence estimation window, and the APEx commit.

    ``apex_commit`` empty means "resolve ``main`` when submitting" (:func:`pin_apex_commit`);
    ``github_api_url`` is where that is asked.
    """

    process: str = SENTINEL1_SAR_COHERENCE
    polarisation: str = "VV"
    coherence_window_rg: int = 21
    coherence_window_az: int = 5
    apex_commit: str = ""
    github_api_url: str = GITHUB_API_URL

    @property
    def namespace(self) -> str | None:
        """The namespace URL submitted: the APEx UDP at the pinned commit; ``None`` for a backend process
        or while no commit is pinned (nothing is submitted then, see :func:`coherence_process_graph`)."""
        if self.process != SENTINEL1_SAR_COHERENCE or not self.apex_commit:
            return None
        return apex_namespace(self.apex_commit)

    def __post_init__(self) -> None:
        if self.process not in PROCESS_RULES:
            raise ValueError(f"process {self.process!r} is unknown; choose one of {', '.join(PROCESS_NAMES)}")
        allowed = PROCESS_RULES[self.process].polarisations
        if self.polarisation not in allowed:
            raise ValueError(
                f"polarisation {self.polarisation!r} is not accepted by {self.process}; "
                f"it accepts {', '.join(allowed)}"
            )
        for name in ("coherence_window_rg", "coherence_window_az"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive number of pixels, got {getattr(self, name)}")
        if self.apex_commit and not is_commit_sha(self.apex_commit):
            raise ValueError(
                f"apex_commit {self.apex_commit!r} is not a full commit sha (40 lower-case hex digits) of "
                f"{APEX_REPOSITORY}; leave it empty to use the commit main is at when submitting"
            )

    def check_burst(self, burst: BurstKey) -> None:
        """Refuse a burst whose sub-swath the process does not accept (EW bursts for the APEx process)."""
        allowed = PROCESS_RULES[self.process].subswaths
        if burst.subswath not in allowed:
            raise ValueError(
                f"burst {burst}: sub-swath {burst.subswath} is not accepted by {self.process}; it accepts "
                f"{', '.join(allowed)}. Remove the burst from the burst file or choose another process"
            )


def pin_apex_commit(request: CoherenceRequest, ledger: Ledger) -> CoherenceRequest:
    """``request`` with the APEx commit its jobs in ``ledger``'s partition are submitted at.

    A configured ``apex_commit`` wins; else the commit of the partition's latest recorded APEx job
    (resubmissions run the code that ran before); else the commit ``main`` is at now.
    """
    if request.process != SENTINEL1_SAR_COHERENCE or request.apex_commit:
        return request
    recorded = [commit for job in ledger.jobs if (commit := commit_of_namespace(job.namespace))]
    commit = recorded[-1] if recorded else resolve_apex_commit(request.github_api_url)
    return dataclasses.replace(request, apex_commit=commit)


def check_process_offered(connection: openeo.Connection, process: str) -> None:
    """Refuse a process that the backend's ``GET /processes`` does not list.

    The APEx process is a user-defined process resolved from its namespace URL, which backends do
    not list, so it is not looked up. The client caches the listing per connection.
    """
    if process == SENTINEL1_SAR_COHERENCE:
        return
    offered = {listed["id"] for listed in connection.list_processes()}
    if process not in offered:
        removed = PROCESS_RULES[process].removed_from_cdse
        raise ProcessNotOfferedError(
            f"process {process} is not offered by {connection.root_url}"
            + (f"; CDSE removed it on {removed.isoformat()}" if removed else "")
            + f"; use {SENTINEL1_SAR_COHERENCE}"
        )


def temporal_extent(pairs: list[Pair]) -> list[str]:
    """First reference date to last secondary date, both plain dates; the process's end is inclusive."""
    return [
        min(reference for reference, _ in pairs).isoformat(),
        max(secondary for _, secondary in pairs).isoformat(),
    ]


def process_arguments(
    request: CoherenceRequest, burst: BurstKey, pairs: list[Pair], baseline_days: int
) -> dict[str, Any]:
    """The arguments that ``request.process`` takes for these pairs of one burst and baseline."""
    request.check_burst(burst)
    common = {
        "burst_id": burst.burst_id,
        "sub_swath": burst.subswath,
        "polarization": request.polarisation,
        "coherence_window_rg": request.coherence_window_rg,
        "coherence_window_az": request.coherence_window_az,
    }
    if request.process == SAR_COHERENCE_PARALLEL:
        return {
            **common,
            "InSAR_pairs": [[reference.isoformat(), secondary.isoformat()] for reference, secondary in pairs],
        }
    return {**common, "temporal_extent": temporal_extent(pairs), "temporal_baseline": baseline_days}


def coherence_process_graph(
    connection: openeo.Connection, request: CoherenceRequest, arguments: dict[str, Any]
):
    """What to submit as a batch job: the UDP itself, or an older process followed by ``save_result``."""
    if request.process == SENTINEL1_SAR_COHERENCE:
        if request.namespace is None:  # the code that runs must be known later: never the moving main branch
            raise ValueError(f"{SENTINEL1_SAR_COHERENCE} is not pinned to a commit: see pin_apex_commit")
        return connection.datacube_from_process(
            SENTINEL1_SAR_COHERENCE, namespace=request.namespace, **arguments
        )
    return connection.datacube_from_process(request.process, **arguments).save_result(format="GTiff")
