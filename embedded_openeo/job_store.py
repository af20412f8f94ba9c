"""Jobs, their logs and their result items, kept in SQLite under the backend's data directory.

Everything a client can ask about a job lives here, so a restarted backend answers exactly as before;
the runner, not the store, decides what an interrupted job becomes.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error")

# The openEO API's batch-job statuses, as this backend stores and serves them. The product keeps
# its own (coherence_assets/jobs/ledger.py): it is CDSE's client, and this backend stands in for CDSE.
CREATED = "created"
QUEUED = "queued"
RUNNING = "running"
FINISHED = "finished"
ERROR = "error"
CANCELED = "canceled"
ACTIVE_STATUSES = (QUEUED, RUNNING)  # a job in these is locked: no edit, and a start is a no-op
TERMINAL_STATUSES = (FINISHED, ERROR, CANCELED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    user_id TEXT NOT NULL,
    title TEXT,
    description TEXT,
    process TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL,
    log_level TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    queued_at TEXT,
    costs REAL,
    usage TEXT
);
CREATE TABLE IF NOT EXISTS logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    level TEXT NOT NULL,
    code TEXT,
    message TEXT NOT NULL,
    time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_by_job ON logs (job_id, seq);
CREATE TABLE IF NOT EXISTS result_items (
    job_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (job_id, item_id)
);
"""


def utc_now() -> str:
    """RFC 3339 UTC timestamp with a ``Z``, as openEO documents show them."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_job_id() -> str:
    """CDSE-style id: ``j-`` + creation time ``yymmddHHMMSS`` + 20 hex digits."""
    return f"j-{datetime.now(UTC):%y%m%d%H%M%S}{secrets.token_hex(10)}"


@dataclass(frozen=True)
class StoredJob:
    """One batch job as stored; ``process`` is the job's process (graph and metadata) as submitted."""

    seq: int
    id: str
    user_id: str
    title: str | None
    description: str | None
    process: dict[str, Any]
    status: str
    progress: float | None
    log_level: str
    created: str
    updated: str
    costs: float | None
    usage: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> StoredJob:
        return cls(
            seq=row["seq"],
            id=row["id"],
            user_id=row["user_id"],
            title=row["title"],
            description=row["description"],
            process=json.loads(row["process"]),
            status=row["status"],
            progress=row["progress"],
            log_level=row["log_level"],
            created=row["created"],
            updated=row["updated"],
            costs=row["costs"],
            usage=json.loads(row["usage"]) if row["usage"] else None,
        )


@dataclass(frozen=True)
class LogRecord:
    id: str
    level: str
    code: str | None
    message: str
    time: str


class JobStore:
    """SQLite (WAL) store shared by the HTTP threads and the runner; one connection behind a lock."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._connection = sqlite3.connect(
            data_dir / "jobs.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._connection.row_factory = sqlite3.Row
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def secret(self, name: str) -> str:
        """A random secret created once and kept, so tokens and signed URLs survive restarts."""
        with self._transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()
            if row is not None:
                return row["value"]
            value = secrets.token_hex(32)
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (name, value))
            return value

    # --- jobs ---------------------------------------------------------------------------------------

    def create_job(
        self,
        user_id: str,
        process: dict[str, Any],
        title: str | None,
        description: str | None,
        log_level: str,
    ) -> StoredJob:
        now = utc_now()
        job_id = new_job_id()
        with self._transaction() as db:
            db.execute(
                "INSERT INTO jobs (id, user_id, title, description, process, status, log_level, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, user_id, title, description, json.dumps(process), CREATED, log_level, now, now),
            )
        job = self.get_job(job_id)
        assert job is not None
        return job

    def get_job(self, job_id: str, user_id: str | None = None) -> StoredJob | None:
        with self._lock:
            row = self._connection.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or (user_id is not None and row["user_id"] != user_id):
            return None
        return StoredJob.from_row(row)

    def list_jobs(self, user_id: str, limit: int | None, before_seq: int | None) -> list[StoredJob]:
        """Newest first; ``before_seq`` continues a listing after the last job of the previous page."""
        query = "SELECT * FROM jobs WHERE user_id = ?"
        parameters: list[Any] = [user_id]
        if before_seq is not None:
            query += " AND seq < ?"
            parameters.append(before_seq)
        query += " ORDER BY seq DESC"
        if limit is not None:
            query += " LIMIT ?"
            parameters.append(limit)
        with self._lock:
            rows = self._connection.execute(query, parameters).fetchall()
        return [StoredJob.from_row(row) for row in rows]

    def update_metadata(self, job_id: str, changes: dict[str, Any]) -> None:
        """Apply a PATCH (title, description, process, log_level); the status does not change."""
        columns = {key: json.dumps(value) if key == "process" else value for key, value in changes.items()}
        if not columns:
            return
        assignments = ", ".join(f"{column} = ?" for column in columns)
        with self._transaction() as db:
            db.execute(
                f"UPDATE jobs SET {assignments}, updated = ? WHERE id = ?",
                (*columns.values(), utc_now(), job_id),
            )

    def set_status(
        self,
        job_id: str,
        status: str,
        *,
        expected: Iterable[str] | None = None,
        progress: float | None = None,
        costs: float | None = None,
        usage: dict[str, Any] | None = None,
    ) -> bool:
        """Move a job to ``status`` if it is in one of ``expected`` (any when None); True if it moved."""
        now = utc_now()
        query = "UPDATE jobs SET status = ?, progress = ?, costs = ?, usage = ?, updated = ?"
        parameters: list[Any] = [status, progress, costs, json.dumps(usage) if usage else None, now]
        if status == QUEUED:
            query += ", queued_at = ?"
            parameters.append(now)
        query += " WHERE id = ?"
        parameters.append(job_id)
        if expected is not None:
            allowed = tuple(expected)
            query += f" AND status IN ({', '.join('?' for _ in allowed)})"
            parameters.extend(allowed)
        with self._transaction() as db:
            return db.execute(query, parameters).rowcount == 1

    def set_progress(self, job_id: str, progress: float) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE jobs SET progress = ? WHERE id = ? AND status = ?",
                (round(progress, 1), job_id, RUNNING),
            )

    def claim_next_queued(self) -> StoredJob | None:
        """Atomically move the longest-queued job to ``running`` and return it."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE status = ? ORDER BY queued_at, seq LIMIT 1", (QUEUED,)
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = ?, progress = 0, updated = ? WHERE id = ?",
                (RUNNING, utc_now(), row["id"]),
            )
        return self.get_job(row["id"])

    def jobs_with_status(self, status: str) -> list[StoredJob]:
        with self._lock:
            rows = self._connection.execute("SELECT * FROM jobs WHERE status = ? ORDER BY seq", (status,))
            return [StoredJob.from_row(row) for row in rows.fetchall()]

    def delete_job(self, job_id: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            db.execute("DELETE FROM logs WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM result_items WHERE job_id = ?", (job_id,))

    # --- logs ---------------------------------------------------------------------------------------

    def add_log(self, job_id: str, level: str, message: str, code: str | None = None) -> None:
        """Append a log entry; ignored once the job is deleted (a worker may still be finishing it)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO logs (job_id, level, code, message, time)"
                " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?)",
                (job_id, level, code, message, utc_now(), job_id),
            )

    def logs(self, job_id: str, after_id: str | None, min_level: str) -> list[LogRecord]:
        """Entries after the log id ``after_id`` (the ``offset`` of the API) at ``min_level`` or above."""
        levels = LOG_LEVELS[LOG_LEVELS.index(min_level) :]
        after = int(after_id) if after_id and after_id.isdigit() else 0
        with self._lock:
            rows = self._connection.execute(
                f"SELECT * FROM logs WHERE job_id = ? AND seq > ? AND level IN ({', '.join('?' for _ in levels)})"
                " ORDER BY seq",
                (job_id, after, *levels),
            ).fetchall()
        return [
            LogRecord(str(row["seq"]), row["level"], row["code"], row["message"], row["time"]) for row in rows
        ]

    # --- results ------------------------------------------------------------------------------------

    def replace_result_items(self, job_id: str, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Store the job's result items (id, metadata), discarding those of an earlier run.

        Ignored once the job is deleted, like :meth:`add_log`: no orphan items outlive their job.
        """
        with self._transaction() as db:
            db.execute("DELETE FROM result_items WHERE job_id = ?", (job_id,))
            if db.execute("SELECT 1 FROM jobs WHERE id = ?", (job_id,)).fetchone() is None:
                return
            db.executemany(
                "INSERT OR REPLACE INTO result_items (job_id, item_id, item) VALUES (?, ?, ?)",
                [(job_id, item_id, json.dumps(item)) for item_id, item in items],
            )

    def result_items(self, job_id: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT item_id, item FROM result_items WHERE job_id = ? ORDER BY item_id", (job_id,)
            ).fetchall()
        return {row["item_id"]: json.loads(row["item"]) for row in rows}
