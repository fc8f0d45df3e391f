"""A real aiohttp backend serving the provider contract of SPEC §3.2, on 127.0.0.1.

    async with BackendServer(expected_key="k") as backend:
        backend.set_org("acme", {"providers": [provider_entry("vosk", "stt")]}, version="17")
        backend.behave("acme", delay=5)          # or status=500, raw_body=b"{", trickle=...
        ... LoaderSettings(backend_url=backend.url, ...)
        backend.requests_for("acme")             # what the worker sent

``POST /api/usage/calls`` stores usage records by ``Idempotency-Key`` (``usage_records``;
``usage`` / ``usage_gate`` make it fail, stall, trickle its answer or answer garbage;
``providers_gate`` holds provider answers the same way; ``usage_posting`` counts posts in
progress, ``usage_overlap`` the most at once for one key).

``GET /api/providers/organization/enabled`` reads the org from ``X-Organization-Id``,
answers its payload with ``ETag: <version>`` and answers 304 when ``If-None-Match`` equals
the current version. An org never set answers 404. With ``expected_key`` set, any other
bearer gets 401. Per-org (or default, ``org_id=None``) behaviours inject the failures the
loader must survive: a delay before the headers, a body trickled byte by byte, a status
override, a raw body override (invalid JSON, wrong types, oversized, chunked).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.support.net import HOST

PROVIDERS_PATH = "/api/providers/organization/enabled"
USAGE_PATH = "/api/usage/calls"


def provider_entry(
    providerId: str,  # the wire names, so a row reads like the JSON
    type: str,
    *,
    priority: Any = 0,
    config: Any = None,
    secrets: Any = None,
    enabled: Any = True,
    **extra: Any,
) -> dict[str, Any]:
    """One ``providers[]`` row of the backend answer (any value may be deliberately wrong)."""
    entry: dict[str, Any] = {
        "providerId": providerId,
        "type": type,
        "isEnabled": enabled,
        "priority": priority,
        "config": {} if config is None else config,
    }
    if secrets is not None:
        entry["secrets"] = secrets
    entry.update(extra)
    return entry


def org_payload(
    org_id: str, version: str, providers: list[Any], agent: Any = None
) -> dict[str, Any]:
    """A whole 200 body for one org."""
    body: dict[str, Any] = {"organizationId": org_id, "version": version, "providers": providers}
    if agent is not None:
        body["agent"] = agent
    return body


@dataclass
class Behavior:
    """How the server answers one org (all fields combine; defaults = a healthy backend)."""

    delay: float = 0.0
    """Seconds to wait before sending the status line and headers."""
    trickle: float | None = None
    """Send headers at once, then the body one byte every ``trickle`` seconds."""
    status: int | None = None
    """Answer this status (500, 401, 404 …) with a small JSON error body instead."""
    raw_body: bytes | None = None
    """Send these bytes as the 200 body instead of the org's JSON payload."""
    chunked: bool = False
    """Send the body with chunked encoding (no Content-Length)."""
    etag: bool = True
    """Send ``ETag: <version>`` (and honour ``If-None-Match``)."""


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    query: str
    organization_id: str | None
    authorization: str | None
    if_none_match: str | None
    status: int
    """What the server answered (0 when the handler did not get to answer)."""
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Org:
    payload: dict[str, Any]
    version: str


class BackendServer:
    def __init__(self, *, expected_key: str | None = None) -> None:
        self.expected_key = expected_key
        self.orgs: dict[str, _Org] = {}
        self.default = Behavior()
        """Behaviour of orgs without their own (``behave(None, ...)`` changes it)."""
        self.behaviors: dict[str, Behavior] = {}
        self.requests: list[RecordedRequest] = []
        self.usage = Behavior()
        """How ``POST /api/usage/calls`` answers (status, delay, raw_body)."""
        self.usage_gate: asyncio.Event | None = None
        """When set, usage posts wait for this event before answering."""
        self.providers_gate: asyncio.Event | None = None
        """When set, provider requests are recorded, then wait for this event to answer."""
        self._recorded = asyncio.Event()
        self.usage_records: dict[str, dict[str, Any]] = {}
        """Stored usage records by ``Idempotency-Key``."""
        self.usage_posts: list[tuple[str, int]] = []
        """Every usage post: (idempotency key, status answered)."""
        self.usage_headers: list[dict[str, str]] = []
        self.usage_posting: dict[str, int] = {}
        """Posts in progress per idempotency key."""
        self.usage_overlap = 0
        """The most posts of one key the server was handling at the same time."""
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    # --- configuration --------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL (the value of ``AICO_BACKEND_URL``)."""
        return f"http://{HOST}:{self.port}"

    def set_org(self, org_id: str, payload: dict[str, Any], version: str) -> None:
        """Serve ``payload`` for ``org_id``; ``version`` is the ETag (and the body's
        ``version`` / ``organizationId`` unless the payload sets them itself)."""
        body = dict(payload)
        body.setdefault("organizationId", org_id)
        body.setdefault("version", version)
        self.orgs[org_id] = _Org(body, version)

    def remove_org(self, org_id: str) -> None:
        self.orgs.pop(org_id, None)

    def behave(self, org_id: str | None = None, **changes: Any) -> Behavior:
        """Set behaviour fields for one org (or the default with ``None``); returns it."""
        if org_id is None:
            self.default = dataclasses.replace(self.default, **changes)
            return self.default
        base = self.behaviors.get(org_id, Behavior())
        self.behaviors[org_id] = dataclasses.replace(base, **changes)
        return self.behaviors[org_id]

    def reset(self, org_id: str | None = None) -> None:
        """Back to healthy (one org, or every org and the default)."""
        if org_id is None:
            self.default = Behavior()
            self.behaviors.clear()
        else:
            self.behaviors.pop(org_id, None)

    def requests_for(self, org_id: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.organization_id == org_id]

    async def wait_for_requests(self, count: int, timeout: float) -> None:
        """Until ``count`` provider requests have arrived (answered or not)."""

        async def enough() -> None:
            while len(self.requests) < count:
                self._recorded.clear()
                await self._recorded.wait()

        await asyncio.wait_for(enough(), timeout)

    # --- lifecycle ------------------------------------------------------------------

    async def start(self) -> BackendServer:
        """Listen (again, on the same port after a ``stop``)."""
        self._closing.clear()
        app = web.Application()
        app.router.add_get(PROVIDERS_PATH, self._handle)
        app.router.add_post(USAGE_PATH, self._handle_usage)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Stop listening (later connections are refused) and end pending handlers."""
        self._closing.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> BackendServer:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- the handler ----------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when the server stops."""
        if seconds <= 0:
            return
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    def _record(self, request: web.Request, status: int) -> None:
        self.requests.append(
            RecordedRequest(
                path=request.path,
                query=request.query_string,
                organization_id=request.headers.get("X-Organization-Id"),
                authorization=request.headers.get("Authorization"),
                if_none_match=request.headers.get("If-None-Match"),
                status=status,
            )
        )
        self._recorded.set()

    async def _handle_usage(self, request: web.Request) -> web.StreamResponse:
        """Stores a record once per ``Idempotency-Key``; a repeat answers 409, like a
        backend that already has it. With ``usage.trickle`` the record is stored, then the
        answer trickles out a byte at a time."""
        key = request.headers.get("Idempotency-Key", "")
        self.usage_headers.append(dict(request.headers))
        self.usage_posting[key] = self.usage_posting.get(key, 0) + 1
        self.usage_overlap = max(self.usage_overlap, self.usage_posting[key])
        try:
            return await self._answer_usage(request, key)
        finally:
            self.usage_posting[key] -= 1

    async def _answer_usage(self, request: web.Request, key: str) -> web.StreamResponse:
        if self.usage_gate is not None:
            await self.usage_gate.wait()
        await self._sleep(self.usage.delay)
        status = 201
        if self.expected_key is not None and (
            request.headers.get("Authorization") != f"Bearer {self.expected_key}"
        ):
            status = 401
        elif self.usage.status is not None:
            status = self.usage.status
        elif key in self.usage_records:
            status = 409
        if status == 201:
            self.usage_records[key] = await request.json()
        self.usage_posts.append((key, status))
        if self.usage.trickle is not None:
            body = json.dumps({"status": status, "padding": "x" * 200}).encode()
            resp = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
            resp.content_length = len(body)
            await resp.prepare(request)
            try:
                for i in range(len(body)):
                    if self._closing.is_set():
                        break
                    await resp.write(body[i : i + 1])
                    await self._sleep(self.usage.trickle)
                await resp.write_eof()
            except (ConnectionError, RuntimeError):
                pass  # the client gave up
            return resp
        if self.usage.raw_body is not None:
            return web.Response(status=status, body=self.usage.raw_body)
        return web.json_response({"status": status}, status=status)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        org_id = request.headers.get("X-Organization-Id")
        behavior = self.behaviors.get(org_id or "", self.default)
        org = self.orgs.get(org_id or "")

        status = 200
        if self.expected_key is not None and (
            request.headers.get("Authorization") != f"Bearer {self.expected_key}"
        ):
            status = 401
        elif behavior.status is not None:
            status = behavior.status
        elif org is None and behavior.raw_body is None:
            status = 404
        elif (
            org is not None
            and behavior.etag
            and behavior.raw_body is None
            and request.headers.get("If-None-Match") == org.version
        ):
            status = 304
        self._record(request, status)

        if self.providers_gate is not None:
            await self.providers_gate.wait()
        await self._sleep(behavior.delay)
        if self._closing.is_set():
            return web.Response(status=503)

        headers: dict[str, str] = {}
        if org is not None and behavior.etag:
            headers["ETag"] = org.version
        if status == 304:
            return web.Response(status=304, headers=headers)
        if status != 200:
            error = {"error": f"HTTP {status}"}
            return web.json_response(error, status=status)

        if behavior.raw_body is not None:
            body = behavior.raw_body
        else:
            assert org is not None
            body = json.dumps(org.payload).encode()
        headers["Content-Type"] = "application/json"

        if behavior.trickle is None and not behavior.chunked:
            return web.Response(body=body, headers=headers)

        resp = web.StreamResponse(status=200, headers=headers)
        if behavior.chunked:
            resp.enable_chunked_encoding()
        else:
            resp.content_length = len(body)
        await resp.prepare(request)
        try:
            if behavior.trickle is None:
                for i in range(0, len(body), 64 * 1024):
                    await resp.write(body[i : i + 64 * 1024])
            else:
                for i in range(len(body)):
                    if self._closing.is_set():
                        break
                    await resp.write(body[i : i + 1])
                    await self._sleep(behavior.trickle)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client gave up: that is the point of a slow body
        return resp
