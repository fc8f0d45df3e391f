"""``providers --check``: is each configured provider usable right now?

Each check is the cheapest thing that proves it: the provider can be built (options, keys,
plugin, local model), a remote local server accepts a TCP connection, and a cloud key is
accepted by one authenticated GET of the provider's API (listing models or projects —
nothing billed).

A check sends a key, so it trusts nothing else: a redirect is not followed (a 3xx would
carry the key's header to whatever origin the answer names; it is the check's result),
a 200 counts only with the provider's own answer in it (``HttpCheck.expect``), at most
``MAX_BODY`` of it is read, and each probe has one total deadline (``CHECK_DEADLINE``).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from livekit.agents import APIConnectionError, APIError, APIStatusError, APITimeoutError

from providers.catalogue import HttpCheck, build_provider, get_spec
from providers.chains.health import HealthKeys, HealthRegistry
from providers.errors import ProviderError
from providers.redaction import redact_text, safe_url
from providers.types import OrgProviders, ProviderConfig

CHECK_TIMEOUT = 3.0
"""Each network phase of a check (connect, each read)."""
CHECK_DEADLINE = 5.0
"""A whole probe, however slowly a server trickles its answer."""
MAX_BODY = 1 << 20


@dataclass(frozen=True)
class ProbeResult:
    config: ProviderConfig
    ok: bool
    detail: str
    seconds: float
    error: APIError | None = None
    """What a failed reachability or key check means to the provider's breakers (None when
    the config itself is broken: that is not a health matter)."""


async def probe(
    config: ProviderConfig,
    org: OrgProviders,
    client: httpx.AsyncClient,
    *,
    deadline: float = CHECK_DEADLINE,
) -> ProbeResult:
    started = time.perf_counter()

    def done(ok: bool, detail: str, error: APIError | None = None) -> ProbeResult:
        return ProbeResult(config, ok, redact_text(detail), time.perf_counter() - started, error)

    try:
        return done(*await asyncio.wait_for(_check(config, org, client), deadline))
    except asyncio.TimeoutError:
        return done(False, f"no answer within {deadline:g} s", APITimeoutError())


async def _check(
    config: ProviderConfig, org: OrgProviders, client: httpx.AsyncClient
) -> tuple[bool, str, APIError | None]:
    try:
        build_provider(config, org)  # validates options and keys, imports the plugin
    except ProviderError as e:
        return False, str(e), None
    spec = get_spec(config.provider, config.kind)
    assert spec is not None  # build_provider would have failed
    options: Any = config.settings
    host = getattr(options, "host", None)
    if spec.local and host:
        return await _tcp(host, int(options.port))
    if isinstance(spec.check, HttpCheck):
        return await _http(spec.check, options, config, client)
    return True, "ready" if spec.local else "built (no cheap check for this provider)", None


async def _tcp(host: str, port: int) -> tuple[bool, str, APIError | None]:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CHECK_TIMEOUT)
    except (OSError, asyncio.TimeoutError) as e:
        return False, f"server {host}:{port} unreachable ({type(e).__name__})", _down()
    writer.close()
    return True, f"server {host}:{port} accepts connections", None


async def _http(
    check: HttpCheck, options: object, config: ProviderConfig, client: httpx.AsyncClient
) -> tuple[bool, str, APIError | None]:
    url = check.url(options)
    headers = {}
    if key := config.secret("apiKey"):
        headers[check.header] = check.scheme + key
    try:
        async with client.stream("GET", url, headers=headers, timeout=CHECK_TIMEOUT) as resp:
            body = await _head(resp)
    except httpx.HTTPError as e:
        return False, f"unreachable ({type(e).__name__})", _down()
    code = resp.status_code
    if resp.is_redirect:
        target = _origin(resp.headers.get("Location", ""), url)
        return (
            False,
            f"redirected (HTTP {code}) to {target}: not followed with the key; "
            "point base_url at the provider itself",
            APIStatusError("check redirected", status_code=code),
        )
    if code < 300:
        if _answers(body, check.expect):
            return True, "key accepted", None
        return (
            False,
            f"HTTP {code} without the provider's answer (no '{check.expect}' in a JSON "
            "object): is base_url the provider's API?",
            APIError("unexpected answer to the key check"),
        )
    error = APIStatusError("check failed", status_code=code)
    if code in (401, 403):
        return False, f"key rejected (HTTP {code})", error
    if code in (402, 429):
        return False, f"quota or billing problem (HTTP {code})", error
    return False, f"HTTP {code}", error


async def _head(resp: httpx.Response) -> bytes:
    """Up to ``MAX_BODY`` of the body: a check reads a short listing, not whatever a
    misbehaving server streams."""
    body = bytearray()
    async for chunk in resp.aiter_bytes():
        body += chunk
        if len(body) >= MAX_BODY:
            break
    return bytes(body[:MAX_BODY])


def _answers(body: bytes, field: str) -> bool:
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return isinstance(data, dict) and field in data


def _origin(location: str, base: str) -> str:
    """Where a redirect points, as shown: its origin, no path, query or userinfo."""
    target = httpx.URL(base).join(location) if location else None
    return safe_url(f"{target.scheme}://{target.host}") if target else "(no Location)"


def _down() -> APIError:
    return APIConnectionError("unreachable")


async def probe_all(org: OrgProviders, health: HealthRegistry | None = None) -> list[ProbeResult]:
    """Probe every provider; with ``health``, record each verdict in its breakers."""
    async with httpx.AsyncClient(follow_redirects=False) as client:
        configs = [c for kind_chain in (org.stt, org.llm, org.tts) for c in kind_chain]
        results = list(await asyncio.gather(*(probe(c, org, client) for c in configs)))
    if health is not None:
        for r in results:
            keys = HealthKeys.of(r.config, org.organization_id)
            if r.ok:
                health.record_success(keys)
            elif r.error is not None:
                health.record_failure(keys, r.error)
    return results
