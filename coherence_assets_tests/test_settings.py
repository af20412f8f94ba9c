"""Settings from the environment: which catalogue a backend URL implies."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coherence_assets.settings import (
    CDSE_CATALOGUE_URL,
    Settings,
    SettingsError,
    local_backend_url,
    packaged_demo_aoi_file,
)


@pytest.mark.parametrize(
    "backend_url",
    [
        "https://openeo.dataspace.copernicus.eu",
        "https://openeo.dataspace.copernicus.eu/",
        "https://openeo.dataspace.copernicus.eu/openeo/1.2",
        "https://openeo.dataspace.copernicus.eu/openeo/1.2/",
    ],
)
def test_cdse_openeo_url_implies_cdse_catalogue(backend_url: str):
    assert Settings.from_env({"OPENEO_BACKEND_URL": backend_url}).catalogue_url == CDSE_CATALOGUE_URL


def test_local_backend_implies_the_embedded_catalogue():
    assert Settings.from_env({}).catalogue_url == f"{local_backend_url()}/odata/v1"


@pytest.mark.parametrize(
    "backend_url",
    ["http://127.0.0.1:9", "https://openeo.vito.be", "https://openeo.dataspace.copernicus.eu.evil"],
)
def test_another_backend_implies_no_catalogue(backend_url: str):
    assert Settings.from_env({"OPENEO_BACKEND_URL": backend_url}).catalogue_url == ""


def test_an_explicit_catalogue_wins():
    settings = Settings.from_env(
        {
            "OPENEO_BACKEND_URL": "http://127.0.0.1:9",
            "COHERENCE_CATALOGUE_URL": "http://127.0.0.1:9/odata/v1/",
        }
    )
    assert settings.catalogue_url == "http://127.0.0.1:9/odata/v1"


def test_the_local_backend_port_sets_the_embedded_backend_and_catalogue_urls():
    settings = Settings.from_env({"COHERENCE_LOCAL_BACKEND_PORT": "9123"})
    assert settings.local_backend_port == 9123
    assert settings.local_backend_url == "http://127.0.0.1:9123"
    assert settings.catalogue_url == "http://127.0.0.1:9123/odata/v1"
    assert Settings.from_env({}).local_backend_port == 8712


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1"])
def test_a_local_backend_port_that_is_no_port_is_refused_naming_the_variable(value: str):
    with pytest.raises(ValueError, match=rf"COHERENCE_LOCAL_BACKEND_PORT='{value}' is not a port number"):
        Settings.from_env({"COHERENCE_LOCAL_BACKEND_PORT": value})


def test_the_aoi_file_defaults_to_the_packaged_glaciers_and_the_environment_overrides_it():
    assert Settings.from_env({}).aoi_file == packaged_demo_aoi_file()
    assert Settings.from_env({"COHERENCE_AOI_FILE": " /data/my_aois.gpkg "}).aoi_file == "/data/my_aois.gpkg"


@pytest.mark.parametrize(
    "backend_url",
    ["https://openeofed.dataspace.copernicus.eu", "https://openeofed.dataspace.copernicus.eu/openeo/1.2"],
)
def test_cdse_federation_url_implies_cdse_catalogue(backend_url: str):
    assert Settings.from_env({"OPENEO_BACKEND_URL": backend_url}).catalogue_url == CDSE_CATALOGUE_URL


def test_temporal_baselines_default_to_12_days_and_the_environment_lists_several():
    assert Settings.from_env({}).temporal_baselines_days == (12,)
    assert Settings.from_env({"COHERENCE_TEMPORAL_BASELINES": "12, 24,36,48"}).temporal_baselines_days == (
        12,
        24,
        36,
        48,
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "10",
            "COHERENCE_TEMPORAL_BASELINES='10': temporal baseline(s) 10 day(s) are not positive multiples of 6",
        ),
        (
            "12,0",
            "COHERENCE_TEMPORAL_BASELINES='12,0': temporal baseline(s) 0 day(s) are not positive multiples",
        ),
        ("12;24", "COHERENCE_TEMPORAL_BASELINES='12;24' is not a comma-separated list of days"),
    ],
)
def test_a_baseline_that_is_not_a_multiple_of_6_is_refused_naming_the_variable(value: str, message: str):
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"COHERENCE_TEMPORAL_BASELINES": value})

    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_an_auth_method_the_openeo_client_does_not_know_is_refused_naming_the_known_one():
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"OPENEO_AUTH_METHOD": "password"})

    assert str(refused.value).startswith(
        "OPENEO_AUTH_METHOD='password' is not a method the openeo client knows: set it to client_credentials"
    )
    assert Settings.from_env({"OPENEO_AUTH_METHOD": "client_credentials"}).backend_url == "local"


@pytest.mark.slow  # a subprocess: the CLI's imports take seconds
@pytest.mark.parametrize(
    ("variable", "value", "phrase"),
    [
        (
            "OPENEO_AUTH_METHOD",
            "device",
            "OPENEO_AUTH_METHOD='device' is not a method the openeo client knows",
        ),
        ("COHERENCE_TEMPORAL_BASELINES", "10", "COHERENCE_TEMPORAL_BASELINES='10'"),
    ],
)
def test_the_demo_refuses_a_setting_cdse_would_refuse_in_one_line_before_anything_starts(
    tmp_path: Path, variable: str, value: str, phrase: str
):
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "COHERENCE_DATA_DIR": str(tmp_path / "data"),
        "OPENEO_BACKEND_URL": "http://127.0.0.1:9",  # never reached: the setting is refused first
        variable: value,
    }

    completed = subprocess.run(
        [str(Path(sys.executable).parent / "coherence-assets"), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 1
    (line,) = completed.stderr.strip().splitlines()
    assert line.startswith(f"coherence-assets demo: {phrase}")
    assert list(tmp_path.iterdir()) == []


def test_a_deployment_pins_the_apex_commit_from_the_environment_and_a_short_one_is_one_line():
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert Settings.from_env({"COHERENCE_APEX_COMMIT": commit}).apex_commit == commit
    assert Settings.from_env({}).apex_commit == ""

    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"COHERENCE_APEX_COMMIT": "3b16249"})

    assert "COHERENCE_APEX_COMMIT='3b16249' is not a full commit sha" in str(refused.value)
    assert "\n" not in str(refused.value)


def intervals(settings: Settings) -> tuple[int, int, int]:
    return (
        settings.job_sensor_interval_seconds,
        settings.cube_sensor_interval_seconds,
        settings.burst_sensor_interval_seconds,
    )


def test_each_sensor_has_its_own_interval_which_the_common_variable_sets_and_its_own_overrides():
    assert intervals(Settings.from_env({})) == (60, 120, 300)
    assert intervals(Settings.from_env({"COHERENCE_SENSOR_INTERVAL_SECONDS": "5"})) == (5, 5, 5)
    assert intervals(
        Settings.from_env(
            {"COHERENCE_SENSOR_INTERVAL_SECONDS": "5", "COHERENCE_CUBE_SENSOR_INTERVAL_SECONDS": "60"}
        )
    ) == (5, 60, 5)
    assert intervals(Settings.from_env({"COHERENCE_JOB_SENSOR_INTERVAL_SECONDS": " 10 "})) == (10, 120, 300)


@pytest.mark.parametrize("value", ["5s", "0", "-5", "2.5"])
def test_a_sensor_interval_that_is_no_whole_number_of_seconds_is_refused_naming_the_variable(value: str):
    with pytest.raises(
        SettingsError, match=rf"COHERENCE_SENSOR_INTERVAL_SECONDS='{value}' is not a whole number of seconds"
    ):
        Settings.from_env({"COHERENCE_SENSOR_INTERVAL_SECONDS": value})
