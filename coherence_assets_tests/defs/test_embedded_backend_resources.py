"""The resources of ``OPENEO_BACKEND_URL=local`` use only the embedded backend of their own folder."""

from pathlib import Path

import pytest

from coherence_assets.definitions import default_resources
from coherence_assets.defs.local_resources import (
    EmbeddedBackendUnusable,
    LocalBurstCatalogue,
    LocalOpenEOBackend,
)
from coherence_assets.preflight import SetupError
from coherence_assets.settings import Settings
from embedded_openeo.config import BackendConfig
from embedded_openeo.server import running_backend


def test_the_configured_port_reaches_both_embedded_resources():
    resources = default_resources(Settings.from_env({"COHERENCE_LOCAL_BACKEND_PORT": "9123"}))
    assert resources["openeo_backend"].root_url == "http://127.0.0.1:9123"
    assert resources["catalogue"].url == "http://127.0.0.1:9123/odata/v1"
    assert isinstance(resources["catalogue"], LocalBurstCatalogue)
    assert resources["catalogue"].backend_port == 9123


@pytest.mark.stand_in
def test_a_backend_of_another_folder_on_the_port_is_never_used(tmp_path: Path):
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    with running_backend(BackendConfig(data_dir=theirs, port=0)) as url:
        port = int(url.rsplit(":", 1)[1])
        openeo_backend = LocalOpenEOBackend(backend_port=port, backend_data_dir=str(ours))
        catalogue = LocalBurstCatalogue(url=f"{url}/odata/v1", backend_port=port, backend_data_dir=str(ours))
        for use in (openeo_backend.connect, catalogue.client):
            with pytest.raises(EmbeddedBackendUnusable) as refused:
                use()
            # one line for the CLI and demo, and "unreachable" for the sensor, which skips on RuntimeError
            assert isinstance(refused.value, SetupError) and isinstance(refused.value, RuntimeError)
            message = str(refused.value)
            assert "\n" not in message
            assert f"serves the state in {theirs.resolve()}, not this project's {ours.resolve()}" in message
