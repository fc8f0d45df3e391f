"""Gets usage records to the backend: spool first, send in the background, retry with
back-off until the backend has stored each one exactly once.

``POST {AICO_BACKEND_URL}/api/usage/calls`` with the internal bearer key,
``X-Organization-Id`` and ``Idempotency-Key: <call id>``; 2xx or 409 (already stored) means
stored. Nothing here runs on a call's event loop or delays a call: the record is written
to the spool by the writer thread, and posts run on the sender's own thread, each bounded
by a total deadline (httpx's timeouts bound each read; a backend that trickles one byte at
a time would hold a post for ever). The sender also closes the open records of calls whose
process is gone (``recover``), and a stopping worker drains the spool before it exits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import httpx
from pydantic import SecretStr

from agent.log import logger
from agent.worker import metrics
from agent.worker.usage.checkpoint import LiveUsage, Snapshot, SpoolWriter
from agent.worker.usage.record import CallRecord
from agent.worker.usage.spool import (
    DEFAULT_MAX_RECORDS,
    Pending,
    SpoolFull,
    Unreadable,
    UsageSpool,
    encode,
    open_spool,
)
from providers import EnvReader, env_reader
from providers.chains import describe_error

USAGE_PATH = "/api/usage/calls"
DEFAULT_SPOOL_DIR = "usage-spool"
RETRY_BASE = 1.0
LEASE_MARGIN = 5.0
"""Seconds a send lease outlives its post's deadline (the bookkeeping after the answer)."""


@dataclass(frozen=True)
class UsageSettings:
    backend_url: str | None = None
    api_key: SecretStr | None = None
    spool_dir: Path = Path(DEFAULT_SPOOL_DIR)
    max_records: int = DEFAULT_MAX_RECORDS
    post_timeout: float = 5.0
    """Total seconds one post may take, answer included."""
    retry_max: float = 300.0
    """Longest wait between two attempts of one record."""
    checkpoint_seconds: float = 5.0
    """``USAGE_CHECKPOINT_SECONDS``: how often a running call's usage so far is written (and
    at each turn's end); what a worker killed mid-call can leave unbilled."""
    poll_interval: float = 5.0
    """How often the sender looks for records other processes spooled."""
    drain_seconds: float = 10.0
    """How long a stopping worker may take sending what its spool holds."""

    @property
    def url(self) -> str | None:
        return self.backend_url.rstrip("/") + USAGE_PATH if self.backend_url else None

    @property
    def heartbeat(self) -> float:
        """Seconds an open record outlives its last checkpoint before any process may
        recover it: three checkpoints missed, and a margin for a loaded machine."""
        return 3 * self.checkpoint_seconds + 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> UsageSettings:
        d = cls()
        with env_reader(environ) as env:
            return cls(
                backend_url=env.text("AICO_BACKEND_URL"),
                api_key=env.secret("AICO_INTERNAL_API_KEY"),
                spool_dir=Path(env.text("USAGE_SPOOL_DIR") or DEFAULT_SPOOL_DIR),
                max_records=env.integer("USAGE_SPOOL_MAX_RECORDS", DEFAULT_MAX_RECORDS),
                post_timeout=env.number("USAGE_POST_TIMEOUT", d.post_timeout),
                retry_max=env.number("USAGE_RETRY_MAX", d.retry_max),
                checkpoint_seconds=env.value(
                    "USAGE_CHECKPOINT_SECONDS", _checkpoint_seconds, d.checkpoint_seconds
                ),
            )


def _checkpoint_seconds(raw: str) -> float:
    from providers import ConfigError

    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.1 <= value <= 300:  # also false for NaN
        raise ConfigError(
            f"USAGE_CHECKPOINT_SECONDS={raw!r}: seconds between two checkpoints, 0.1 to 300"
        )
    return value


P = ParamSpec("P")
T = TypeVar("T")


class _ThreadPerCall(concurrent.futures.ThreadPoolExecutor):
    """The sender loop's executor (httpx's DNS lookups): one short thread per call. A
    stopping worker drains after the interpreter has shut every ``ThreadPoolExecutor``
    down (they refuse work with ``RuntimeError``), so the default one would fail there."""

    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as e:
                    future.set_exception(e)

        threading.Thread(target=run, name="usage-sender-io", daemon=True).start()
        return future


class UsageSender:
    """Writes and posts this process's records; one per process (``get_usage``)."""

    def __init__(self, settings: UsageSettings, spool: UsageSpool | None) -> None:
        self.settings = settings
        self.spool = spool
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.writer = (
            SpoolWriter(spool, self.owner, settings.heartbeat) if spool is not None else None
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop = False
        self._draining = False
        self._lock = threading.Lock()

    # --- what a call does -----------------------------------------------------------

    def live(self, call_id: str, snapshot: Snapshot) -> LiveUsage:
        """A starting call's open record (``LiveUsage.start`` on the call's loop)."""
        if self.settings.url is None:
            return LiveUsage(None, call_id, snapshot, self.settings.checkpoint_seconds)
        return LiveUsage(self.writer, call_id, snapshot, self.settings.checkpoint_seconds)

    async def submit(self, record: CallRecord) -> None:
        """Close ``record`` in the spool and wake the sender. Never raises: a call's end
        must not fail because of billing plumbing (what cannot be spooled goes to the log
        in full)."""
        body = record.to_json()
        summary = {
            "org": record.organization_id,
            "call_id": record.call_id,
            "cost_usd": body["estimatedCostUsd"],
            "usage": [f"{u['kind']}/{u['provider']}" for u in body["usage"]],
        }
        if self.settings.url is None:
            logger.info("call usage (no backend: not spooled)", extra={**summary, "record": body})
            return
        if self.writer is None:
            logger.error("call usage not spooled (spool unavailable)", extra={"record": body})
            return
        try:
            await asyncio.wrap_future(self.writer.close(body))
        except SpoolFull as e:
            metrics.SPOOL_FULL.inc()
            metrics.SPOOL_WRITE_ERRORS.labels("close").inc()
            logger.error(
                "USAGE SPOOL FULL: record written to this log only; the backend has been "
                "unreachable for long — fix it, then replay this line",
                extra={"reason": str(e), "record": body},
            )
            return
        except Exception as e:  # a broken or full disk: the log is the last place left
            metrics.SPOOL_WRITE_ERRORS.labels("close").inc()
            logger.error(
                "USAGE SPOOL WRITE FAILED: call usage not spooled; record written to this "
                "log only — replay this line",
                extra={
                    "path": str(self.spool.path) if self.spool else None,
                    "error": f"{type(e).__name__}: {e}",
                    "record": body,
                },
            )
            return
        logger.info("call usage spooled", extra=summary)
        await asyncio.to_thread(self._update_depth)  # a SQLite read: not on the call's loop
        self.wake()

    # --- sending --------------------------------------------------------------------

    async def send(self, *, everything: bool = False) -> int:
        """Recover the records of dead calls, then post what is due (``everything``: all
        closed records, back-off or not, each once) on this loop; returns how many the
        backend stored. SQLite runs inline: this is the sender's own loop (or a command's)."""
        if self.spool is None or self.settings.url is None:
            return 0
        self._recover()
        stored = 0
        timeout = httpx.Timeout(self.settings.post_timeout)
        async with httpx.AsyncClient(timeout=timeout) as client:
            while True:
                due = self.spool.due(
                    now=time.time(), everything=everything, limit=None if everything else 50
                )
                claimed = 0
                for call_id in due:
                    pending = self.spool.claim(
                        call_id,
                        owner=self.owner,
                        seconds=self.settings.post_timeout + LEASE_MARGIN,
                        everything=everything,
                    )
                    if pending is None:  # another sender has it, or it is gone
                        continue
                    claimed += 1
                    if isinstance(pending, Unreadable):
                        self._quarantine(pending.call_id, pending.reason)
                    elif await self._post(client, pending):
                        stored += 1
                if everything or not claimed:
                    break
        self._update_depth()
        return stored

    def _recover(self) -> None:
        assert self.spool is not None
        for call_id, org in self.spool.recover(time.time()):
            metrics.RECOVERED.inc()
            logger.warning(
                "usage record recovered: the call's process is gone; it is billed up to its "
                "last checkpoint (completion: recovered)",
                extra={"org": org, "call_id": call_id},
            )

    def _quarantine(self, call_id: str, reason: str) -> None:
        assert self.spool is not None
        self.spool.quarantine(call_id, reason)
        metrics.QUARANTINED.inc()
        logger.error(
            "usage record quarantined: it cannot be sent as it is; it stays in the spool "
            "(python -m agent usage lists it) and the others go on",
            extra={"call_id": call_id, "reason": reason, "path": str(self.spool.path)},
        )

    async def _post(self, client: httpx.AsyncClient, pending: Pending) -> bool:
        assert self.spool is not None and self.settings.url is not None
        try:
            content = encode(pending.body)
        except ValueError as e:  # NaN or Infinity somewhere: no backend could parse it
            self._quarantine(pending.call_id, f"not strict JSON ({e})")
            return False
        headers = {"Idempotency-Key": pending.call_id, "Content-Type": "application/json"}
        if pending.org:
            headers["X-Organization-Id"] = pending.org
        if self.settings.api_key is not None:
            headers["Authorization"] = f"Bearer {self.settings.api_key.get_secret_value()}"
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.post_timeout):
                resp = await client.post(self.settings.url, content=content, headers=headers)
            error = (
                None if resp.is_success or resp.status_code == 409 else f"HTTP {resp.status_code}"
            )
        except TimeoutError:
            error = f"PostDeadline ({self.settings.post_timeout:g} s)"
        except httpx.HTTPError as e:
            error = describe_error(e)
        metrics.BACKEND_SECONDS.labels("usage").observe(time.monotonic() - started)
        if error is None:
            self.spool.delivered(pending.call_id, pending.revision)
            return True
        delay = min(self.settings.retry_max, RETRY_BASE * 2**pending.attempts)
        retry_at = time.time() + delay * random.uniform(0.8, 1.2)
        self.spool.failed(pending.call_id, error, retry_at)
        logger.warning(
            "usage record not stored yet, will retry",
            extra={
                "org": pending.org,
                "call_id": pending.call_id,
                "reason": error,
                "attempt": pending.attempts + 1,
                "retry_in": round(delay, 1),
            },
        )
        return False

    def _update_depth(self) -> None:
        if self.spool is not None:
            try:
                metrics.SPOOL_DEPTH.set(self.spool.depth())
            except Exception:  # a metric is not worth an error on a call's path
                pass

    # --- the background thread ------------------------------------------------------

    def start(self) -> None:
        """Send in the background from now on (the worker process calls this once); when
        the process exits (a graceful stop), send what the spool holds first, for at most
        ``drain_seconds``."""
        with self._lock:
            if self._thread is not None or self.settings.url is None or self.spool is None:
                return
            # not a daemon: the interpreter waits for its drain at exit (bounded)
            self._thread = threading.Thread(
                target=lambda: asyncio.run(self._run()), name="usage-sender"
            )
            self._thread.start()
            threading.Thread(target=self._drain_at_exit, name="usage-exit", daemon=True).start()

    def _drain_at_exit(self) -> None:
        """The main thread ends when the process exits: drain, then stop."""
        threading.main_thread().join()
        self._draining = True
        self.stop()

    def wake(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # the sender's loop has ended
                pass

    def stop(self) -> None:
        self._stop = True
        self.wake()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_default_executor(_ThreadPerCall(max_workers=1))
        self._wake = asyncio.Event()
        assert self.spool is not None
        while not self._stop:
            try:
                await self.send()
                due = self.spool.next_due()
            except Exception as e:  # keep sending; the records are safe in the spool
                logger.error("usage sender error", extra={"error": describe_error(e)})
                due = None
            wait = self.settings.poll_interval
            if due is not None:
                wait = min(wait, max(0.05, due - time.time()))
            self._wake.clear()
            if self._stop:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass
        if self._draining:
            await self._drain()

    async def _drain(self) -> None:
        assert self.spool is not None
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.settings.drain_seconds):
                stored = await self.send(everything=True)
        except TimeoutError:
            stored = -1
        except Exception as e:
            logger.warning("usage drain incomplete", extra={"error": describe_error(e)})
            return
        left = self.spool.depth()
        logger.info(
            "usage spool drained" if left == 0 else "usage spool drain incomplete",
            extra={
                "sent": stored if stored >= 0 else None,
                "pending": left,
                "seconds": round(time.monotonic() - started, 2),
            },
        )


_default: UsageSender | None = None
_default_lock = threading.Lock()
_settings = UsageSettings()


def configure_usage(settings: UsageSettings) -> None:
    """This process's usage settings, set at start-up; a sender made with others before is
    stopped and forgotten (tests start up again between calls)."""
    global _settings
    with _default_lock:
        if settings == _settings:
            return
        _settings = settings
    reset_usage()


def get_usage() -> UsageSender:
    """This process's sender, made on first use from the start-up settings."""
    global _default
    with _default_lock:
        if _default is None:
            settings = _settings
            spool = (
                open_spool(settings.spool_dir, settings.max_records)
                if settings.url is not None
                else None
            )
            _default = UsageSender(settings, spool)
        return _default


def reset_usage() -> None:
    """Stop and forget this process's sender (the next ``get_usage`` makes a fresh one)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.stop()
        _default = None


def summarize(pending: list[Pending]) -> dict[str, Any]:
    """Per org: records, units per kind/provider/unit, estimated cost (``usage`` command)."""
    orgs: dict[str, dict[str, Any]] = {}
    for p in pending:
        org = orgs.setdefault(
            p.org or "(none)", {"records": 0, "estimatedCostUsd": 0.0, "units": {}}
        )
        org["records"] += 1
        org["estimatedCostUsd"] += float(p.body.get("estimatedCostUsd") or 0.0)
        for line in p.body.get("usage", []):
            key = f"{line.get('kind')}/{line.get('provider')}"
            units = org["units"].setdefault(key, {})
            for name, value in line.items():
                if name in ("kind", "provider", "model", "costUsd"):
                    continue
                if isinstance(value, (int, float)):
                    units[name] = round(units.get(name, 0) + value, 3)
    for org in orgs.values():
        org["estimatedCostUsd"] = round(org["estimatedCostUsd"], 6)
    return orgs
