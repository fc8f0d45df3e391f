"""``providers --check``: is each configured provider usable right now?

Each check is the cheapest thing that proves it: the provider can be built (options, keys,
plugin, local model), a remote local server accepts a TCP connection, and a cloud key is
accepted by one authenticated GET of the provider's API (listing models or projects —
nothing billed).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from livekit.agents import APIConnectionError, APIError, APIStatusError

from providers.catalogue import HttpCheck, build_provider, get_spec
from providers.chains.health import HealthKeys, HealthRegistry
from providers.errors import ProviderError
from providers.types import OrgProviders, ProviderConfig

CHECK_TIMEOUT = 3.0


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
    config: ProviderConfig, org: OrgProviders, client: httpx.AsyncClient
) -> ProbeResult:
    started = time.perf_counter()

    def done(ok: bool, detail: str, error: APIError | None = None) -> ProbeResult:
        return ProbeResult(config, ok, detail, time.perf_counter() - started, error)

    try:
        build_provider(config, org)  # validates options and keys, imports the plugin
    except ProviderError as e:
        return done(False, str(e))
    spec = get_spec(config.provider, config.kind)
    assert spec is not None  # build_provider would have failed
    options: Any = config.settings
    host = getattr(options, "host", None)
    if spec.local and host:
        return done(*await _tcp(host, int(options.port)))
    if isinstance(spec.check, HttpCheck):
        return done(*await _http(spec.check, options, config, client))
    return done(True, "ready" if spec.local else "built (no cheap check for this provider)")


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
        resp = await client.get(url, headers=headers, timeout=CHECK_TIMEOUT)
    except httpx.HTTPError as e:
        return False, f"unreachable ({type(e).__name__})", _down()
    code = resp.status_code
    if code < 400:
        return True, "key accepted", None
    error = APIStatusError("check failed", status_code=code)
    if code in (401, 403):
        return False, f"key rejected (HTTP {code})", error
    if code in (402, 429):
        return False, f"quota or billing problem (HTTP {code})", error
    return False, f"HTTP {code}", error


def _down() -> APIError:
    return APIConnectionError("unreachable")


async def probe_all(org: OrgProviders, health: HealthRegistry | None = None) -> list[ProbeResult]:
    """Probe every provider; with ``health``, record each verdict in its breakers."""
    async with httpx.AsyncClient(follow_redirects=True) as client:
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
