"""The tree stays ``ruff`` clean (lint and format), checked with the test suite so CI enforces it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def ruff(*arguments: str) -> subprocess.CompletedProcess:
    executable = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if executable is None:
        pytest.fail("ruff is not installed: install the test extra (pip install -e '.[test]')")
    return subprocess.run([executable, *arguments], cwd=REPO, capture_output=True, text=True, check=False)


def test_ruff_check_is_clean():
    result = ruff("check", "coherence_assets", "coherence_assets_tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = ruff("format", "--check", "coherence_assets", "coherence_assets_tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr
