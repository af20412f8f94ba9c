"""Settings from the environment: which catalogue a backend URL implies."""

import pytest

from coherence_assets.settings import CDSE_CATALOGUE_URL, Settings, local_backend_url, packaged_demo_aoi_file


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
