"""Fixtures of the loader and wire-parser tests: a loopback backend serving acme, a fake
clock, and loaders made on it (closed after the test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from tests.standins.backend import BackendServer
from tests.support.loader import ENV, KEY, ORG, FakeClock, MakeLoader, acme_body, within


@pytest.fixture
async def backend() -> AsyncIterator[BackendServer]:
    async with BackendServer(expected_key=KEY) as server:
        server.set_org(ORG, acme_body("17"), version="17")
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_loader(clock: FakeClock) -> AsyncIterator[MakeLoader]:
    made: list[ProviderLoader] = []

    def make(
        backend_url: str | None,
        *,
        key: str | None = KEY,
        env_fallback: bool = True,
        cache_ttl: float = 60.0,
        timeout: float = 2.0,
        max_body_bytes: int = 1024 * 1024,
        retry_after: float = 5.0,
        environ: dict[str, str] | None = None,
    ) -> ProviderLoader:
        settings = LoaderSettings(
            backend_url=backend_url,
            internal_api_key=SecretStr(key) if key is not None else None,
            env_fallback=env_fallback,
            cache_ttl=cache_ttl,
            timeout=timeout,
            connect_timeout=1.0,
            max_body_bytes=max_body_bytes,
            retry_after=retry_after,
        )
        loader = ProviderLoader(
            settings, environ=dict(ENV if environ is None else environ), clock=clock
        )
        made.append(loader)
        return loader

    yield make
    for loader in made:
        await within(loader.aclose())
