"""The durable usage spool: every call's record is written here before anyone tries to send
it, and deleted only once the backend has stored it. Usage is billing: a backend outage, a
slow backend or a worker restart must not lose a record.

SQLite in WAL mode with ``synchronous=FULL``: a committed record survives a crash of the
worker (and of the machine). Several processes may share one spool (``JOB_EXECUTOR=process``,
or the ``usage`` command beside a running worker): a sender *leases* a record before posting
it, so two senders rarely post the same one, and when they do the backend's idempotency key
(the call id) makes the second post a no-op.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.log import logger

DEFAULT_MAX_RECORDS = 100_000
SPOOL_FILE = "usage.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    call_id      TEXT PRIMARY KEY,
    org          TEXT,
    body         TEXT NOT NULL,
    cost_usd     REAL NOT NULL,
    created_at   REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX IF NOT EXISTS records_due ON records (next_attempt);
"""


@dataclass(frozen=True)
class Pending:
    call_id: str
    org: str | None
    body: dict[str, Any]
    attempts: int
    last_error: str | None


class SpoolFull(Exception):
    pass


class UsageSpool:
    def __init__(self, directory: Path, *, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        self.path = directory / SPOOL_FILE
        self.max_records = max_records
        directory.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One short-lived connection per operation: safe from any thread or process."""
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    def add(self, body: dict[str, Any]) -> None:
        """Store a record (the same call id twice: kept once). Raises ``SpoolFull``."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                (count,) = db.execute("SELECT COUNT(*) FROM records").fetchone()
                if count >= self.max_records:
                    raise SpoolFull(
                        f"usage spool {self.path} holds {count} records "
                        f"(USAGE_SPOOL_MAX_RECORDS={self.max_records})"
                    )
                db.execute(
                    "INSERT OR IGNORE INTO records (call_id, org, body, cost_usd, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        body["callId"],
                        body.get("organizationId"),
                        json.dumps(body),
                        float(body.get("estimatedCostUsd") or 0.0),
                        time.time(),
                    ),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def lease(self, *, now: float, seconds: float, limit: int | None = 50) -> list[Pending]:
        """Records due for sending, each leased to the caller for ``seconds`` (no other
        sender takes it meanwhile). ``now=inf`` takes every record, due or not."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(
                "SELECT call_id, org, body, attempts, last_error FROM records "
                "WHERE next_attempt <= ? ORDER BY created_at LIMIT ?",
                (now, -1 if limit is None else limit),  # SQLite: -1 is no limit
            ).fetchall()
            until = time.time() + seconds
            db.executemany(
                "UPDATE records SET next_attempt = ? WHERE call_id = ?",
                [(until, r[0]) for r in rows],
            )
            db.execute("COMMIT")
        return [Pending(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def delivered(self, call_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM records WHERE call_id = ?", (call_id,))

    def failed(self, call_id: str, error: str, retry_at: float) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE records SET attempts = attempts + 1, next_attempt = ?, last_error = ? "
                "WHERE call_id = ?",
                (retry_at, error, call_id),
            )

    def next_due(self) -> float | None:
        """Unix time the earliest record is due, or None when the spool is empty."""
        with self._db() as db:
            (due,) = db.execute("SELECT MIN(next_attempt) FROM records").fetchone()
        return float(due) if due is not None else None

    def depth(self) -> int:
        with self._db() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM records").fetchone()
        return int(count)

    def pending(self) -> list[Pending]:
        with self._db() as db:
            rows = db.execute(
                "SELECT call_id, org, body, attempts, last_error FROM records ORDER BY created_at"
            ).fetchall()
        return [Pending(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]


def open_spool(directory: Path, max_records: int) -> UsageSpool | None:
    """The spool, or None (logged) when its directory cannot be used: a call must not fail
    because of it, and its record then goes to the log."""
    try:
        return UsageSpool(directory, max_records=max_records)
    except (OSError, sqlite3.Error) as e:
        logger.error(
            "usage spool unavailable: records go to the log only",
            extra={"path": str(directory), "error": f"{type(e).__name__}: {e}"},
        )
        return None
