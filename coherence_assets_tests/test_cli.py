"""``coherence-assets``: the commands of the README, run as a user types them."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from coherence_assets_tests.conftest import LiveBackend
from embedded_openeo.config import BackendConfig
from embedded_openeo.server import running_backend

COMMAND = str(Path(sys.executable).parent / "coherence-assets")


def run_cli(*arguments: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [COMMAND, *arguments],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_the_demo_backend_and_ui_commands(tmp_path: Path):
    completed = run_cli("--help", cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr
    for command in ("demo", "backend", "backfill", "ui"):
        assert command in completed.stdout
    assert "./.dagster_home" in completed.stdout  # the ui's instance, the demo's and the backfill's


def test_unknown_options_are_refused_except_for_ui_which_passes_them_to_dagster_dev(
    capsys: pytest.CaptureFixture[str],
):
    from coherence_assets.cli import main, parser

    arguments, extra = parser().parse_known_args(["ui", "-h", "0.0.0.0", "-p", "3001"])
    assert (arguments.command, extra) == ("ui", ["-h", "0.0.0.0", "-p", "3001"])
    with pytest.raises(SystemExit) as refused:
        main(["backfill", "--bursts", "all", "--windows", "2024-01-01", "-p", "3001"])
    assert refused.value.code == 2
    assert "unrecognized arguments: -p 3001" in capsys.readouterr().err


@pytest.mark.slow
def test_backend_help_lists_host_port_and_data_dir_with_their_defaults(tmp_path: Path):
    completed = run_cli("backend", "--help", cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr
    for option in (
        "--host",
        "--port",
        "--data-dir",
        "--max-running-jobs",
        "--min-seconds-between-starts",
        "--allow-faults",
    ):
        assert option in completed.stdout


@contextmanager
def foreground_backend(data_dir: Path, *options: str) -> Iterator[str]:
    """``coherence-assets backend`` on a free port as a user starts it; its URL, stopped by SIGTERM at exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [COMMAND, "backend", "--port", str(port), "--data-dir", str(data_dir), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/.well-known/openeo", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                assert process.poll() is None and time.monotonic() < deadline, "backend did not come up"
                time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.mark.slow
def test_backend_accepts_fault_rules_only_when_started_with_allow_faults(tmp_path: Path):
    rule = {"path": "^/jobs$", "status": 503, "times": 1}
    with foreground_backend(tmp_path / "plain") as url:
        refused = requests.post(f"{url}/_faults", json=rule, timeout=5)
        assert (refused.status_code, refused.json()["code"]) == (404, "NotFound")
    with foreground_backend(tmp_path / "faulty", "--allow-faults") as url:
        assert requests.post(f"{url}/_faults", json=rule, timeout=5).status_code == 201
        assert requests.get(f"{url}/jobs", timeout=5).status_code == 503


@pytest.mark.slow
@pytest.mark.parametrize(
    ("window", "reason"),
    [
        ("2023-08-01", "does not start a calendar quarter"),
        ("2023-7", "is not a date of the form YYYY-MM-DD"),
        ("2014-07-01", "is before the first window 2014-10-01"),
        ("2999-01-01", "has not begun yet"),
    ],
)
def test_demo_refuses_a_bad_window_before_starting_anything(tmp_path: Path, window: str, reason: str):
    """Nothing may start: no Dagster instance, no outputs, no backend (the URL points nowhere)."""
    env = {
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "COHERENCE_DATA_DIR": str(tmp_path / "data"),
        "OPENEO_BACKEND_URL": "http://127.0.0.1:9",
        "COHERENCE_CATALOGUE_URL": "http://127.0.0.1:9/odata/v1",
    }

    completed = run_cli("demo", "--window", window, cwd=tmp_path, env=env)

    assert completed.returncode == 2
    assert f"argument --window: window {window!r} {reason}" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_demo_refuses_baselines_cdse_cannot_compute_before_starting_anything(tmp_path: Path):
    completed = run_cli(
        "demo", "--baselines", "12,20", cwd=tmp_path, env={"DAGSTER_HOME": str(tmp_path / "home")}
    )

    assert completed.returncode == 2
    last_line = completed.stderr.strip().splitlines()[-1]
    assert "argument --baselines: '12,20': temporal baseline(s) 20 day(s)" in last_line
    assert "multiples of 6" in last_line
    assert "Traceback" not in completed.stderr
    assert list(tmp_path.iterdir()) == []


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_one_line_error(completed: subprocess.CompletedProcess, *expected: str) -> str:
    """Exit status 1, no traceback, and the last line of stderr holds every expected phrase; that line."""
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stdout + completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert lines, f"no error line; stdout:\n{completed.stdout}"
    for phrase in expected:
        assert phrase in lines[-1], lines[-1]
    return lines[-1]


@pytest.mark.slow
def test_demo_stops_in_seconds_with_one_line_for_a_closed_backend_url(tmp_path: Path):
    url = f"http://127.0.0.1:{closed_port()}"
    env = {"DAGSTER_HOME": str(tmp_path / "home"), "COHERENCE_DATA_DIR": str(tmp_path / "data")}

    started = time.monotonic()
    completed = run_cli("demo", cwd=tmp_path, env={**env, "OPENEO_BACKEND_URL": url})

    assert time.monotonic() - started < 60
    assert_one_line_error(completed, url, "does not answer", "OPENEO_BACKEND_URL")
    assert len(completed.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_demo_asks_for_the_catalogue_of_a_backend_other_than_cdse(tmp_path: Path, backend: LiveBackend):
    env = {"DAGSTER_HOME": str(tmp_path / "home"), "OPENEO_BACKEND_URL": backend.url}

    completed = run_cli("demo", cwd=tmp_path, env=env)

    assert_one_line_error(completed, backend.url, "set COHERENCE_CATALOGUE_URL")


@pytest.mark.slow
def test_demo_prints_the_burst_file_validation_message_once_as_its_last_line(tmp_path: Path):
    bursts_file = tmp_path / "bursts.geojson"
    bursts_file.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"burst_id": 30343},
                        "geometry": {"type": "Point", "coordinates": [11.0, 46.0]},
                    }
                ],
            }
        )
    )
    env = {
        "DAGSTER_HOME": str(tmp_path / "home"),
        "COHERENCE_DATA_DIR": str(tmp_path / "data"),
        "COHERENCE_BURSTS_FILE": str(bursts_file),
        "OPENEO_BACKEND_URL": f"http://127.0.0.1:{closed_port()}",  # the burst file is checked first
    }

    started = time.monotonic()
    completed = run_cli("demo", cwd=tmp_path, env=env)

    assert time.monotonic() - started < 60
    line = assert_one_line_error(completed, str(bursts_file), "subswath_name, relative_orbit_number")
    assert (completed.stdout + completed.stderr).count("lacks the column") == 1, line


@pytest.mark.slow
def test_demo_refuses_an_embedded_backend_of_another_folder_in_one_line_naming_both(tmp_path: Path):
    """A backend started from another project holds COHERENCE_LOCAL_BACKEND_PORT: the demo must not use it."""
    project = tmp_path / "project"
    project.mkdir()
    theirs = tmp_path / "other-project" / ".coherence-backend"
    with running_backend(BackendConfig(data_dir=theirs, port=0)) as url:
        env = {
            "DAGSTER_HOME": str(tmp_path / "home"),
            "COHERENCE_DATA_DIR": str(tmp_path / "data"),
            "COHERENCE_LOCAL_BACKEND_PORT": url.rsplit(":", 1)[1],
        }
        environment = {
            name: value
            for name, value in os.environ.items()
            if name not in {"OPENEO_BACKEND_URL", "COHERENCE_CATALOGUE_URL"}
        }
        completed = subprocess.run(
            [COMMAND, "demo"],
            cwd=project,
            env={**environment, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert_one_line_error(
        completed,
        f"the embedded backend at {url} serves the state in {theirs.resolve()}",
        f"not this project's {(project / '.coherence-backend').resolve()}",
    )
    assert len(completed.stderr.strip().splitlines()) == 1
    assert not (project / ".coherence-backend").exists()


def test_the_demo_instance_caps_concurrent_runs_and_sends_no_telemetry_but_keeps_a_users_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from coherence_assets.demo import demo_instance

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "new_home"))
    with demo_instance() as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
        assert not instance.telemetry_enabled
    own = tmp_path / "own_home"
    own.mkdir()
    (own / "dagster.yaml").write_text("concurrency:\n  runs:\n    max_concurrent_runs: 7\n")
    monkeypatch.setenv("DAGSTER_HOME", str(own))
    with demo_instance() as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 7


def test_the_demo_prints_job_counts_for_a_person_not_a_python_dict():
    from coherence_assets.demo import job_counts

    assert job_counts(["finished", "created", "finished"]) == "1 created, 2 finished"
    assert job_counts([]) == "none"
