"""``coherence_rasters``: one validated GeoTIFF per pair from finished jobs, complete or not at all."""

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import rasterio

from coherence_assets.pairs.pair import Pair, format_pair
from coherence_assets.raster_files.names import raster_file_name
from coherence_assets.raster_files.validation import validate_coherence_raster
from coherence_assets_tests.conftest import LiveBackend
from coherence_assets_tests.defs.conftest import (
    BURST,
    PARTITION,
    WINDOW,
    Chain,
    RestartableBackend,
    failure_text,
    materialization_metadata,
)
from coherence_assets_tests.defs.downloaded_window import write_pair_table


def rasters_dir(chain: Chain) -> Path:
    return chain.data_dir / "coherence_rasters" / BURST / WINDOW


def run_log(chain: Chain, result) -> str:
    return "\n".join(event.user_message for event in chain.instance.all_logs(result.run_id))


@pytest.fixture
def finished_chain(chain: Chain, backend: LiveBackend) -> Chain:
    """Pairs submitted for ``PARTITION`` and the backend's job finished, nothing downloaded yet; asking for
    ``backend`` marks its tests ``stand_in``, so the chain's jobs run on the stand-in."""
    chain.refresh_bursts()
    chain.submit()
    chain.wait_for_ledger_jobs()
    return chain


def pairs_of(chain: Chain) -> list[Pair]:
    return [pair for job in chain.ledger().jobs for pair in job.pairs]


def download(chain: Chain, raise_on_error: bool = True):
    return chain.run("download_coherence_rasters", PARTITION, raise_on_error=raise_on_error)


def test_every_pair_is_downloaded_as_a_validated_geotiff_named_by_both_dates(finished_chain: Chain):
    chain = finished_chain

    result = download(chain)

    pairs = pairs_of(chain)
    assert sorted(path.name for path in rasters_dir(chain).iterdir()) == sorted(
        raster_file_name(*pair) for pair in pairs
    )
    assert raster_file_name(*pairs[0]) == f"{pairs[0][0]:%Y%m%d}_{pairs[0][1]:%Y%m%d}.tif"
    with rasterio.open(rasters_dir(chain) / raster_file_name(*pairs[0])) as raster:
        assert raster.dtypes == ("float32",)
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "every_pair_has_a_raster"
    assert check.passed, check.description
    metadata = materialization_metadata(result, "coherence_rasters")
    assert metadata["files"] == metadata["downloaded_now"] == len(pairs)
    assert metadata["pairs_waiting_for_jobs"] == 0
    for pair in pairs:
        assert format_pair(pair) in metadata["per_pair"]
    assert set(metadata["job_usage_and_costs"]) == {job.job_id for job in chain.ledger().jobs}


@pytest.mark.slow
def test_a_rerun_skips_the_files_already_present(finished_chain: Chain):
    chain = finished_chain
    download(chain)
    before = {path.name: path.stat().st_mtime_ns for path in rasters_dir(chain).iterdir()}

    result = download(chain)

    assert materialization_metadata(result, "coherence_rasters")["downloaded_now"] == 0
    assert {path.name: path.stat().st_mtime_ns for path in rasters_dir(chain).iterdir()} == before
    assert "skipped" in run_log(chain, result)


@pytest.mark.slow
def test_a_download_cut_off_once_is_fetched_again_and_completes(
    finished_chain: Chain, backend: LiveBackend, caplog: pytest.LogCaptureFixture
):
    chain = finished_chain
    backend.add_fault(kind="truncate_download", truncate_after_bytes=1000, times=1)

    with caplog.at_level(logging.WARNING, logger="coherence_assets.rasters.download"):
        result = download(chain)

    assert any("cut short on attempt 1" in record.getMessage() for record in caplog.records)
    (check,) = result.get_asset_check_evaluations()
    assert check.passed, check.description
    assert materialization_metadata(result, "coherence_rasters")["files"] == len(pairs_of(chain))
    assert not list(rasters_dir(chain).glob("*.part"))


@pytest.mark.slow
def test_a_download_cut_off_on_every_attempt_fails_the_run_and_the_rerun_completes_it(
    finished_chain: Chain, backend: LiveBackend
):
    chain = finished_chain
    pair = pairs_of(chain)[0]
    backend_name = f"S1_coh_2images_{pair[0]:%Y%m%d}T"
    backend.add_fault(kind="truncate_download", path=backend_name, truncate_after_bytes=1000, times=3)

    failed = download(chain, raise_on_error=False)

    assert not failed.success
    message = failure_text(failed)
    assert backend_name in message
    assert "cut short" in message and "the next run resumes from it" in message
    target = rasters_dir(chain) / raster_file_name(*pair)
    assert not target.exists()  # never a truncated file under the final name
    # each of the three attempts resumed where the previous one was cut: nothing received is lost
    assert (target.parent / f"{target.name}.part").stat().st_size == 3 * 1000
    assert len(list(rasters_dir(chain).glob("*.tif"))) == len(pairs_of(chain)) - 1

    result = download(chain)

    assert materialization_metadata(result, "coherence_rasters")["downloaded_now"] == 1
    (check,) = result.get_asset_check_evaluations()
    assert check.passed, check.description
    assert not list(rasters_dir(chain).glob("*.part"))


@pytest.mark.slow
def test_a_corrupt_geotiff_in_the_folder_is_removed_and_downloaded_again_in_the_same_run(
    finished_chain: Chain,
):
    """Its pixels broken, its header and provenance intact: no size and no header check trusts it,
    only validation can tell; the same run removes it and fetches it again."""
    chain = finished_chain
    download(chain)
    corrupt = rasters_dir(chain) / raster_file_name(*pairs_of(chain)[2])
    data = bytearray(corrupt.read_bytes())
    middle = len(data) // 2  # inside the deflated tiles
    data[middle : middle + 512] = bytes(512)
    corrupt.write_bytes(bytes(data))

    repaired = download(chain)

    assert materialization_metadata(repaired, "coherence_rasters")["downloaded_now"] == 1
    validate_coherence_raster(chain.store.fs, str(corrupt))
    (check,) = repaired.get_asset_check_evaluations()
    assert check.passed, check.description
    assert f"{corrupt} is corrupt or not a GeoTIFF" in run_log(chain, repaired)


@pytest.mark.slow
def test_a_truncated_file_under_the_final_name_is_replaced_by_a_complete_download(finished_chain: Chain):
    chain = finished_chain
    download(chain)
    truncated = rasters_dir(chain) / raster_file_name(*pairs_of(chain)[1])
    truncated.write_bytes(truncated.read_bytes()[:500])

    result = download(chain)

    assert materialization_metadata(result, "coherence_rasters")["downloaded_now"] == 1
    (check,) = result.get_asset_check_evaluations()
    assert check.passed, check.description


def test_pairs_of_a_running_job_wait_without_failing_the_check(
    restartable_backend: Callable[..., RestartableBackend], make_chain: Callable[..., Chain]
):
    backend = restartable_backend(job_seconds_per_pair=5)
    chain = make_chain(backend.live)
    chain.refresh_bursts()
    chain.submit()
    chain.wait_for_jobs([job.job_id for job in chain.ledger().jobs], statuses=frozenset({"running"}))

    result = download(chain)

    (check,) = result.get_asset_check_evaluations()
    assert check.passed, check.description
    metadata = materialization_metadata(result, "coherence_rasters")
    assert metadata["files"] == 0
    assert metadata["pairs_waiting_for_jobs"] == len(pairs_of(chain))


def test_downloading_before_any_job_was_submitted_says_which_asset_comes_first(chain: Chain):
    chain.refresh_bursts()
    write_pair_table(chain, WINDOW)

    result = chain.run("download_coherence_rasters", PARTITION, raise_on_error=False)

    assert not result.success
    assert "materialise coherence_job for" in failure_text(result)
