"""Shared fixtures (an embedded backend on a free port of 127.0.0.1, a way to switch faults on, retries
without waits) and the suite's own rules: end-to-end tests are slow and run one after another, and
a test whose system program is missing fails at once, not after the rest of the suite."""

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from urllib3.util.retry import Retry

from coherence_assets.cdse_facts import CDSE_PIXEL_SIZE
from coherence_assets_tests.postgres_server import postgres_bin_dir
from embedded_openeo.config import BackendConfig
from embedded_openeo.server import running_backend

pytest_plugins = ["coherence_assets_tests.s3_server"]  # the s3_server and s3_env fixtures

SMALL_SCENE = (64, 128)

# System programs that tests start for real (marker ``system_program(name)``): how to find each, and
# the Debian package that installs it (.ci/run installs them all).
SYSTEM_PROGRAMS: dict[str, tuple[Callable[[], object], str]] = {
    "chromium": (lambda: shutil.which("chromium"), "chromium"),
    "postgresql": (postgres_bin_dir, "postgresql"),
}
MISSING_PROGRAMS = pytest.StashKey[list[str]]()


def missing_programs(names: list[str]) -> list[str]:
    return [name for name in names if SYSTEM_PROGRAMS[name][0]() is None]


def install_hint(names: list[str]) -> str:
    packages = " ".join(SYSTEM_PROGRAMS[name][1] for name in names)
    return f"apt-get install -y {packages} (bash .ci/run installs them)"


def pytest_report_header(config: pytest.Config) -> str | None:
    missing = missing_programs(list(SYSTEM_PROGRAMS))
    if missing:
        return f"not installed: {', '.join(missing)}: the tests that need them fail first; {install_hint(missing)}"
    return None


# The fixtures that start the embedded backend (the stand-in): a test that asks for one is marked ``stand_in``.
STAND_IN_FIXTURES = frozenset({"backend", "restartable_backend"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """End-to-end tests are slow; tests that start the stand-in say so (``-m "not stand_in"`` leaves them
    out). Tests whose system program is missing move to the front, where they fail at once."""
    failing_first = []
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)
        if STAND_IN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stand_in)
        missing = missing_programs([marker.args[0] for marker in item.iter_markers("system_program")])
        if missing:
            item.stash[MISSING_PROGRAMS] = missing
            failing_first.append(item)
    items[:] = failing_first + [item for item in items if MISSING_PROGRAMS not in item.stash]


def pytest_runtest_setup(item: pytest.Item) -> None:
    missing = item.stash.get(MISSING_PROGRAMS, None)
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: {install_hint(missing)}", pytrace=False)


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

    def faults(self) -> list[dict]:
        """The fault rules still in force (a rule with ``times`` leaves once used up)."""
        answer = requests.get(f"{self.url}/_faults", timeout=10)
        answer.raise_for_status()
        return answer.json()

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
