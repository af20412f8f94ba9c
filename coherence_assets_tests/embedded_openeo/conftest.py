"""Fixtures of the embedded backend's tests."""

from collections.abc import Iterator

import pytest

from coherence_assets_tests.embedded_openeo.api_client import ApiClient, api_client


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiClient]:
    """One backend for the tests that need no special configuration (jobs of other tests are listed too)."""
    with api_client(tmp_path_factory.mktemp("backend")) as client:
        yield client
