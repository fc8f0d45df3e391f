"""Live provider status: which providers this worker considers healthy right now, and why
not — the breaker per provider endpoint and per credential (a hash, never the key), with
its last error class and time.

``GET /status`` on the worker's status server (``GET /``: the same as a page for an
operator, ``agent.worker.status_page``) (``STATUS_PORT``, default 8082; livekit's
own health server on ``AGENT_HTTP_PORT`` cannot take extra routes), and
``python -m agent status --url http://HOST:8082`` prints it.

The server listens on loopback unless ``STATUS_HOST`` opens it; with ``STATUS_TOKEN`` set
it answers only ``Authorization: Bearer <token>``. What it shows is redacted as every log
line is: endpoints without userinfo or query string, keys as salted fingerprints.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hmac
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
from aiohttp import web
from livekit.agents import utils
from pydantic import SecretStr

from agent.log import logger
from agent.worker.settings import DEFAULT_STATUS_PORT as DEFAULT_PORT
from agent.worker.settings import Settings
from agent.worker.status_page import page
from agent.worker.usage import get_usage
from providers.chains import HealthRegistry, get_health
from providers.redaction import redact_text, safe_urls

STATUS_PATH = "/status"


def _iso(t: float) -> str | None:
    return (
        dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds") if t else None
    )


def status(
    health: HealthRegistry | None = None,
    *,
    executor: str = "thread",
    calls: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """``executor``: the worker's ``JOB_EXECUTOR``; ``calls``: how many calls it runs now."""
    health = health or get_health()
    usage = get_usage()
    spool = usage.spool
    counts = spool.counts() if spool else {"open": 0, "closed": 0, "quarantined": 0}
    return {
        "generatedAt": _iso(time.time()),
        "pid": os.getpid(),
        "executor": executor,
        "callsInProgress": calls() if calls is not None else None,
        "providers": [
            {
                "kind": b.kind,
                "provider": b.provider,
                "key": safe_urls(b.key),
                "state": b.state.value,
                "up": b.state.value != "open",
                "lastError": redact_text(b.reason) or None,
                "lastErrorAt": _iso(b.failed_at),
                "failures": b.failures,
                "retryInSeconds": round(b.retry_in, 1),
            }
            for b in health.snapshot()
        ],
        "usageSpool": {
            "backend": usage.settings.url is not None,
            "path": str(spool.path) if spool else None,
            "pending": counts["closed"],
            "open": counts["open"],
            "quarantined": counts["quarantined"],
        },
    }


class StatusServer(utils.http_server.HttpServer):
    """livekit's small aiohttp server (the one its health port runs on) with our route, on
    the worker's event loop."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        executor: str = "thread",
        token: SecretStr | None = None,
        calls: Callable[[], int] | None = None,
    ) -> None:
        """``calls``: the number of calls the worker runs now (its active jobs)."""
        super().__init__(host, port)
        self.executor = executor
        self._calls = calls
        self._token = token.get_secret_value().encode() if token else None
        self.app.router.add_get(STATUS_PATH, self._handle_status)
        self.app.router.add_get("/", self._handle_page)

    def _authorized(self, request: web.Request) -> bool:
        if self._token is None:
            return True
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), self._token)

    async def _handle_status(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(
                {"error": "unauthorized"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="status"'},
            )
        # the spool's depth is a SQLite read: off the worker's event loop
        data = await asyncio.to_thread(status, executor=self.executor, calls=self._calls)
        return web.json_response(data)

    async def _handle_page(self, _request: web.Request) -> web.Response:
        """The operator's page: no data of its own (it fetches ``/status`` with the token
        the operator gives it), so it needs no token."""
        return web.Response(
            text=page(STATUS_PATH), content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    async def start(self) -> None:
        await super().start()
        logger.info(
            "status server listening",
            extra={"url": f"http://{self.host}:{self.port}{STATUS_PATH}", "port": self.port},
        )


# ---------------------------------------------------------------------------- CLI


def _print_text(data: dict[str, Any]) -> None:
    spool = data.get("usageSpool", {})
    calls = data.get("callsInProgress")
    print(
        f"worker pid {data.get('pid')}   executor {data.get('executor')}"
        + (f"   calls {calls}" if calls is not None else "")
    )
    print(
        f"usage spool: {spool.get('pending', 0)} pending, {spool.get('open', 0)} open   "
        f"{spool.get('path') or '-'}"
    )
    providers = data.get("providers", [])
    if not providers:
        print("providers: none used yet")
        return
    print(f"{'KIND':<5} {'PROVIDER':<18} {'STATE':<10} {'FAILS':>5}  LAST ERROR")
    for p in providers:
        error = p.get("lastError") or "-"
        if p.get("lastErrorAt"):
            error += f" at {p['lastErrorAt']}"
        if p.get("state") == "open":
            error += f" (retry in {p.get('retryInSeconds', 0):g} s)"
        print(
            f"{p.get('kind', ''):<5} {p.get('provider', ''):<18} {p.get('state', ''):<10} "
            f"{p.get('failures', 0):>5}  {error}"
        )
        print(f"{'':6}{p.get('key', '')}")


def main(argv: list[str], settings: Settings) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agent status",
        description="Which providers a running worker considers healthy, and why not.",
    )
    parser.add_argument(
        "--url",
        default=f"http://127.0.0.1:{settings.worker.status_port or DEFAULT_PORT}",
        help="the worker's status server (default: http://127.0.0.1:$STATUS_PORT)",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON as served")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    if not url.endswith(STATUS_PATH):
        url += STATUS_PATH
    try:
        token = settings.worker.status_token
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        resp = httpx.get(url, headers=headers, timeout=5.0)
        if resp.status_code == 401:
            print(f"status: {url} wants a token: set STATUS_TOKEN to the worker's", file=sys.stderr)
            return 1
        resp.raise_for_status()
        data = resp.json()
    except (httpx.HTTPError, ValueError) as e:
        print(
            f"status: no worker status at {url} ({type(e).__name__}); is the worker running, "
            "and is STATUS_PORT the same?",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        _print_text(data)
    return 0
