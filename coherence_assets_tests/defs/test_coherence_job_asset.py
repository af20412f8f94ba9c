"""``coherence_job``: openEO jobs for the pairs no job covers yet, recorded in a ledger, never twice."""

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from coherence_assets.bursts.burst_ids import BurstKey
from coherence_assets.jobs.batching import PairBatch
from coherence_assets.jobs.ledger import NOT_CREATED, Ledger
from coherence_assets.jobs.processes import (
    SAR_COHERENCE,
    SAR_COHERENCE_PARALLEL,
    SENTINEL1_SAR_COHERENCE,
    CoherenceRequest,
    coherence_process_graph,
)
from coherence_assets.jobs.submission import enter_job
from coherence_assets.pairs.pair import Pair
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.defs.conftest import (
    BURST,
    CLIENT_SECRET,
    PARTITION,
    WINDOW,
    Chain,
    failure_text,
    materialization_metadata,
)
from embedded_openeo.github_api import MAIN_COMMIT

pytestmark = pytest.mark.stand_in  # every test submits jobs to the backend

# the namespace as the APEx algorithm catalogue publishes it in its usage example
# (https://algorithm-catalogue.apex.esa.int/apps/sentinel1_sar_coherence), written out: the
# product's constant is what is under test
PUBLISHED_APEX_NAMESPACE = (
    "https://raw.githubusercontent.com/ESA-APEx/apex_algorithms/refs/heads/main/algorithm_catalog/"
    "eurac/sentinel1_sar_coherence/openeo_udp/sentinel1_sar_coherence.json"
)


def pair_table_path(chain: Chain) -> Path:
    return chain.data_dir / "insar_pairs" / BURST / f"{WINDOW}.parquet"


def pair_table(chain: Chain) -> pd.DataFrame:
    return pd.read_parquet(pair_table_path(chain))


def table_pairs(table: pd.DataFrame) -> list[Pair]:
    return [(row.reference_date, row.secondary_date) for row in table.itertuples()]


def write_pair_table(chain: Chain, table: pd.DataFrame) -> None:
    table.reset_index(drop=True).to_parquet(pair_table_path(chain), index=False)


def submit_jobs_only(chain: Chain, raise_on_error: bool = True):
    """``coherence_job`` alone, on whatever pair table is on disk."""
    return chain.materialize(["coherence_job"], PARTITION, raise_on_error=raise_on_error)


def process_nodes(chain: Chain, job_id: str) -> dict[str, dict[str, Any]]:
    """The job's process graph nodes by process id, as the backend stored them."""
    graph = chain.openeo_backend.connect().job(job_id).describe()["process"]["process_graph"]
    return {node["process_id"]: node for node in graph.values()}


def test_jobs_are_submitted_with_the_apex_process_and_an_extent_covering_exactly_the_pairs(chain: Chain):
    chain.refresh_bursts()

    result = chain.submit()

    pairs = table_pairs(pair_table(chain))
    (record,) = chain.ledger().jobs
    assert record.pairs == pairs
    assert list(chain.backend_jobs()) == [record.job_id]
    nodes = process_nodes(chain, record.job_id)
    assert set(nodes) == {SENTINEL1_SAR_COHERENCE}  # a UDP that returns STAC itself: no save_result
    node = nodes[SENTINEL1_SAR_COHERENCE]
    # submitted at the commit main is at (the backend's stand-in for GitHub's API says which), not at main
    assert node["namespace"] == PUBLISHED_APEX_NAMESPACE.replace("refs/heads/main", MAIN_COMMIT)
    assert record.namespace == node["namespace"]
    assert node["arguments"] == {
        "burst_id": 30343,
        "sub_swath": "IW2",
        "polarization": "VV",
        "coherence_window_rg": 21,
        "coherence_window_az": 5,
        "temporal_extent": [pairs[0][0].isoformat(), pairs[-1][1].isoformat()],
        "temporal_baseline": 12,
    }
    metadata = materialization_metadata(result, "coherence_job")
    assert metadata["submitted_jobs"] == 1
    assert metadata["pairs_submitted"] == len(pairs)
    assert metadata["process"] == SENTINEL1_SAR_COHERENCE


@pytest.mark.slow
def test_rematerialising_submits_no_second_job(chain: Chain):
    chain.refresh_bursts()
    chain.submit()
    jobs_before = chain.backend_jobs()

    result = chain.submit()

    assert chain.backend_jobs().keys() == jobs_before.keys()
    assert len(chain.ledger().jobs) == 1
    metadata = materialization_metadata(result, "coherence_job")
    assert metadata["submitted_jobs"] == 0
    assert metadata["pairs_already_covered"] == metadata["pairs"]


def test_only_pairs_new_to_the_table_are_submitted_in_contiguous_runs(chain: Chain):
    """Pairs 3-4 and 7-8 appear after the first submission: two jobs, one per run of new pairs."""
    chain.refresh_bursts()
    chain.materialize(["insar_pairs"], PARTITION)
    full = pair_table(chain)
    assert len(full) == 8
    write_pair_table(chain, full.iloc[[0, 1, 4, 5]])
    submit_jobs_only(chain)
    (first,) = chain.ledger().jobs

    write_pair_table(chain, full)
    result = submit_jobs_only(chain)

    pairs = table_pairs(full)
    new_jobs = chain.ledger().jobs[1:]
    assert [job.pairs for job in new_jobs] == [pairs[2:4], pairs[6:8]]
    for job in new_jobs:
        extent = [job.pairs[0][0].isoformat(), job.pairs[-1][1].isoformat()]
        assert (
            process_nodes(chain, job.job_id)[SENTINEL1_SAR_COHERENCE]["arguments"]["temporal_extent"]
            == extent
        )
    assert not set(first.pairs) & {pair for job in new_jobs for pair in job.pairs}
    assert len(chain.backend_jobs()) == 3
    assert materialization_metadata(result, "coherence_job")["pairs_already_covered"] == 4


def test_an_empty_pair_table_submits_nothing_and_says_so(chain: Chain):
    chain.refresh_bursts()
    chain.materialize(["insar_pairs"], PARTITION)
    write_pair_table(chain, pair_table(chain).iloc[0:0])

    result = submit_jobs_only(chain)

    metadata = materialization_metadata(result, "coherence_job")
    assert metadata["submitted_jobs"] == 0
    assert "no pairs" in metadata["reason"]
    assert chain.backend_jobs() == {}
    assert chain.ledger().jobs == []


def enter_unrecorded_job(chain: Chain) -> tuple[Ledger, CoherenceRequest]:
    """A ledger as a run leaves it when it dies after entering a job and before recording its id."""
    request = CoherenceRequest(apex_commit=MAIN_COMMIT)
    ledger = Ledger(burst=BURST, window=WINDOW, backend_url=chain.backend.url)
    batch = PairBatch(12, tuple(table_pairs(pair_table(chain))))
    enter_job(ledger, BurstKey.parse(BURST), request, batch)
    chain.write_ledger(ledger)
    return ledger, request


def test_a_job_entered_and_created_but_not_recorded_is_adopted_not_duplicated(chain: Chain):
    chain.refresh_bursts()
    chain.materialize(["insar_pairs"], PARTITION)
    ledger, request = enter_unrecorded_job(chain)
    (record,) = ledger.jobs
    connection = chain.openeo_backend.connect()
    created = connection.create_job(
        coherence_process_graph(connection, request, record.arguments), title=record.title
    )

    result = submit_jobs_only(chain)

    (adopted,) = chain.ledger().jobs
    assert adopted.job_id == created.job_id
    assert adopted.status == "created"  # the sensor starts it when a slot is free
    assert list(chain.backend_jobs()) == [created.job_id]
    assert materialization_metadata(result, "coherence_job")["submitted_jobs"] == 0


def test_a_job_entered_but_never_created_is_created_by_the_next_run(chain: Chain):
    """The run died before its create request reached the backend: the pairs must still get a job."""
    chain.refresh_bursts()
    chain.materialize(["insar_pairs"], PARTITION)
    ledger, _ = enter_unrecorded_job(chain)
    (entered,) = ledger.jobs

    submit_jobs_only(chain)

    (record,) = chain.ledger().jobs
    assert record.submission_id == entered.submission_id
    assert record.status != NOT_CREATED and record.job_id is not None
    assert list(chain.backend_jobs()) == [record.job_id]
    assert chain.backend_jobs()[record.job_id]["title"] == entered.title


@pytest.mark.slow
@pytest.mark.parametrize("process", [SAR_COHERENCE, SAR_COHERENCE_PARALLEL])
def test_the_older_processes_are_submitted_with_save_result_and_deliver_every_pair(
    backend: LiveBackend, make_chain: Callable[..., Chain], process: str
):
    chain = make_chain(backend, process=process)
    chain.refresh_bursts()

    chain.submit()

    (record,) = chain.ledger().jobs
    nodes = process_nodes(chain, record.job_id)
    assert set(nodes) == {process, "save_result"}
    assert nodes["save_result"]["arguments"]["format"] == "GTiff"
    arguments = nodes[process]["arguments"]
    if process == SAR_COHERENCE_PARALLEL:
        assert arguments["InSAR_pairs"] == [[ref.isoformat(), sec.isoformat()] for ref, sec in record.pairs]
    else:
        assert arguments["temporal_extent"] == [
            record.pairs[0][0].isoformat(),
            record.pairs[-1][1].isoformat(),
        ]
    assert chain.wait_for_ledger_jobs() == {record.job_id: "finished"}
    rasters = chain.run("download_coherence_rasters", PARTITION)
    (check,) = rasters.get_asset_check_evaluations()
    assert check.passed, check.description
    assert len(list((chain.data_dir / "coherence_rasters" / BURST / WINDOW).glob("*.tif"))) == len(
        record.pairs
    )


def test_a_wrong_client_secret_fails_with_a_clear_message_without_the_secret(
    chain: Chain, backend: LiveBackend, monkeypatch: pytest.MonkeyPatch
):
    wrong_secret = "wrong-secret-5f1c9a"
    chain.refresh_bursts()
    monkeypatch.setenv("OPENEO_AUTH_CLIENT_SECRET", wrong_secret)

    result = chain.submit(raise_on_error=False)

    assert not result.success
    message = failure_text(result)
    assert backend.url in message
    assert "401" in message
    assert "OPENEO_AUTH_CLIENT_SECRET" in message  # what the operator has to fix
    assert wrong_secret not in message
    assert not secret_traces(chain, wrong_secret)
    monkeypatch.setenv("OPENEO_AUTH_CLIENT_SECRET", CLIENT_SECRET)
    assert chain.backend_jobs() == {}


def secret_traces(chain: Chain, secret: str) -> list[str]:
    """Where ``secret`` shows in the instance (event logs, run records, files on disk) or the outputs."""
    found = [
        f"run {run.run_id} event {event.dagster_event_type}"
        for run in chain.instance.get_runs()
        for event in chain.instance.all_logs(run.run_id)
        if secret in repr(event)
    ]
    found += [f"run {run.run_id} tags/config" for run in chain.instance.get_runs() if secret in repr(run)]
    home = Path(chain.instance.root_directory)
    found += [
        str(path)
        for folder in (home, chain.data_dir)
        for path in folder.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    ]
    return found


@pytest.mark.slow
def test_the_client_secret_never_reaches_run_logs_metadata_or_outputs(chain: Chain):
    chain.refresh_bursts()
    chain.submit()
    chain.wait_for_ledger_jobs()
    chain.launch(chain.tick())
    chain.run("stack_coherence_cube", BURST)

    assert len(chain.instance.get_runs()) == 4
    assert not secret_traces(chain, CLIENT_SECRET)
    control = secret_traces(chain, "sentinel1_sar_coherence")  # the scan does see logs, metadata and files
    assert any(" event " in trace for trace in control) and any(trace.endswith(".db") for trace in control)


def test_in_a_backfill_jobs_stay_created_for_the_sensor_to_start(chain: Chain):
    chain.refresh_bursts()
    chain.materialize(["insar_pairs"], PARTITION)

    result = chain.run("resubmit_coherence_jobs", PARTITION, tags={"dagster/backfill": "abcdefgh"})

    assert materialization_metadata(result, "coherence_job")["started_jobs"] == 0
    assert {job["status"] for job in chain.backend_jobs().values()} == {"created"}


def test_a_new_partition_never_lists_the_history_and_a_lost_data_folder_adopts_its_jobs(chain: Chain):
    """Issue 16 (no run pays for the account's history) and issue 15 (an emptied folder pays nothing twice)
    at once: the instance's materialisations tell a new partition from one whose ledger was lost."""
    chain.refresh_bursts()
    chain.submit()
    first = {record.job_id for record in chain.ledger().jobs}
    later_partition = f"{BURST}|2023-10-01"
    history_pass = chain.store.backend_listing_marker_path()  # written by the one pass over the history

    chain.submit(later_partition)
    listed_for_a_new_partition = chain.store.fs.exists(history_pass)
    later_jobs = {record.job_id for record in chain.ledger(later_partition).jobs}
    shutil.rmtree(chain.data_dir)  # a lifecycle rule emptied the bucket
    chain.refresh_bursts()
    rerun = chain.submit()

    assert not listed_for_a_new_partition, "a partition never submitted listed the account's history"
    assert chain.store.fs.exists(history_pass), "the lost ledger was not looked for on the backend"
    assert {record.job_id for record in chain.ledger().jobs} == first
    assert materialization_metadata(rerun, "coherence_job")["submitted_jobs"] == 0, "a job was paid for twice"
    assert set(chain.backend_jobs()) == first | later_jobs
