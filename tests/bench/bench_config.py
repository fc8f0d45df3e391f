"""Config resolution figures: cache hit, miss (one request for all kinds), 50 concurrent
jobs of one org (single flight), and a hanging backend (stale cache within the budget).
Talks to the test backend on 127.0.0.1."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from pydantic import SecretStr

from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from tests.standins.backend import BackendServer, provider_entry

ORG = "bench-org"
PAYLOAD = {
    "organizationId": ORG,
    "version": "1",
    "providers": [
        provider_entry("deepgram", "stt", priority=100, secrets={"apiKey": "k"}),
        provider_entry("vosk", "stt", priority=10),
        provider_entry("openai", "llm", priority=100, secrets={"apiKey": "k"}),
        provider_entry("piper", "tts", priority=10),
    ],
}


async def _measure() -> list[dict[str, Any]]:
    async with BackendServer() as backend:
        backend.set_org(ORG, PAYLOAD, version="1")
        settings = LoaderSettings(
            backend_url=backend.url, internal_api_key=SecretStr("bench"), timeout=2.0
        )
        misses, hits = [], []
        loader = ProviderLoader(settings, environ={})
        await loader.load(ORG)  # start the loader's I/O thread and connection pool
        for _ in range(20):
            loader.invalidate(ORG)
            t0 = time.perf_counter()
            await loader.load(ORG)
            misses.append(time.perf_counter() - t0)
            for _ in range(50):
                t0 = time.perf_counter()
                await loader.load(ORG)
                hits.append(time.perf_counter() - t0)
        await loader.aclose()

        loader = ProviderLoader(settings, environ={})
        before = len(backend.requests)
        await asyncio.gather(*(loader.load(ORG) for _ in range(50)))
        flight_requests = len(backend.requests) - before
        await loader.aclose()

        # a hanging backend after the TTL: the stale copy must come back within the budget
        now = [0.0]
        loader = ProviderLoader(settings, environ={}, clock=lambda: now[0])
        await loader.load(ORG)
        now[0] += settings.cache_ttl + 1
        backend.behave(ORG, delay=30.0)
        t0 = time.perf_counter()
        stale = await loader.load(ORG)
        hang = time.perf_counter() - t0
        await loader.aclose()

    return [
        {
            "name": "config resolution, cache hit (median)",
            "value": statistics.median(hits),
            "unit": "s",
            "target": "< 0.001",
        },
        {
            "name": "config resolution, miss (median, loopback backend)",
            "value": statistics.median(misses),
            "unit": "s",
        },
        {
            "name": "backend requests for 50 concurrent jobs of one org",
            "value": flight_requests,
            "unit": "requests",
            "target": "1",
        },
        {
            "name": f"backend hanging: stale config ({stale.source.value}) returned after",
            "value": hang,
            "unit": "s",
            "target": "<= 2.0 budget",
        },
    ]


def run() -> list[dict[str, Any]]:
    return asyncio.run(_measure())
