"""What each coherence process accepts, refused before anything is submitted, and whether a backend offers it."""

import re
import socket
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import openeo
import pytest

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.cdse_facts import APEX_NAMESPACE
from coherence_assets.defs.resources import CoherenceParameters
from coherence_assets.jobs.ledger import ERROR, JobRecord, Ledger
from coherence_assets.jobs.processes import (
    SAR_COHERENCE,
    SAR_COHERENCE_PARALLEL,
    SENTINEL1_SAR_COHERENCE,
    CoherenceRequest,
    NamespaceResolutionError,
    ProcessNotOfferedError,
    apex_namespace,
    check_process_offered,
    coherence_process_graph,
    commit_of_namespace,
    pin_apex_commit,
    process_arguments,
    resolve_apex_commit,
)
from coherence_assets.settings import LOCAL_GITHUB_API_PATH
from coherence_assets_tests.conftest import LiveBackend, start_backend
from embedded_openeo.github_api import MAIN_COMMIT

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


def github_api(backend: LiveBackend) -> str:
    return backend.url + LOCAL_GITHUB_API_PATH


def apex_job(namespace: str | None) -> JobRecord:
    return JobRecord(
        "s", "t", SENTINEL1_SAR_COHERENCE, 12, PAIRS, {}, job_id="j", status=ERROR, namespace=namespace
    )


def test_main_is_resolved_to_a_commit_through_githubs_commits_route_and_submitted_at_that_commit(
    backend: LiveBackend,
):
    request = pin_apex_commit(CoherenceRequest(github_api_url=github_api(backend)), Ledger("b", "w", "u"))

    assert request.apex_commit == MAIN_COMMIT and re.fullmatch(r"[0-9a-f]{40}", MAIN_COMMIT)
    assert request.namespace == APEX_NAMESPACE.replace("refs/heads/main", MAIN_COMMIT)
    assert commit_of_namespace(request.namespace) == MAIN_COMMIT
    assert commit_of_namespace(APEX_NAMESPACE) is None  # the branch URL pins nothing


def test_a_partition_reuses_the_commit_its_ledger_recorded_without_asking_github():
    recorded = "3b16249e9817cafc049836ec273d2c04e08d6969"
    ledger = Ledger("b", "w", "u", [apex_job(None), apex_job(apex_namespace(recorded))])
    unreachable = CoherenceRequest(github_api_url=f"http://127.0.0.1:{closed_port()}")

    assert pin_apex_commit(unreachable, ledger).apex_commit == recorded
    configured = "0123456789abcdef0123456789abcdef01234567"
    assert pin_apex_commit(CoherenceRequest(apex_commit=configured), ledger).apex_commit == configured
    assert pin_apex_commit(CoherenceRequest(process=SAR_COHERENCE), Ledger("b", "w", "u")).namespace is None


def test_a_ledger_written_before_namespaces_were_recorded_still_reads():
    old = apex_job(None).to_json()
    del old["namespace"]

    (job,) = Ledger.from_json({"burst": "b", "window": "w", "backend_url": "u", "jobs": [old]}).jobs

    assert job.namespace is None and job.status == ERROR


def test_a_resolution_that_fails_is_one_line_naming_the_url_and_the_commit_setting(
    backend: LiveBackend, instant_retries: None
):
    port = closed_port()
    with pytest.raises(NamespaceResolutionError) as unreachable:
        pin_apex_commit(CoherenceRequest(github_api_url=f"http://127.0.0.1:{port}"), Ledger("b", "w", "u"))
    with pytest.raises(NamespaceResolutionError) as not_github:
        resolve_apex_commit(backend.url + "/not-github")

    url = f"http://127.0.0.1:{port}/repos/ESA-APEx/apex_algorithms/commits/main"
    assert str(unreachable.value).startswith(
        f"cannot resolve ESA-APEx/apex_algorithms@main to a commit: {url} did not answer (ConnectionError); "
        "set the coherence resource's apex_commit to a commit of ESA-APEx/apex_algorithms"
    )
    assert "answered HTTP 404; set the coherence resource's apex_commit" in str(not_github.value)
    assert "\n" not in str(unreachable.value) + str(not_github.value)


def test_a_configured_commit_that_is_not_a_full_sha_is_refused_and_nothing_unpinned_is_submitted(
    backend: LiveBackend,
):
    with pytest.raises(ValueError, match="apex_commit 'main' is not a full commit sha"):
        CoherenceRequest(apex_commit="main")
    with pytest.raises(ValueError, match="is not pinned to a commit"):
        coherence_process_graph(openeo.connect(backend.url), CoherenceRequest(), {})


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
