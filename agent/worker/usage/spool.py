"""The durable usage spool: every call's record is written here when the call starts, kept
up to date while it runs, and deleted only once the backend has stored its close. Usage is
billing: a backend outage, a slow backend, a worker restart or a worker killed mid-call must
not lose a record.

SQLite in WAL mode with ``synchronous=FULL``: a committed write survives a crash of the
worker (and of the machine). Several processes may share one spool (``JOB_EXECUTOR=process``,
several workers on one volume, the ``usage`` command beside a running worker), so every
row carries a *lease*: who answers for it, until when.

A row is ``open`` while its call runs: its body is the record as it would be billed if the
call's process died now (usage up to the last checkpoint, ``completion: "recovered"``), and
its lease is the call's heartbeat, renewed at each checkpoint. A row whose heartbeat ran
out belongs to a process that is gone: ``recover`` closes it as it stands. A ``closed``
row is due for sending; a sender leases it for one post at a time, so no two senders post
the same record at once. A row the sender cannot even read is ``quarantined``: kept for an
operator, never in the way of the others.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from agent.log import logger

DEFAULT_MAX_RECORDS = 100_000
SPOOL_FILE = "usage.sqlite3"

OPEN: Final = "open"
CLOSED: Final = "closed"
QUARANTINED: Final = "quarantined"
State = Literal["open", "closed", "quarantined"]

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

_COLUMNS = {
    # added with write-ahead records; a spool from before has closed rows only
    "state": "TEXT NOT NULL DEFAULT 'closed'",
    "lease_until": "REAL NOT NULL DEFAULT 0",
    "lease_owner": "TEXT",
    "revision": "INTEGER NOT NULL DEFAULT 0",
}


@dataclass(frozen=True)
class Pending:
    call_id: str
    org: str | None
    body: dict[str, Any]
    attempts: int
    last_error: str | None
    revision: int = 0


@dataclass(frozen=True)
class Unreadable:
    """A leased row whose body is not a JSON record (``claim`` found it)."""

    call_id: str
    reason: str


class SpoolFull(Exception):
    pass


def encode(body: dict[str, Any]) -> str:
    """Strict JSON (no ``NaN``/``Infinity``: the backend could never parse them); raises
    ``ValueError``."""
    return json.dumps(body, allow_nan=False)


class UsageSpool:
    def __init__(self, directory: Path, *, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        self.path = directory / SPOOL_FILE
        self.max_records = max_records
        directory.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            db.execute("BEGIN IMMEDIATE")  # one process migrates, the others see it done
            have = {row[1] for row in db.execute("PRAGMA table_info(records)")}
            for name, decl in _COLUMNS.items():
                if name not in have:
                    db.execute(f"ALTER TABLE records ADD COLUMN {name} {decl}")
            db.execute("CREATE INDEX IF NOT EXISTS records_lease ON records (state, lease_until)")
            db.execute("COMMIT")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One short-lived connection per operation: safe from any thread or process."""
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLITE_FULL has rolled it back already
                    db.execute("ROLLBACK")
                raise

    def _insert(self, db: sqlite3.Connection, body: dict[str, Any], text: str, **row: Any) -> bool:
        (count,) = db.execute("SELECT COUNT(*) FROM records").fetchone()
        if count >= self.max_records:
            raise SpoolFull(
                f"usage spool {self.path} holds {count} records "
                f"(USAGE_SPOOL_MAX_RECORDS={self.max_records})"
            )
        cur = db.execute(
            "INSERT OR IGNORE INTO records "
            "(call_id, org, body, cost_usd, created_at, state, lease_until, lease_owner) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                body["callId"],
                body.get("organizationId"),
                text,
                float(body.get("estimatedCostUsd") or 0.0),
                time.time(),
                row.get("state", CLOSED),
                row.get("lease_until", 0.0),
                row.get("lease_owner"),
            ),
        )
        return cur.rowcount == 1

    # --- a call's own writes ----------------------------------------------------------

    def checkpoint(self, body: dict[str, Any], *, owner: str, lease: float) -> bool:
        """Write (or update) the open record of a running call and renew its heartbeat
        for ``lease`` seconds. False when the row is no longer open (closed, recovered by
        another process): a checkpoint never reopens a record. Raises ``SpoolFull``,
        ``ValueError`` (not strict JSON), ``sqlite3.Error``."""
        text = encode(body)
        cost = float(body.get("estimatedCostUsd") or 0.0)
        with self._write() as db:
            cur = db.execute(
                "UPDATE records SET body = ?, cost_usd = ?, lease_until = ?, lease_owner = ?, "
                "revision = revision + 1 WHERE call_id = ? AND state = 'open'",
                (text, cost, time.time() + lease, owner, body["callId"]),
            )
            if cur.rowcount == 1:
                return True
            exists = db.execute(
                "SELECT 1 FROM records WHERE call_id = ?", (body["callId"],)
            ).fetchone()
            if exists:
                return False
            return self._insert(
                db, body, text, state=OPEN, lease_until=time.time() + lease, lease_owner=owner
            )

    def add(self, body: dict[str, Any]) -> None:
        """Close a record: its final body replaces the open (or recovered, not yet sent)
        one, keeping any sender's lease; a record never opened is stored as it is. A call
        id already delivered is stored again (the backend answers 409). Raises
        ``SpoolFull``, ``ValueError``, ``sqlite3.Error``."""
        text = encode(body)
        with self._write() as db:
            cur = db.execute(
                "UPDATE records SET body = ?, cost_usd = ?, state = 'closed', "
                "lease_until = CASE state WHEN 'open' THEN 0 ELSE lease_until END, "
                "lease_owner = CASE state WHEN 'open' THEN NULL ELSE lease_owner END, "
                "revision = revision + 1 WHERE call_id = ? AND state IN ('open', 'closed')",
                (text, float(body.get("estimatedCostUsd") or 0.0), body["callId"]),
            )
            if cur.rowcount == 0:
                self._insert(db, body, text)

    # --- recovery ---------------------------------------------------------------------

    def recover(self, now: float) -> list[tuple[str, str | None]]:
        """Close every open record whose heartbeat ran out (its process is gone) as it
        stands: usage up to its last checkpoint. Returns (call id, org) of each; of two
        processes recovering at once, one gets each row."""
        with self._db() as db:  # a read first: the usual answer is none, and costs no fsync
            found = db.execute(
                "SELECT 1 FROM records WHERE state = 'open' AND lease_until <= ? LIMIT 1", (now,)
            ).fetchone()
        if found is None:
            return []
        with self._write() as db:
            rows = db.execute(
                "UPDATE records SET state = 'closed', lease_until = 0, lease_owner = NULL, "
                "revision = revision + 1 WHERE state = 'open' AND lease_until <= ? "
                "RETURNING call_id, org",
                (now,),
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    # --- sending ----------------------------------------------------------------------

    def due(self, *, now: float, everything: bool = False, limit: int | None = 50) -> list[str]:
        """Call ids of closed records no sender holds, oldest first; due ones only unless
        ``everything`` (back-off or not)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT call_id FROM records WHERE state = 'closed' AND lease_until <= ? "
                "AND (? OR next_attempt <= ?) ORDER BY created_at LIMIT ?",
                (now, everything, now, -1 if limit is None else limit),  # -1: no limit
            ).fetchall()
        return [r[0] for r in rows]

    def claim(
        self, call_id: str, *, owner: str, seconds: float, everything: bool = False
    ) -> Pending | Unreadable | None:
        """Lease one record to ``owner`` for ``seconds`` (one post: no other sender takes
        it meanwhile); None when another sender holds it or it is gone or not due."""
        now = time.time()
        with self._write() as db:
            row = db.execute(
                "UPDATE records SET lease_until = ?, lease_owner = ? WHERE call_id = ? "
                "AND state = 'closed' AND lease_until <= ? AND (? OR next_attempt <= ?) "
                "RETURNING org, body, attempts, last_error, revision",
                (now + seconds, owner, call_id, now, everything, now),
            ).fetchone()
        if row is None:
            return None
        try:
            body = json.loads(row[1])
        except ValueError as e:
            return Unreadable(call_id, f"body is not JSON ({e})")
        if not isinstance(body, dict):
            return Unreadable(call_id, f"body is a JSON {type(body).__name__}, not an object")
        return Pending(call_id, row[0], body, row[2], row[3], row[4])

    def delivered(self, call_id: str, revision: int | None = None) -> None:
        """The backend has it. With ``revision``: only that version of the row (a close
        that replaced the body meanwhile is sent on its own)."""
        with self._db() as db:
            if revision is None:
                db.execute("DELETE FROM records WHERE call_id = ?", (call_id,))
            else:
                db.execute(
                    "DELETE FROM records WHERE call_id = ? AND revision = ?", (call_id, revision)
                )

    def failed(self, call_id: str, error: str, retry_at: float) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE records SET attempts = attempts + 1, next_attempt = ?, last_error = ?, "
                "lease_until = 0, lease_owner = NULL WHERE call_id = ? AND state = 'closed'",
                (retry_at, error, call_id),
            )

    def quarantine(self, call_id: str, reason: str) -> None:
        with self._db() as db:
            db.execute(
                "UPDATE records SET state = 'quarantined', last_error = ?, lease_until = 0, "
                "lease_owner = NULL WHERE call_id = ?",
                (reason, call_id),
            )

    def next_due(self) -> float | None:
        """Unix time the earliest record needs this sender: a closed one due (or its lease
        ending), an open one's heartbeat running out; None when there is none."""
        with self._db() as db:
            (due,) = db.execute(
                "SELECT MIN(CASE state WHEN 'open' THEN lease_until "
                "ELSE MAX(next_attempt, lease_until) END) FROM records "
                "WHERE state IN ('open', 'closed')"
            ).fetchone()
        return float(due) if due is not None else None

    # --- what is in it ----------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Rows per state (every state present, 0 when none)."""
        with self._db() as db:
            rows = db.execute("SELECT state, COUNT(*) FROM records GROUP BY state").fetchall()
        found = {str(r[0]): int(r[1]) for r in rows}
        return {state: found.get(state, 0) for state in (OPEN, CLOSED, QUARANTINED)}

    def depth(self) -> int:
        """Records waiting to be sent (closed)."""
        return self.counts()[CLOSED]

    def pending(self, state: State = CLOSED) -> list[Pending]:
        with self._db() as db:
            rows = db.execute(
                "SELECT call_id, org, body, attempts, last_error, revision FROM records "
                "WHERE state = ? ORDER BY created_at",
                (state,),
            ).fetchall()
        return [Pending(r[0], r[1], _readable(r[2]), r[3], r[4], r[5]) for r in rows]


def _readable(text: str) -> dict[str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


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
