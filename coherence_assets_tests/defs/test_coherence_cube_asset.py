"""``coherence_cube``: every downloaded pair of a burst in one Zarr cube, new windows appended in place.

The rasters are written on disk (``downloaded_window``): stacking needs no backend.
"""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
import xarray as xr

from coherence_assets.defs.sensor_ticks import SensorTick
from coherence_assets.defs.sensors import CUBE_SENSOR
from coherence_assets_tests.defs.conftest import BURST, Chain, UnansweredPort, day, materialization_metadata
from coherence_assets_tests.defs.downloaded_window import downloaded_window

NEXT_WINDOW = "2023-10-01"


def stack(chain: Chain):
    return chain.run("stack_coherence_cube", BURST)


def cube_path(chain: Chain) -> Path:
    return chain.data_dir / "coherence_cube" / f"{BURST}.zarr"


def file_states(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_mtime_ns, path.read_bytes())
        for path in folder.rglob("*")
        if path.is_file() and not path.name.startswith(".")  # chunks, not metadata such as .zarray
    }


def test_the_cube_of_one_window_holds_every_pair_on_time_y_x(chain: Chain):
    chain.refresh_bursts()
    pairs = downloaded_window(chain, "2023-07-01")

    result = stack(chain)

    cube = xr.open_zarr(cube_path(chain))
    assert cube["coherence"].dims == ("time", "y", "x")
    assert cube["coherence"].dtype == np.float32
    assert [
        (day(t), day(s)) for t, s in zip(cube["time"].values, cube["secondary_time"].values, strict=True)
    ] == pairs
    assert set(cube["temporal_baseline"].values) == {12}
    metadata = materialization_metadata(result, "coherence_cube")
    assert metadata["pairs"] == metadata["pairs_added"] == len(pairs)
    assert metadata["path"].endswith(f"coherence_cube/{BURST}.zarr")


@pytest.mark.slow
def test_appending_a_window_keeps_the_first_windows_chunks_untouched_and_adds_its_dates(chain: Chain):
    chain.refresh_bursts()
    first_pairs = downloaded_window(chain, "2023-07-01")
    stack(chain)
    chunks = cube_path(chain) / "coherence"
    before = file_states(chunks)
    assert len(before) == len(first_pairs)  # one chunk per pair on this small grid
    first_values = xr.open_zarr(cube_path(chain))["coherence"].values

    second_pairs = downloaded_window(chain, NEXT_WINDOW)
    result = stack(chain)

    after = file_states(chunks)
    assert {name: after[name] for name in before} == before
    assert len(after) == len(before) + len(second_pairs)
    metadata = materialization_metadata(result, "coherence_cube")
    assert metadata["pairs_added"] == len(second_pairs)
    assert metadata["rewritten"] is False
    cube = xr.open_zarr(cube_path(chain))
    assert [day(t) for t in cube["time"].values] == [reference for reference, _ in first_pairs + second_pairs]
    np.testing.assert_array_equal(cube["coherence"].values[: len(first_pairs)], first_values)


@pytest.mark.slow
def test_a_window_stacked_after_a_later_one_lands_in_date_order(chain: Chain):
    chain.refresh_bursts()
    later_pairs = downloaded_window(chain, NEXT_WINDOW)
    stack(chain)
    earlier_pairs = downloaded_window(chain, "2023-07-01")

    result = stack(chain)

    assert materialization_metadata(result, "coherence_cube")["rewritten"] is True
    cube = xr.open_zarr(cube_path(chain))
    assert [day(t) for t in cube["time"].values] == sorted(ref for ref, _ in earlier_pairs + later_pairs)
    summer = cube.sel(time=slice("2023-07-01", "2023-09-30"))
    assert [day(t) for t in summer["time"].values] == [ref for ref, _ in earlier_pairs]
    by_pixel = xr.open_zarr(cube_path(chain), group="timeseries")
    xr.testing.assert_identical(by_pixel["coherence"].load(), cube["coherence"].load())


@pytest.mark.slow
def test_restacking_the_same_rasters_adds_nothing_and_rewrites_no_chunk(chain: Chain):
    chain.refresh_bursts()
    downloaded_window(chain, "2023-07-01")
    stack(chain)
    before = file_states(cube_path(chain) / "coherence")
    assert before
    cube_before = xr.open_zarr(cube_path(chain)).load()

    result = stack(chain)

    assert materialization_metadata(result, "coherence_cube")["pairs_added"] == 0
    assert file_states(cube_path(chain) / "coherence") == before
    xr.testing.assert_identical(xr.open_zarr(cube_path(chain)).load(), cube_before)


@pytest.mark.slow
def test_several_baselines_stack_on_a_leading_pair_dimension(
    unanswered_port: UnansweredPort, make_chain: Callable[..., Chain]
):
    chain = make_chain(unanswered_port, temporal_baselines_days=[12, 24])
    chain.refresh_bursts()
    pairs = downloaded_window(chain, "2023-07-01")
    assert {(secondary - reference).days for reference, secondary in pairs} == {12, 24}

    stack(chain)

    cube = xr.open_zarr(cube_path(chain))
    assert cube["coherence"].dims == ("pair", "y", "x")
    for coordinate in ("time", "secondary_time", "temporal_baseline"):
        assert cube[coordinate].dims == ("pair",)
    stored = {
        (day(t), day(s), int(b))
        for t, s, b in zip(
            cube["time"].values, cube["secondary_time"].values, cube["temporal_baseline"].values, strict=True
        )
    }
    assert stored == {(reference, secondary, (secondary - reference).days) for reference, secondary in pairs}


def cube_sensor_tick(chain: Chain, cursor: str | None = None) -> SensorTick:
    return chain.tick(cursor, sensor_name=CUBE_SENSOR)


@pytest.mark.slow
def test_the_cube_sensor_waits_while_a_stack_run_of_the_burst_is_unfinished(chain: Chain):
    """Two stack runs of one burst would append to the same Zarr store at once."""
    chain.refresh_bursts()
    downloaded_window(chain, "2023-07-01")
    unfinished = chain.instance.create_run_for_job(
        chain.defs.resolve_job_def("stack_coherence_cube"),
        tags={"dagster/partition": BURST},
        status=dg.DagsterRunStatus.NOT_STARTED,
    )

    waiting = cube_sensor_tick(chain)
    assert waiting.run_requests == []

    chain.instance.report_run_canceled(unfinished)
    ready = cube_sensor_tick(chain, waiting.cursor)
    assert [request.partition_key for request in ready.run_requests] == [BURST]
