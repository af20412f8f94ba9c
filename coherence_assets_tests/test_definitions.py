"""The first test: the whole Definitions load, with every asset, job, sensor and schedule the README names."""

import subprocess
import sys

import dagster as dg
import pytest

from coherence_assets.definitions import default_resources, defs
from coherence_assets.defs.asset_keys import ASSET_KEYS, BURST_WINDOW_ASSETS
from coherence_assets.defs.partitions import burst_partitions, burst_window_partitions, window_partitions
from coherence_assets.settings import LOCAL_BACKEND, Settings

ASSET_PARTITIONS = {
    "burst_catalogue": None,
    "insar_pairs": burst_window_partitions,
    "coherence_job": burst_window_partitions,
    "coherence_rasters": burst_window_partitions,
    "coherence_cube": burst_partitions,
    "coherence_decay": burst_partitions,
    "coherence_aoi_series": burst_partitions,
    "coherence_stac": burst_partitions,
}
JOBS = {
    "refresh_burst_catalogue",
    "submit_coherence_jobs",
    "resubmit_coherence_jobs",
    "download_coherence_rasters",
    "stack_coherence_cube",
}


def test_definitions_load_with_every_asset_and_its_partitions():
    keys = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert keys == set(ASSET_PARTITIONS)
    for name, partitions in ASSET_PARTITIONS.items():
        assert defs.resolve_assets_def(name).partitions_def == partitions, name


def test_burst_window_asset_names_are_the_assets_partitioned_by_burst_and_window():
    """The names the backfill CLI accepts and the burst sync looks up are the definitions' own."""
    partitioned = {
        key.to_user_string()
        for key in defs.resolve_all_asset_keys()
        if defs.resolve_assets_def(key).partitions_def == burst_window_partitions
    }
    assert {key.to_user_string() for key in BURST_WINDOW_ASSETS} == partitioned


def test_the_asset_keys_named_once_are_the_definitions_own():
    assert set(ASSET_KEYS) == set(defs.resolve_all_asset_keys())


def test_definitions_hold_every_job_sensor_schedule_and_check():
    jobs = {job.name for job in defs.resolve_all_job_defs() if job.name != "__ASSET_JOB"}
    assert jobs == JOBS
    assert {sensor.name for sensor in defs.sensors} == {
        "openeo_job_sensor",
        "coherence_cube_sensor",
        "burst_partitions_sensor",
    }
    assert {schedule.name for schedule in defs.schedules} == {"current_window_schedule"}
    assert defs.resolve_schedule_def("current_window_schedule").job_name in JOBS
    checks = defs.resolve_asset_graph().asset_check_keys
    assert {(check.asset_key.to_user_string(), check.name) for check in checks} == {
        ("coherence_rasters", "every_pair_has_a_raster")
    }


def test_window_partitions_are_calendar_quarters_from_2014_10_01():
    keys = window_partitions.get_partition_keys()
    assert keys[:3] == ["2014-10-01", "2015-01-01", "2015-04-01"]
    assert "2023-07-01" in keys and "2023-08-01" not in keys


def test_multi_partition_keys_read_burst_then_window():
    assert [dimension.name for dimension in burst_window_partitions.partitions_defs] == ["burst", "window"]
    key = dg.MultiPartitionKey({"window": "2023-07-01", "burst": "t015_030343_iw2"})
    assert str(key) == "t015_030343_iw2|2023-07-01"


@pytest.mark.parametrize(
    "backend_url", [LOCAL_BACKEND, "https://openeo.dataspace.copernicus.eu"], ids=["local", "production"]
)
def test_either_resource_set_reads_the_input_files_the_settings_name(backend_url: str):
    settings = Settings.from_env(
        {
            "OPENEO_BACKEND_URL": backend_url,
            "COHERENCE_BURSTS_FILE": "/data/my_bursts.gpkg",
            "COHERENCE_AOI_FILE": "/data/my_aois.gpkg",
        }
    )
    resources = default_resources(settings)
    assert resources["bursts_file"].path == "/data/my_bursts.gpkg"
    assert resources["aoi_file"].path == "/data/my_aois.gpkg"


def test_a_catalogue_left_unset_names_the_configured_backend_and_the_variable_to_set():
    """The message comes from the settings the definitions loaded with, not from the environment at run time."""
    settings = Settings.from_env({"OPENEO_BACKEND_URL": "https://openeo.example.org"})
    catalogue = default_resources(settings)["catalogue"]
    with pytest.raises(ValueError) as refused:
        catalogue.client()
    assert "OPENEO_BACKEND_URL=https://openeo.example.org is neither" in str(refused.value)
    assert "set COHERENCE_CATALOGUE_URL" in str(refused.value)


# Libraries of the assets' work: the daemon, the code server and every run load the definitions, and
# a run of insar_pairs or coherence_job should not pay for the cube's or the openEO client's imports.
HEAVY_LIBRARIES = ("xarray", "rasterio", "zarr", "dask", "openeo", "geopandas", "matplotlib", "scipy")


def test_loading_the_definitions_loads_none_of_the_assets_heavy_libraries():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, coherence_assets.definitions; "
            f"print(' '.join(sorted({{name.split('.')[0] for name in sys.modules}} & set({HEAVY_LIBRARIES!r}))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert loaded == []
