"""The chain against today's CDSE: removed processes refused before submission, both output namings stacked."""

import re
from collections.abc import Callable

import pytest
import xarray as xr

from coherence_assets.jobs.processes import SAR_COHERENCE
from coherence_assets_tests.defs.conftest import (
    BURST,
    PARTITION,
    WINDOW,
    Chain,
    RestartableBackend,
    day,
    failure_text,
)

OUTPUT_NAMES = {
    "process": re.compile(r"^S1_coh_2images_\d{8}T\d{6}_\d{8}T\d{6}\.tif$"),
    "openeo_date": re.compile(r"^openEO_\d{4}-\d{2}-\d{2}Z\.tif$"),
}


def test_a_process_cdse_removed_is_refused_before_anything_is_submitted(
    restartable_backend: Callable[..., RestartableBackend], make_chain: Callable[..., Chain]
):
    backend = restartable_backend(offers_retired_processes=False)
    chain = make_chain(backend.live, process=SAR_COHERENCE)
    chain.refresh_bursts()

    result = chain.submit(raise_on_error=False)

    assert not result.success
    assert (
        f"process sar_coherence is not offered by {backend.live.url}; CDSE removed it on 2026-05-04; "
        "use sentinel1_sar_coherence"
    ) in failure_text(result)
    assert chain.backend_jobs() == {}
    assert not chain.store.fs.exists(chain.store.coherence_job_path(BURST, WINDOW))


@pytest.mark.stand_in
def test_a_polarisation_the_apex_process_refuses_fails_the_run_in_one_line_before_submitting(chain: Chain):
    chain.refresh_bursts()

    result = chain.run(
        "submit_coherence_jobs",
        PARTITION,
        run_config={"resources": {"coherence": {"config": {"polarisation": "HH"}}}},
        raise_on_error=False,
    )

    assert not result.success
    (init_failure,) = [
        event for event in result.all_events if event.event_type_value == "RESOURCE_INIT_FAILURE"
    ]
    error, messages = init_failure.event_specific_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    assert any(
        "polarisation 'HH' is not accepted by sentinel1_sar_coherence; it accepts VV, VH" in message
        for message in messages
    ), messages
    assert chain.backend_jobs() == {}
    assert not chain.store.fs.exists(chain.store.insar_pairs_path(BURST, WINDOW))


@pytest.mark.slow
@pytest.mark.parametrize("result_naming", sorted(OUTPUT_NAMES))
def test_both_output_namings_reach_the_cube_through_sensor_and_download(
    restartable_backend: Callable[..., RestartableBackend],
    make_chain: Callable[..., Chain],
    result_naming: str,
):
    """``openEO_<date>Z.tif`` is how APEx's benchmark stored the outputs of sentinel1_sar_coherence."""
    backend = restartable_backend(result_naming=result_naming)
    chain = make_chain(backend.live)
    chain.refresh_bursts()
    chain.submit()
    (record,) = chain.ledger().jobs
    chain.wait_for_ledger_jobs()
    results = chain.openeo_backend.connect().job(record.job_id).get_results().get_metadata()
    assert len(results["assets"]) == len(record.pairs)
    assert all(OUTPUT_NAMES[result_naming].match(name) for name in results["assets"])

    (download,) = chain.launch(chain.tick())
    assert download.success
    (check,) = download.get_asset_check_evaluations()
    assert check.passed, check.description
    stacked = chain.run("stack_coherence_cube", BURST)

    assert stacked.success
    cube = xr.open_zarr(chain.data_dir / "coherence_cube" / f"{BURST}.zarr")
    stacked_pairs = [
        (day(reference), day(secondary))
        for reference, secondary in zip(cube["time"].values, cube["secondary_time"].values, strict=True)
    ]
    assert stacked_pairs == record.pairs
    assert int(cube["coherence"].notnull().sum()) > 0
    assert chain.ledger(PARTITION).jobs[0].job_id == record.job_id
