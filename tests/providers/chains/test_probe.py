"""``providers --check``'s probe sends a key, so it trusts nothing else: no redirect is
followed (the key's header would go to whatever origin a 3xx names), a 200 counts only
with the provider's own answer in it, and a probe has one total deadline."""

from __future__ import annotations

import asyncio

import httpx

from providers.catalogue import provider_config
from providers.chains.probe import ProbeResult, probe, probe_all
from providers.types import OrgProviders, ProviderKind
from tests.standins import Fault, OpenAIStandin

KEY = "sk-probe-CANARY-31415926"
TIMEOUT = 20


def _org(base_url: str) -> OrgProviders:
    config = provider_config(
        provider="openai-compatible",
        kind=ProviderKind.LLM,
        options={"baseUrl": base_url, "model": "m"},
        secrets={"apiKey": KEY},
    )
    return OrgProviders(organization_id=None, llm=(config,))


async def _probe(base_url: str, *, deadline: float = 5.0) -> ProbeResult:
    org = _org(base_url)
    config = org.llm[0]
    async with httpx.AsyncClient() as client:
        return await asyncio.wait_for(probe(config, org, client, deadline=deadline), TIMEOUT)


async def test_a_redirect_to_another_origin_is_the_result_and_not_followed() -> None:
    async with OpenAIStandin() as proxy, OpenAIStandin() as elsewhere:
        proxy.fault = Fault.REDIRECT
        proxy.redirect_to = f"http://localhost:{elsewhere.port}/v1/models?from=redirect"
        [result] = await asyncio.wait_for(probe_all(_org(proxy.base_url)), TIMEOUT)
        assert elsewhere.requests == []  # the key went nowhere else
    assert not result.ok
    assert result.detail.startswith("redirected (HTTP 302) to http://localhost")
    assert "from=redirect" not in result.detail


async def test_a_200_without_the_providers_answer_is_no_key_accepted() -> None:
    async with OpenAIStandin(fault=Fault.GARBAGE) as portal:
        result = await _probe(portal.base_url)
    assert not result.ok and "without the provider's answer" in result.detail
    async with OpenAIStandin() as real:
        assert (await _probe(real.base_url)).detail == "key accepted"


async def test_a_probe_has_a_total_deadline() -> None:
    async with OpenAIStandin(fault=Fault.HANG) as hung:
        result = await _probe(hung.base_url, deadline=0.5)
    assert not result.ok and result.detail == "no answer within 0.5 s"
    assert result.seconds < 2


async def test_a_rejection_that_echoes_the_key_says_so_without_it() -> None:
    async with OpenAIStandin(fault=Fault.ECHO_401) as echo:
        result = await _probe(echo.base_url)
        assert echo.requests[0].api_key == KEY
    assert result.detail == "key rejected (HTTP 401)" and KEY not in repr(result)
