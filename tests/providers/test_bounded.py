"""What a worker keeps per org id or key is bounded (``providers.bounded.Lru``): the
loader's cache and remembered failures, and the breaker registry."""

from __future__ import annotations

from livekit.agents import APIStatusError
from pydantic import SecretStr

from providers.bounded import Lru
from providers.catalogue import provider_config
from providers.chains.health import HealthKeys, HealthRegistry
from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from providers.types import ProviderKind
from tests.standins.backend import BackendServer
from tests.support.loader import KEY, acme_body, within


def test_lru_forgets_the_least_recently_used() -> None:
    evicted: list[str] = []
    lru: Lru[str, int] = Lru(2, on_evict=lambda k, _: evicted.append(k))
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3)
    assert (evicted, lru.keys()) == (["b"], ["a", "c"])


def test_the_breaker_registry_keeps_at_most_its_limit() -> None:
    health = HealthRegistry(limit=8)
    for i in range(100):  # an org id (or a key) a day, for months
        config = provider_config(
            provider="openai", kind=ProviderKind.LLM, options={"base_url": f"http://h{i}/v1"}
        )
        keys = HealthKeys.of(config, f"org-{i}")
        health.register(keys)
        health.record_failure(keys, APIStatusError("bad", status_code=400))
    assert len(health.snapshot()) == 8
    assert health.is_down(keys)  # the latest is kept


async def test_the_loader_keeps_at_most_max_orgs() -> None:
    async with BackendServer(expected_key=KEY) as backend:
        orgs = [f"org-{i}" for i in range(3)]
        for org in orgs:
            body = acme_body("1")
            body["organizationId"] = org
            backend.set_org(org, body, version="1")
        settings = LoaderSettings(
            backend_url=backend.url, internal_api_key=SecretStr(KEY), max_orgs=2
        )
        loader = ProviderLoader(settings, environ={})
        try:
            for org in orgs:
                await within(loader.load(org))
            assert loader.backend_requests == 3
            await within(loader.load("org-2"))  # still cached
            await within(loader.load("org-1"))
            assert loader.backend_requests == 3
            await within(loader.load("org-0"))  # forgotten: asked again
            assert loader.backend_requests == 4
        finally:
            await within(loader.aclose())
