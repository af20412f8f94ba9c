"""The openEO processes that compute coherence, and how each is called.

CDSE removed ``sar_coherence_parallel`` (2026-03-31) and ``sar_coherence`` (2026-05-04); the
current one is the APEx user-defined process ``sentinel1_sar_coherence``. It returns a STAC
resource itself, so its job is created straight from the process; the older two need
``save_result(format="GTiff")``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import openeo

from coherence_assets.bursts.burst_ids import BurstKey

APEX_NAMESPACE = (
    "https://raw.githubusercontent.com/ESA-APEx/apex_algorithms/refs/heads/main/algorithm_catalog/"
    "eurac/sentinel1_sar_coherence/openeo_udp/sentinel1_sar_coherence.json"
)
SENTINEL1_SAR_COHERENCE = "sentinel1_sar_coherence"
SAR_COHERENCE = "sar_coherence"
SAR_COHERENCE_PARALLEL = "sar_coherence_parallel"
PROCESS_NAMES = (SENTINEL1_SAR_COHERENCE, SAR_COHERENCE, SAR_COHERENCE_PARALLEL)
DEFAULT_PROCESS = SENTINEL1_SAR_COHERENCE

Pair = tuple[dt.date, dt.date]


def format_pair(pair: Pair) -> str:
    """``2023-07-05/2023-07-17``: how logs, metadata and errors name a pair."""
    return f"{pair[0].isoformat()}/{pair[1].isoformat()}"


@dataclass(frozen=True)
class CoherenceRequest:
    """The run-wide choices: process, polarisation and coherence estimation window."""

    process: str = DEFAULT_PROCESS
    polarisation: str = "VV"
    coherence_window_rg: int = 21
    coherence_window_az: int = 5

    def __post_init__(self) -> None:
        if self.process not in PROCESS_NAMES:
            raise ValueError(f"process {self.process!r} is unknown; choose one of {', '.join(PROCESS_NAMES)}")
        if self.polarisation not in ("VV", "VH", "HH", "HV"):
            raise ValueError(f"polarisation {self.polarisation!r} is not one of VV, VH, HH, HV")
        for name in ("coherence_window_rg", "coherence_window_az"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive number of pixels, got {getattr(self, name)}")


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
        return connection.datacube_from_process(
            SENTINEL1_SAR_COHERENCE, namespace=APEX_NAMESPACE, **arguments
        )
    return connection.datacube_from_process(request.process, **arguments).save_result(format="GTiff")
