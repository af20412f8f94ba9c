"""Settings from the environment: which catalogue a backend URL implies."""

import pytest

from coherence_assets.settings import CDSE_CATALOGUE_URL, Settings, local_backend_url


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
