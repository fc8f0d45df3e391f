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

from .errors import ProviderError
from .factory import build_provider
from .registry import HttpCheck, get_spec
from .types import OrgProviders, ProviderConfig

CHECK_TIMEOUT = 3.0


@dataclass(frozen=True)
class ProbeResult:
    config: ProviderConfig
    ok: bool
    detail: str
    seconds: float


async def probe(
    config: ProviderConfig, org: OrgProviders, client: httpx.AsyncClient
) -> ProbeResult:
    started = time.perf_counter()

    def done(ok: bool, detail: str) -> ProbeResult:
        return ProbeResult(config, ok, detail, time.perf_counter() - started)

    try:
        build_provider(config, org)  # validates options and keys, imports the plugin
    except ProviderError as e:
        return done(False, str(e))
    spec = get_spec(config.provider, config.kind)
    assert spec is not None  # build_provider would have failed
    options: Any = spec.options.model_validate(dict(config.options))  # valid: it built
    host = getattr(options, "host", None)
    if spec.local and host:
        return done(*await _tcp(host, int(options.port)))
    if isinstance(spec.check, HttpCheck):
        return done(*await _http(spec.check, options, config, client))
    return done(True, "ready" if spec.local else "built (no cheap check for this provider)")


async def _tcp(host: str, port: int) -> tuple[bool, str]:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CHECK_TIMEOUT)
    except (OSError, asyncio.TimeoutError) as e:
        return False, f"server {host}:{port} unreachable ({type(e).__name__})"
    writer.close()
    return True, f"server {host}:{port} accepts connections"


async def _http(
    check: HttpCheck, options: object, config: ProviderConfig, client: httpx.AsyncClient
) -> tuple[bool, str]:
    url = check.url(options)
    headers = {}
    if key := config.secret("apiKey"):
        headers[check.header] = check.scheme + key
    try:
        resp = await client.get(url, headers=headers, timeout=CHECK_TIMEOUT)
    except httpx.HTTPError as e:
        return False, f"unreachable ({type(e).__name__})"
    if resp.status_code in (401, 403):
        return False, f"key rejected (HTTP {resp.status_code})"
    if resp.status_code == 402 or resp.status_code == 429:
        return False, f"quota or billing problem (HTTP {resp.status_code})"
    if resp.status_code >= 400:
        return False, f"HTTP {resp.status_code}"
    return True, "key accepted"


async def probe_all(org: OrgProviders) -> list[ProbeResult]:
    async with httpx.AsyncClient(follow_redirects=True) as client:
        configs = [c for kind_chain in (org.stt, org.llm, org.tts) for c in kind_chain]
        return list(await asyncio.gather(*(probe(c, org, client) for c in configs)))
