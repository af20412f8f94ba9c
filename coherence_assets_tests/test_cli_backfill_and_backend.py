"""``coherence-assets backfill`` and ``coherence-assets backend status|stop``, run as a user types them."""

from pathlib import Path

import dagster as dg
import pytest

from coherence_assets.bursts.burst_map import load_burst_catalogue
from coherence_assets.defs.assets.burst_catalogue import burst_catalogue
from coherence_assets.defs.resources import BurstsFile, CoherenceStorage
from coherence_assets.settings import packaged_demo_bursts_file
from coherence_assets_tests.dagster_dev import free_port
from coherence_assets_tests.test_cli import assert_one_line_error, run_cli
from embedded_openeo.server import ensure_local_backend

# every test runs the command in a subprocess, which imports Dagster and loads the definitions
pytestmark = pytest.mark.slow

BURSTS = ["t015_030343_iw2", "t168_359507_iw2"]


@pytest.fixture
def instance_home(tmp_path: Path) -> Path:
    """A Dagster instance on disk whose burst catalogue holds ``BURSTS``: a folder without
    ``dagster.yaml``, as ``dagster asset materialize`` leaves it (the file is optional)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("burst", BURSTS)
    assert not (home / "dagster.yaml").exists()
    return home


def backfill(home: Path, *arguments: str):
    return run_cli("backfill", *arguments, cwd=home.parent, env={"DAGSTER_HOME": str(home)})


def test_a_season_backfill_is_recorded_in_the_instance_for_every_burst_and_quarter(instance_home: Path):
    completed = backfill(instance_home, "--bursts", "all", "--windows", "2024-01-01..2024-10-01")

    assert completed.returncode == 0, completed.stderr
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        (launched,) = instance.get_backfills()
    assert launched.backfill_id in completed.stdout
    assert "downloads and cubes follow" in completed.stdout
    assert f"/runs/b/{launched.backfill_id}" in completed.stdout  # no UI runs here: no address is made up
    assert "127.0.0.1:3000" not in completed.stdout
    assert launched.is_asset_backfill
    subsets = launched.asset_backfill_data.target_subset.partitions_subsets_by_asset_key
    expected = {
        f"{burst}|{window}"
        for burst in BURSTS
        for window in ("2024-01-01", "2024-04-01", "2024-07-01", "2024-10-01")
    }
    assert {key.to_user_string(): set(subset.get_partition_keys()) for key, subset in subsets.items()} == {
        "insar_pairs": expected,
        "coherence_job": expected,
    }


@pytest.mark.parametrize(
    ("arguments", "phrases"),
    [
        (["--bursts", "t15_30343_iw2", "--windows", "2024-01-01"], ["t15_30343_iw2", "t015_030343_iw2"]),
        (
            ["--bursts", "t015_030399_iw1", "--windows", "2024-01-01"],
            ["not in the burst catalogue", BURSTS[0]],
        ),
        (
            ["--bursts", "all", "--windows", "2024-02-01..2024-10-01"],
            ["does not start a calendar quarter", "YYYY-"],
        ),
        (["--bursts", "all", "--windows", "2024-10-01..2024-01-01"], ["is before"]),
        (["--bursts", "all", "--windows", "2024-01-01", "--assets", "coherence_cube"], ["insar_pairs"]),
    ],
)
def test_a_typo_is_refused_in_one_line_with_the_key_format_before_anything_is_launched(
    instance_home: Path, arguments: list[str], phrases: list[str]
):
    completed = backfill(instance_home, *arguments)

    assert_one_line_error(completed, *phrases)
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        assert instance.get_backfills() == []


def test_a_backfill_without_burst_partitions_says_to_materialise_the_catalogue_first(tmp_path: Path):
    home = tmp_path / "empty_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")

    assert_one_line_error(backfill(home, "--bursts", "all", "--windows", "2024-01-01"), "burst_catalogue")


def test_a_backfill_right_after_the_catalogue_materialised_finds_its_bursts_before_the_daemon_ticks(
    tmp_path: Path,
):
    """burst_partitions_sensor adds the partitions; the command ticks it itself rather than wait for a daemon."""
    home, data_dir = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        dg.materialize(
            [burst_catalogue],
            instance=instance,
            resources={
                "bursts_file": BurstsFile(path=packaged_demo_bursts_file()),
                "storage": CoherenceStorage(data_dir=str(data_dir)),
            },
        )
        assert instance.get_dynamic_partitions("burst") == []

    completed = run_cli(
        "backfill",
        *("--bursts", "all", "--windows", "2024-01-01"),
        cwd=tmp_path,
        env={"DAGSTER_HOME": str(home), "COHERENCE_DATA_DIR": str(data_dir)},
    )

    assert completed.returncode == 0, completed.stderr
    with dg.DagsterInstance.from_config(str(home)) as instance:
        catalogued = sorted(instance.get_dynamic_partitions("burst"))
        (launched,) = instance.get_backfills()
    assert catalogued == sorted(load_burst_catalogue(packaged_demo_bursts_file())["burst"])
    subsets = launched.asset_backfill_data.target_subset.partitions_subsets_by_asset_key
    assert {key for subset in subsets.values() for key in subset.get_partition_keys()} == {
        f"{burst}|2024-01-01" for burst in catalogued
    }


def test_a_backfill_into_a_folder_that_does_not_exist_is_refused_in_one_line(tmp_path: Path):
    missing = tmp_path / "no_such_home"

    assert_one_line_error(backfill(missing, "--bursts", "all", "--windows", "2024-01-01"), str(missing))
    assert not missing.exists()


def test_backend_status_and_stop_find_the_background_backend_by_its_pid_file(tmp_path: Path):
    data_dir = tmp_path / "backend"
    url = ensure_local_backend("127.0.0.1", free_port(), data_dir)  # detached, as the demo starts it

    status = run_cli("backend", "status", "--data-dir", str(data_dir), cwd=tmp_path)
    stop = run_cli("backend", "stop", "--data-dir", str(data_dir), cwd=tmp_path)
    after = run_cli("backend", "status", "--data-dir", str(data_dir), cwd=tmp_path)

    assert status.returncode == 0 and f"running at {url}:" in status.stdout, status.stdout + status.stderr
    assert stop.returncode == 0 and "stopped" in stop.stdout, stop.stdout + stop.stderr
    assert after.returncode == 3 and "no embedded backend is running" in after.stdout
    assert not (data_dir / "backend.pid").exists()
