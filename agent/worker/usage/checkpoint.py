"""Write-ahead usage: a call's record is in the spool from its start, so a call whose job
or worker dies is billed anyway (up to its last checkpoint).

``LiveUsage`` runs on the call's event loop and only takes cheap copies there (livekit's
``AgentSession.usage`` is already a copy; the failovers list): every
``USAGE_CHECKPOINT_SECONDS`` and at each turn's end. Pricing, JSON and the SQLite write
happen on the process's ``SpoolWriter`` thread, which keeps the latest snapshot per call
only (a slow disk coalesces checkpoints instead of queueing them) and applies a call's
close after its checkpoints, so a late checkpoint can never reopen a closed record.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.log import logger
from agent.worker import metrics
from agent.worker.usage.spool import SpoolFull, UsageSpool

Body = dict[str, Any]
Snapshot = Callable[[], Callable[[], Body]]
"""Called on the call's loop: copies what livekit counted so far and returns the builder of
the record's body (priced, ``completion: "recovered"``), which runs on the writer thread."""


@dataclass
class _Op:
    build: Callable[[], Body]
    done: concurrent.futures.Future[None] | None = None
    """Set for a close: its caller waits for the write."""


@dataclass
class SpoolWriter:
    """One per process: the thread every spool write of a call goes through."""

    spool: UsageSpool
    owner: str
    """This process's name in the spool's leases (host, pid, a random part)."""
    heartbeat: float
    """Seconds an open record stays this process's after a checkpoint."""
    writes: int = 0
    """Spool writes done (checkpoints and closes): what the bench counts."""
    _ops: dict[str, _Op] = field(default_factory=dict)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _failing: set[str] = field(default_factory=set)
    _taken: set[str] = field(default_factory=set)

    def checkpoint(self, call_id: str, build: Callable[[], Body]) -> None:
        """The open record of ``call_id`` as ``build`` makes it; replaces a checkpoint
        not written yet, never a pending close. Returns at once."""
        with self._cond:
            pending = self._ops.get(call_id)
            if pending is not None and pending.done is not None:
                return
            self._ops[call_id] = _Op(build)
            self._start()
            self._cond.notify()

    def close(self, body: Body) -> concurrent.futures.Future[None]:
        """The final record: written after anything pending for the call (whose checkpoint
        it supersedes). The future holds the write's outcome."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._cond:
            self._ops.pop(body["callId"], None)
            self._ops[body["callId"]] = _Op(lambda: body, done)
            self._start()
            self._cond.notify()
        return done

    def forget(self, call_id: str) -> None:
        """Drop a checkpoint not written yet (the call ended)."""
        with self._cond:
            pending = self._ops.get(call_id)
            if pending is not None and pending.done is None:
                del self._ops[call_id]

    def _start(self) -> None:
        if self._thread is None:
            # a daemon: a close is awaited by its call, and a checkpoint lost at exit is
            # what the next one (or the close) would have overwritten
            self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ops:
                    self._cond.wait()
                call_id = next(iter(self._ops))
                op = self._ops.pop(call_id)
            if op.done is None:
                self._write_checkpoint(call_id, op)
            else:
                self._write_close(call_id, op)

    def _write_checkpoint(self, call_id: str, op: _Op) -> None:
        if call_id in self._taken:
            return
        try:
            kept = self.spool.checkpoint(op.build(), owner=self.owner, lease=self.heartbeat)
        except Exception as e:
            self._count_failure("checkpoint", call_id, e)
            return
        self.writes += 1
        if call_id in self._failing:
            self._failing.discard(call_id)
            logger.info("usage checkpoint written again", extra={"call_id": call_id})
        if not kept:
            self._taken.add(call_id)
            logger.warning(
                "usage record of a running call was closed by another process (its "
                "heartbeat lapsed: this call's loop or disk stalled); its close will be "
                "sent with the same idempotency key",
                extra={"call_id": call_id, "heartbeat_seconds": self.heartbeat},
            )

    def _write_close(self, call_id: str, op: _Op) -> None:
        assert op.done is not None
        self._taken.discard(call_id)
        self._failing.discard(call_id)
        try:
            self.spool.add(op.build())
        except Exception as e:
            op.done.set_exception(e)
            return
        self.writes += 1
        op.done.set_result(None)

    def _count_failure(self, op: str, call_id: str, error: Exception) -> None:
        if isinstance(error, SpoolFull):
            metrics.SPOOL_FULL.inc()
        metrics.SPOOL_WRITE_ERRORS.labels(op).inc()
        if call_id not in self._failing:  # once per call until it works again
            self._failing.add(call_id)
            logger.error(
                "USAGE SPOOL WRITE FAILED: this call's usage checkpoint was not written; "
                "if its worker dies now, the call is billed up to its last checkpoint only",
                extra={
                    "call_id": call_id,
                    "path": str(self.spool.path),
                    "error": f"{type(error).__name__}: {error}",
                },
            )


class LiveUsage:
    """A running call's open record (see the module docstring). ``writer`` None: no spool
    (no backend configured), nothing is written."""

    def __init__(
        self, writer: SpoolWriter | None, call_id: str, snapshot: Snapshot, interval: float
    ) -> None:
        self.writer = writer
        self.call_id = call_id
        self.snapshot = snapshot
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self, session: Any) -> None:
        """On the call's loop, as the call starts: the open record, then checkpoints until
        the session closes (a last one then) or ``stop``."""
        if self.writer is None:
            return
        self.checkpoint()
        self._task = asyncio.get_running_loop().create_task(self._every(), name="usage-checkpoints")
        session.on("conversation_item_added", lambda _: self.checkpoint())  # a turn ended
        session.on("close", lambda _: self._session_closed())

    def checkpoint(self) -> None:
        if self.writer is None or self._stopped:
            return
        try:
            build = self.snapshot()
        except Exception as e:  # billing plumbing never takes a call down
            logger.warning(
                "usage checkpoint skipped", extra={"call_id": self.call_id, "error": repr(e)}
            )
            return
        self.writer.checkpoint(self.call_id, build)

    def _session_closed(self) -> None:
        """Nothing is counted after this: one last checkpoint, and no heartbeat from now
        on — if the call's close never comes, the record is recovered as it stands."""
        self.checkpoint()
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    def stop(self) -> None:
        """The call is closing its record: no checkpoint after this."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
        if self.writer is not None:
            self.writer.forget(self.call_id)

    async def _every(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.checkpoint()
