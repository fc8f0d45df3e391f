"""Tenant isolation (SPEC §10): concurrent jobs of different orgs never see each other's
config or keys, and each org costs exactly one backend request."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from providers.types import ConfigSource, OrgProviders, ProviderKind
from tests.standins.backend import BackendServer, org_payload, provider_entry

T = TypeVar("T")

KEY = "internal-key-isolation-42"
ORGS = [f"tenant-{i}" for i in range(5)]
STT = ["deepgram", "openai", "vosk", "whisper", "deepgram"]
LLM = ["openai", "groq", "anthropic", "gemini", "offline"]
TTS = ["elevenlabs", "cartesia", "openai", "piper", "cartesia"]


def key_of(org: str, kind: str) -> str:
    return f"sk-{org}-{kind}-{abs(hash((org, kind))) % 10**8:08d}"


def expected_chains(i: int) -> dict[str, list[str]]:
    return {
        "stt": [STT[i], "vosk" if STT[i] != "vosk" else "whisper"],
        "llm": [LLM[i]],
        "tts": [TTS[i]],
    }


def payload(i: int) -> dict[str, Any]:
    org = ORGS[i]
    chains = expected_chains(i)
    providers = [
        provider_entry(
            chains["stt"][0],
            "stt",
            priority=100,
            config={"model": f"model-{org}"},
            secrets={"apiKey": key_of(org, "stt")},
        ),
        provider_entry(chains["stt"][1], "stt", priority=10, config={"language": org}),
        provider_entry(LLM[i], "llm", priority=5, secrets={"apiKey": key_of(org, "llm")}),
        provider_entry(TTS[i], "tts", priority=7, secrets={"apiKey": key_of(org, "tts")}),
    ]
    agent = {"greeting": f"Hello from {org}", "faq": [{"question": "who", "answer": org}]}
    return org_payload(org, f"v{i}", providers, agent=agent)


async def within(aw: Awaitable[T], seconds: float = 10.0) -> T:
    return await asyncio.wait_for(aw, seconds)


@pytest.fixture
async def backend() -> AsyncIterator[BackendServer]:
    async with BackendServer(expected_key=KEY) as server:
        for i, org in enumerate(ORGS):
            server.set_org(org, payload(i), version=f"v{i}")
            server.behave(org, delay=0.05 * (i + 1))  # answers overlap and arrive out of order
        yield server


@pytest.fixture
async def loader(backend: BackendServer) -> AsyncIterator[ProviderLoader]:
    settings = LoaderSettings(
        backend_url=backend.url,
        internal_api_key=SecretStr(KEY),
        env_fallback=False,
        cache_ttl=300,
        timeout=5.0,
    )
    loader = ProviderLoader(settings, environ={})
    yield loader
    await within(loader.aclose())


def assert_own(config: OrgProviders, org: str) -> None:
    i = ORGS.index(org)
    assert config.organization_id == org
    assert config.version == f"v{i}"
    assert config.summary() == expected_chains(i)
    assert config.stt[0].secret("apiKey") == key_of(org, "stt")
    assert config.stt[0].options["model"] == f"model-{org}"
    assert config.stt[1].options["language"] == org
    assert config.llm[0].secret("apiKey") == key_of(org, "llm")
    assert config.tts[0].secret("apiKey") == key_of(org, "tts")
    assert config.agent.greeting == f"Hello from {org}"
    # nothing of any other tenant anywhere in the config, keys included
    revealed = repr(config.model_dump()) + "".join(
        f"{c.options}{[c.secret(n) for n in c.secrets]}"
        for k in ProviderKind
        for c in config.chain(k)
    )
    for other in ORGS:
        if other != org:
            assert other not in revealed, f"{org} sees {other}'s config"


async def test_hundred_interleaved_loads_each_get_their_own_org(
    backend: BackendServer, loader: ProviderLoader
) -> None:
    calls = [ORGS[n % len(ORGS)] for n in range(100)]
    random.Random(7).shuffle(calls)

    results = await within(asyncio.gather(*(loader.load(org) for org in calls)))

    for org, config in zip(calls, results, strict=True):
        assert_own(config, org)
        assert config.source is ConfigSource.BACKEND
    for org in ORGS:
        requests = backend.requests_for(org)
        assert len(requests) == 1, f"{org}: {len(requests)} backend requests"
        assert requests[0].authorization == f"Bearer {KEY}"
    assert len(backend.requests) == len(ORGS)
    assert loader.backend_requests == len(ORGS)

    # and from the cache, still each its own
    again = await within(asyncio.gather(*(loader.load(org) for org in reversed(calls))))
    for org, config in zip(reversed(calls), again, strict=True):
        assert_own(config, org)
        assert config.source is ConfigSource.CACHE
    assert len(backend.requests) == len(ORGS)


async def test_jobs_on_their_own_event_loops_share_the_process_wide_cache(
    backend: BackendServer, loader: ProviderLoader
) -> None:
    """livekit runs each job on its own loop in a thread: the single flight still holds."""

    def job_thread(org: str) -> list[OrgProviders]:
        async def jobs() -> list[OrgProviders]:
            return list(await asyncio.gather(*(loader.load(org) for _ in range(10))))

        return asyncio.run(jobs())

    threads = [asyncio.to_thread(job_thread, ORGS[n % len(ORGS)]) for n in range(10)]
    results = await within(asyncio.gather(*threads))

    for n, configs in enumerate(results):
        for config in configs:
            assert_own(config, ORGS[n % len(ORGS)])
    for org in ORGS:
        assert len(backend.requests_for(org)) == 1, org


async def test_one_tenant_failing_does_not_leak_into_others(
    backend: BackendServer, loader: ProviderLoader
) -> None:
    backend.behave(ORGS[2], status=500)
    backend.set_org(ORGS[3], payload(4), version="v3")  # the backend mixes up an answer

    calls = [ORGS[n % len(ORGS)] for n in range(50)]
    results = await within(
        asyncio.gather(*(loader.load(org) for org in calls), return_exceptions=True)
    )

    for org, result in zip(calls, results, strict=True):
        if org in (ORGS[2], ORGS[3]):
            assert isinstance(result, Exception), f"{org} got a config: {result!r}"
            assert f"org '{org}'" in str(result)
        else:
            assert isinstance(result, OrgProviders), result
            assert_own(result, org)
