"""What a person sees in the Dagster UI after a season backfill launched by ``coherence-assets backfill``.

``coherence-assets ui`` and ``coherence-assets backfill`` run as a user types them, in one folder
and without ``DAGSTER_HOME``, so both take the default instance ``./.dagster_home``: the backfill
shows in that UI. The chain runs against the embedded backend (reached over HTTP with OIDC client
credentials, as CDSE would be); the daemon runs the backfill. Debian's chromium, driven by Playwright, then opens the backfill by the
link the CLI printed, the asset graph, the ``coherence_cube`` partitions, the quick-look, the
``coherence_job`` ledger and a ``coherence_job`` partition, whose latest event tells that its job
finished and was downloaded. Screenshots land in ``$COHERENCE_TEST_ARTIFACTS`` (default
``coherence_assets_tests/artifacts/``) and their paths are printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from coherence_assets.cube.stacking import open_coherence_cube
from coherence_assets.jobs.ledger_index import read_all_ledgers
from coherence_assets.storage import DataStore
from coherence_assets_tests.conftest import LiveBackend, start_backend
from coherence_assets_tests.dagster_dev import running_coherence_ui
from coherence_assets_tests.test_end_to_end import INSTANCE_YAML, chain_environment

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.e2e, pytest.mark.system_program("chromium"), pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[1]
BURST = "t015_030343_iw2"
WINDOWS = "2023-07-01..2023-10-01"
WINDOW_KEYS = ("2023-07-01", "2023-10-01")
CHAIN_TIMEOUT_SECONDS = 300
UI_TIMEOUT_MS = 60_000
ARTIFACTS = Path(os.environ.get("COHERENCE_TEST_ARTIFACTS", REPO / "coherence_assets_tests" / "artifacts"))
# Debian's chromium in a container: no sandbox (root), no GPU, and nothing that calls home
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ASSETS = ("burst_catalogue", "insar_pairs", "coherence_job", "coherence_rasters", "coherence_cube")


@pytest.fixture
def live_backend(tmp_path: Path) -> Iterator[LiveBackend]:
    yield from start_backend(tmp_path / "backend", max_running_jobs=2, job_seconds_per_pair=0.2)


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def cli_backfill(project: Path, environment: dict[str, str]) -> tuple[str, str]:
    """``coherence-assets backfill`` as a user types it in ``project``, without ``DAGSTER_HOME``;
    the backfill id and the UI link it prints."""
    command = str(Path(sys.executable).parent / "coherence-assets")
    completed = subprocess.run(
        [command, "backfill", "--bursts", BURST, "--windows", WINDOWS],
        cwd=project,
        env={name: value for name, value in environment.items() if name != "DAGSTER_HOME"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    match = re.search(r"backfill (\S+) launched", completed.stdout)
    link = re.search(r"Follow it at (http\S+)", completed.stdout)
    assert match and link, completed.stdout
    return match[1], link[1]


def cube_complete(store: DataStore) -> bool:
    """The cube holds every pair of both windows' ledgers."""
    ledgers = [ledger for ledger in read_all_ledgers(store) if ledger.burst == BURST]
    pairs = {pair for ledger in ledgers for job in ledger.jobs for pair in job.pairs}
    path = store.coherence_cube_path(BURST)
    if len(ledgers) < len(WINDOW_KEYS) or not pairs or not store.fs.exists(path):
        return False
    try:
        stacked = open_coherence_cube(store.fs, path).sizes.get("time")
    except (OSError, ValueError, KeyError):  # a stack run is writing it right now
        return False
    return stacked == len(pairs)


def open_page(page, url: str) -> None:
    """Load a UI page and close the community dialog a fresh browser profile gets."""
    page.goto(url)
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=5_000)
        skip.click()
    except playwright_api.TimeoutError:
        pass


def screenshot(target, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    target.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def test_a_cli_backfill_shows_in_coherence_assets_ui_with_graph_partitions_quicklook_and_ledger(
    tmp_path: Path, live_backend: LiveBackend, browser
) -> None:
    data_dir = tmp_path / "data"
    store = DataStore(str(data_dir))
    project = tmp_path / "project"  # a user's folder, without workspace.yaml: the installed package's code
    project.mkdir()
    environment = chain_environment(live_backend, data_dir)
    with running_coherence_ui(project, INSTANCE_YAML, environment) as dev:
        assert dev.run_job_to_end("refresh_burst_catalogue", 120) == "SUCCESS", dev.diagnostics()

        backfill_id, link = cli_backfill(project, environment)
        assert link == f"{dev.url}/runs/b/{backfill_id}"  # the port the UI serves, not a default
        dev.wait_until_settled(
            [backfill_id],
            lambda: cube_complete(store),
            CHAIN_TIMEOUT_SECONDS,
            "the backfill's cube holding both windows",
        )
        runs = dev.runs()
        backfill_runs = [
            run
            for run in runs
            if any(tag["key"] == "dagster/backfill" and tag["value"] == backfill_id for tag in run["tags"])
        ]
        assert dev.backfill_status(backfill_id) in {"COMPLETED", "COMPLETED_SUCCESS"}
        assert len(backfill_runs) >= 1
        assert all(run["status"] == "SUCCESS" for run in runs), dev.diagnostics()
        job_ids = [
            job.job_id for ledger in read_all_ledgers(store) if ledger.burst == BURST for job in ledger.jobs
        ]

        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)

        open_page(page, link)  # the page the CLI's message points to
        page.get_by_text(backfill_id).first.wait_for(state="visible")
        page.get_by_text("coherence_job", exact=True).first.wait_for(state="visible")
        screenshot(page, "0_cli_backfill")

        open_page(page, f"{dev.url}/assets/coherence_cube?view=lineage&lineageScope=upstream&lineageDepth=5")
        for asset in ASSETS:
            page.get_by_text(asset, exact=True).first.wait_for(state="visible")
        screenshot(page, "1_asset_graph")

        open_page(page, f"{dev.url}/assets/coherence_cube?view=partitions")
        page.get_by_text(BURST).first.wait_for(state="visible")
        screenshot(page, "2_coherence_cube_partitions")

        open_page(page, f"{dev.url}/assets/coherence_cube")
        quicklook = page.locator("img[src*='/logs/coherence_quicklook/']").first
        quicklook.scroll_into_view_if_needed()
        quicklook.wait_for(state="visible")
        assert quicklook.evaluate("image => image.complete && image.naturalWidth") > 600, (
            "quick-look not loaded"
        )
        screenshot(quicklook, "3_coherence_cube_quicklook")
        screenshot(page, "3_coherence_cube_overview")

        open_page(page, f"{dev.url}/assets/coherence_job")
        ledger = page.locator(
            "table:has(th:text-is('attempt'))"
        ).last  # the ledger, inside the metadata table
        ledger.scroll_into_view_if_needed()
        ledger.wait_for(state="visible")
        shown = ledger.inner_text()
        assert any(job_id in shown for job_id in job_ids), shown
        screenshot(ledger, "4_coherence_job_ledger")
        screenshot(page, "4_coherence_job_overview")

        # the partition's live story: its latest event says its job finished and was downloaded
        partition = quote(f"{BURST}|{WINDOW_KEYS[0]}", safe="")
        open_page(page, f"{dev.url}/assets/coherence_job?view=partitions&partition={partition}")
        page.get_by_text("downloaded: each of its").first.wait_for(state="visible")
        screenshot(page, "5_coherence_job_partition_story")
        page.close()
        leftovers = dev.stop()

    assert leftovers == [], f"processes still running after dagster dev stopped: {leftovers}"
