"""Gets usage records to the backend: spool first, send in the background, retry with
back-off until the backend has stored each one exactly once.

``POST {AICO_BACKEND_URL}/api/usage/calls`` with the internal bearer key,
``X-Organization-Id`` and ``Idempotency-Key: <call id>``; 2xx or 409 (already stored) means
stored. Nothing here runs on a call's event loop or delays a call: the record is written
to the spool off the loop, and posts run on the sender's own thread.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from agent.log import logger
from agent.worker import metrics
from agent.worker.usage.record import CallRecord
from agent.worker.usage.spool import DEFAULT_MAX_RECORDS, Pending, SpoolFull, UsageSpool, open_spool
from providers import EnvReader, env_reader
from providers.chains import describe_error

USAGE_PATH = "/api/usage/calls"
DEFAULT_SPOOL_DIR = "usage-spool"
RETRY_BASE = 1.0


@dataclass(frozen=True)
class UsageSettings:
    backend_url: str | None = None
    api_key: SecretStr | None = None
    spool_dir: Path = Path(DEFAULT_SPOOL_DIR)
    max_records: int = DEFAULT_MAX_RECORDS
    post_timeout: float = 5.0
    retry_max: float = 300.0
    """Longest wait between two attempts of one record."""
    poll_interval: float = 5.0
    """How often the sender looks for records other processes spooled."""

    @property
    def url(self) -> str | None:
        return self.backend_url.rstrip("/") + USAGE_PATH if self.backend_url else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> UsageSettings:
        with env_reader(environ) as env:
            return cls(
                backend_url=env.text("AICO_BACKEND_URL"),
                api_key=env.secret("AICO_INTERNAL_API_KEY"),
                spool_dir=Path(env.text("USAGE_SPOOL_DIR") or DEFAULT_SPOOL_DIR),
                max_records=env.integer("USAGE_SPOOL_MAX_RECORDS", DEFAULT_MAX_RECORDS),
                post_timeout=env.number("USAGE_POST_TIMEOUT", 5.0),
                retry_max=env.number("USAGE_RETRY_MAX", 300.0),
            )


class UsageSender:
    """Posts spooled records; one per process (``get_usage``)."""

    def __init__(self, settings: UsageSettings, spool: UsageSpool | None) -> None:
        self.settings = settings
        self.spool = spool
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop = False
        self._lock = threading.Lock()

    # --- what a call does -----------------------------------------------------------

    async def submit(self, record: CallRecord) -> None:
        """Spool ``record`` and wake the sender. Never raises: a call's end must not fail
        because of billing plumbing (what cannot be spooled goes to the log in full)."""
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
        if self.spool is None:
            logger.error("call usage not spooled (spool unavailable)", extra={"record": body})
            return
        try:
            await asyncio.to_thread(self.spool.add, body)
        except SpoolFull as e:
            metrics.SPOOL_FULL.inc()
            logger.error(
                "USAGE SPOOL FULL: record written to this log only; the backend has been "
                "unreachable for long — fix it, then replay this line",
                extra={"reason": str(e), "record": body},
            )
            return
        except Exception as e:  # a broken disk: the log is the last place left
            logger.error(
                "call usage not spooled", extra={"error": describe_error(e), "record": body}
            )
            return
        logger.info("call usage spooled", extra=summary)
        await asyncio.to_thread(self._update_depth)  # a SQLite read: not on the call's loop
        self.wake()

    # --- sending --------------------------------------------------------------------

    async def send(self, *, everything: bool = False) -> int:
        """Post what is due (``everything``: all records, back-off or not) on this loop;
        returns how many the backend stored."""
        if self.spool is None or self.settings.url is None:
            return 0
        stored = 0
        async with httpx.AsyncClient(timeout=self.settings.post_timeout) as client:
            while True:
                # everything: one lease of all records (a leased record counts as due again
                # under now=inf, so a second batch would re-take them)
                batch = await asyncio.to_thread(
                    self.spool.lease,
                    now=float("inf") if everything else time.time(),
                    seconds=self.settings.post_timeout + 5.0,
                    limit=None if everything else 50,
                )
                for pending in batch:
                    if await self._post(client, pending):
                        stored += 1
                if everything or not batch:
                    break
        await asyncio.to_thread(self._update_depth)
        return stored

    async def _post(self, client: httpx.AsyncClient, pending: Pending) -> bool:
        assert self.spool is not None and self.settings.url is not None
        headers = {"Idempotency-Key": pending.call_id, "Content-Type": "application/json"}
        if pending.org:
            headers["X-Organization-Id"] = pending.org
        if self.settings.api_key is not None:
            headers["Authorization"] = f"Bearer {self.settings.api_key.get_secret_value()}"
        started = time.monotonic()
        try:
            resp = await client.post(self.settings.url, json=pending.body, headers=headers)
            error = (
                None if resp.is_success or resp.status_code == 409 else f"HTTP {resp.status_code}"
            )
        except httpx.HTTPError as e:
            error = describe_error(e)
        metrics.BACKEND_SECONDS.labels("usage").observe(time.monotonic() - started)
        if error is None:
            await asyncio.to_thread(self.spool.delivered, pending.call_id)
            return True
        delay = min(self.settings.retry_max, RETRY_BASE * 2**pending.attempts)
        retry_at = time.time() + delay * random.uniform(0.8, 1.2)
        await asyncio.to_thread(self.spool.failed, pending.call_id, error, retry_at)
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
        """Send in the background from now on (the worker process calls this once)."""
        with self._lock:
            if self._thread is not None or self.settings.url is None or self.spool is None:
                return
            self._thread = threading.Thread(
                target=lambda: asyncio.run(self._run()), name="usage-sender", daemon=True
            )
            self._thread.start()

    def wake(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    def stop(self) -> None:
        self._stop = True
        self.wake()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        assert self.spool is not None
        while not self._stop:
            try:
                await self.send()
                due = await asyncio.to_thread(self.spool.next_due)
            except Exception as e:  # keep sending; the records are safe in the spool
                logger.error("usage sender error", extra={"error": describe_error(e)})
                due = None
            wait = self.settings.poll_interval
            if due is not None:
                wait = min(wait, max(0.05, due - time.time()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wait)
            except asyncio.TimeoutError:
                pass


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
