"""``coherence-assets``: the commands of DESIGN.md, run as a user types them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_help_lists_the_demo_and_backend_commands(tmp_path: Path):
    completed = run_cli("--help", cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr
    assert "demo" in completed.stdout
    assert "backend" in completed.stdout


def test_backend_help_lists_host_port_and_data_dir_with_their_defaults(tmp_path: Path):
    completed = run_cli("backend", "--help", cwd=tmp_path)

    assert completed.returncode == 0, completed.stderr
    for option in ("--host", "--port", "--data-dir", "--max-running-jobs", "--min-seconds-between-starts"):
        assert option in completed.stdout


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
