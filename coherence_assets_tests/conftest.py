"""Shared fixtures: an embedded backend on a free port of 127.0.0.1, a way to switch faults on, and retries without waits."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from urllib3.util.retry import Retry

from embedded_openeo.config import CDSE_PIXEL_SIZE, BackendConfig
from embedded_openeo.server import running_backend

pytest_plugins = ["coherence_assets_tests.s3_server"]  # the s3_server and s3_env fixtures

SMALL_SCENE = (64, 128)


@dataclass(frozen=True)
class LiveBackend:
    """A running embedded backend: its base URL and its on-disk state."""

    url: str
    data_dir: Path

    @property
    def catalogue_url(self) -> str:
        return f"{self.url}/odata/v1"

    def add_fault(self, **rule) -> None:
        requests.post(f"{self.url}/_faults", json=rule, timeout=10).raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/_faults", timeout=10).raise_for_status()


def start_backend(data_dir: Path, **overrides) -> Iterator[LiveBackend]:
    config = BackendConfig(
        data_dir=data_dir,
        port=0,
        scene_shape=SMALL_SCENE,
        pixel_size=CDSE_PIXEL_SIZE,
        **{"allow_faults": True, "min_seconds_between_starts": 0, **overrides},
    )
    with running_backend(config) as url:
        yield LiveBackend(url, data_dir)


@pytest.fixture
def instant_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every HTTP retry (catalogue, openEO client, downloads) but drop the back-off waits between them."""
    monkeypatch.setattr(Retry, "get_backoff_time", lambda self: 0.0)


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[LiveBackend]:
    yield from start_backend(tmp_path / "backend")
