"""What each coherence process accepts, refused before anything is submitted, and whether a backend offers it."""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import openeo
import pytest

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.defs.resources import CoherenceParameters
from coherence_assets.jobs.processes import (
    SAR_COHERENCE,
    SAR_COHERENCE_PARALLEL,
    SENTINEL1_SAR_COHERENCE,
    CoherenceRequest,
    ProcessNotOfferedError,
    check_process_offered,
    process_arguments,
)
from coherence_assets_tests.conftest import LiveBackend, start_backend

IW_BURST = BurstKey(15, 30343, "IW2")
EW_BURST = BurstKey(15, 30343, "EW2")
PAIRS = [(date(2023, 7, 3), date(2023, 7, 15))]


@pytest.mark.parametrize("polarisation", ["HH", "HV"])
def test_the_apex_process_refuses_hh_and_hv_naming_the_value_and_the_allowed_ones(polarisation: str):
    with pytest.raises(ValueError) as refused:
        CoherenceRequest(process=SENTINEL1_SAR_COHERENCE, polarisation=polarisation)

    assert str(refused.value) == (
        f"polarisation {polarisation!r} is not accepted by sentinel1_sar_coherence; it accepts VV, VH"
    )


@pytest.mark.parametrize("process", [SAR_COHERENCE, SAR_COHERENCE_PARALLEL])
def test_the_older_processes_accept_every_sentinel1_polarisation_and_ew_bursts(process: str):
    request = CoherenceRequest(process=process, polarisation="HH")

    arguments = process_arguments(request, EW_BURST, PAIRS, 12)

    assert (arguments["polarization"], arguments["sub_swath"]) == ("HH", "EW2")


def test_the_apex_process_refuses_an_ew_burst_naming_the_burst_and_the_allowed_sub_swaths():
    with pytest.raises(ValueError) as refused:
        process_arguments(CoherenceRequest(), EW_BURST, PAIRS, 12)

    message = str(refused.value)
    assert message.startswith(
        "burst t015_030343_ew2: sub-swath EW2 is not accepted by sentinel1_sar_coherence"
    )
    assert "it accepts IW1, IW2, IW3" in message
    assert process_arguments(CoherenceRequest(), IW_BURST, PAIRS, 12)["sub_swath"] == "IW2"


@pytest.fixture
def cdse_like_backend(tmp_path: Path) -> Iterator[LiveBackend]:
    """An embedded backend that, like today's CDSE, no longer offers the two older processes."""
    yield from start_backend(tmp_path / "backend", offers_retired_processes=False)


@pytest.mark.parametrize(
    ("process", "removed"), [(SAR_COHERENCE, "2026-05-04"), (SAR_COHERENCE_PARALLEL, "2026-03-31")]
)
def test_a_process_the_backend_does_not_list_is_refused_with_its_removal_date(
    cdse_like_backend: LiveBackend, process: str, removed: str
):
    connection = openeo.connect(cdse_like_backend.url).authenticate_basic("local", "local")

    with pytest.raises(ProcessNotOfferedError) as refused:
        check_process_offered(connection, process)

    assert str(refused.value) == (
        f"process {process} is not offered by {connection.root_url}; CDSE removed it on {removed}; "
        "use sentinel1_sar_coherence"
    )
    check_process_offered(connection, SENTINEL1_SAR_COHERENCE)  # a UDP: not listed, never refused


def test_a_backend_that_still_lists_the_older_processes_lets_them_through(backend: LiveBackend):
    connection = openeo.connect(backend.url).authenticate_basic("local", "local")

    for process in (SAR_COHERENCE, SAR_COHERENCE_PARALLEL, SENTINEL1_SAR_COHERENCE):
        check_process_offered(connection, process)


def test_the_apex_process_takes_the_polarisation_enum_exactly_not_lower_case():
    with pytest.raises(
        ValueError, match="polarisation 'vv' is not accepted by sentinel1_sar_coherence; it accepts VV, VH"
    ):
        CoherenceRequest(polarisation="vv")


def test_the_coherence_resource_refuses_a_baseline_that_is_not_a_multiple_of_6_when_configured():
    with pytest.raises(
        Exception, match=r"temporal baseline\(s\) 15 day\(s\) are not positive multiples of 6"
    ):
        CoherenceParameters(temporal_baselines_days=[12, 15])
    assert CoherenceParameters(temporal_baselines_days=[6, 12, 48]).longest_baseline_days == 48
