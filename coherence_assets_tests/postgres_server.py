"""A throwaway PostgreSQL server for integration tests: Debian's ``postgresql`` binaries, a temp cluster.

The cluster listens on a free TCP port of 127.0.0.1 only and asks for a password over TCP, so a
client proves it took every connection setting (host, port, database, user, password) from its
configuration. PostgreSQL refuses to run as root: under root the server runs as the ``postgres``
user that Debian's package creates.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from coherence_assets_tests.dagster_dev import free_port

SERVER_USER = "postgres"  # the system account of Debian's package, used when the tests run as root
DATABASE = "dagster"
USERNAME = "dagster"
PASSWORD = "test-only-password"
START_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    database: str
    username: str
    password: str

    def dagster_environment(self) -> dict[str, str]:
        """The ``DAGSTER_PG_*`` variables that ``deploy/dagster.yaml`` reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": self.database,
            "DAGSTER_PG_USERNAME": self.username,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    def connect(self, database: str | None = None):
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            dbname=database or self.database,
            user=self.username,
            password=self.password,
        )


def postgres_bin_dir() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: on PATH, or Debian's versioned folder (newest first)."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_major_version, reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _major_version(pg_ctl: str) -> int:
    version = Path(pg_ctl).parents[1].name
    return int(version) if version.isdigit() else 0


@contextmanager
def running_postgres(base_dir: Path) -> Iterator[PostgresServer]:
    """Create a cluster under ``base_dir``, start it, create the ``dagster`` database; stop it on exit.

    Raises ``FileNotFoundError`` when no PostgreSQL binaries are installed.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError(
            "PostgreSQL server binaries (initdb, pg_ctl) are neither on PATH nor in /usr/lib/postgresql/*/bin; "
            "install Debian's postgresql package (.ci/run does)"
        )
    as_root = os.geteuid() == 0
    # pytest's temporary folders are private to their owner, which the server's own account cannot
    # enter; under root the cluster gets a folder of its own, owned by that account.
    root = Path(tempfile.mkdtemp(prefix="coherence-pg-")) if as_root else base_dir / "postgres"
    root.mkdir(parents=True, exist_ok=True)
    run_as = ["runuser", "-u", SERVER_USER, "--"] if as_root else []
    if as_root:
        account = pwd.getpwnam(SERVER_USER)
        os.chown(root, account.pw_uid, account.pw_gid)
    data_dir, log_file, password_file = root / "data", root / "server.log", root / "password"
    password_file.write_text(PASSWORD + "\n")
    if as_root:
        os.chown(password_file, account.pw_uid, account.pw_gid)
    server = PostgresServer("127.0.0.1", free_port(), DATABASE, USERNAME, PASSWORD)
    try:
        _run(
            [
                *run_as,
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                USERNAME,
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        server_options = f"-h {server.host} -p {server.port} -k {root} -c fsync=off"
        _run(
            [
                *run_as,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(log_file),
                "-o",
                server_options,
                "-t",
                str(START_TIMEOUT_SECONDS),
                "-w",
                "start",
            ],
            log_file,
        )
        try:
            connection = server.connect(database="postgres")
            connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            try:
                connection.cursor().execute(f"CREATE DATABASE {DATABASE}")
            finally:
                connection.close()
            yield server
        finally:
            _run(
                [*run_as, str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"], log_file
            )
    finally:
        if as_root:
            shutil.rmtree(root, ignore_errors=True)


def _run(command: list[str], log_file: Path | None = None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        log = log_file.read_text(errors="replace") if log_file and log_file.exists() else ""
        raise RuntimeError(
            f"{' '.join(command)} exited with {result.returncode}:\n{result.stdout}{result.stderr}{log}"
        )
