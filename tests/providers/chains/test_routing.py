"""Routing strategies and prices: ``local-only`` never builds a cloud plugin, ``cost``
orders as priced (an org's own price included), a spent budget forces ``cost``."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from livekit.agents.testing import fake_job_context
from prometheus_client import REGISTRY

import providers.chains.build as factory
from agent.tools.providers_cmd import report
from agent.worker.call import prepare_call
from agent.worker.prewarm import shared_vad
from providers.catalogue import provider_config
from providers.catalogue.pricing import PriceOverrides, Unit, cost, lookup, tokens
from providers.chains import routing as strategy
from providers.chains.health import HealthRegistry
from providers.config.backend import parse_response
from providers.config.loader import ProviderLoader
from providers.config.settings import LoaderSettings
from providers.errors import ConfigError
from providers.types import OrgProviders, ProviderConfig, ProviderKind, Strategy
from tests.standins.backend import BackendServer, org_payload, provider_entry

STT, LLM, TTS = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
TIMEOUT = 30


def cfg(name: str, kind: ProviderKind, priority: int = 0, **options: Any) -> ProviderConfig:
    secrets: dict[str, Any] = {}
    if name not in ("whisper", "vosk", "piper", "offline", "openai-compatible"):
        secrets = {"apiKey": f"sk-{name}-test"}
    return provider_config(
        provider=name, kind=kind, priority=priority, options=options, secrets=secrets
    )


def org(*configs: ProviderConfig, **fields: Any) -> OrgProviders:
    chains = {k.value: tuple(c for c in configs if c.kind is k) for k in ProviderKind}
    return OrgProviders(organization_id="acme", **chains, **fields)


def test_local_only_never_builds_a_cloud_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []
    real_build = factory.build_provider

    def spy(config: ProviderConfig, o: OrgProviders) -> Any:
        built.append(f"{config.kind}/{config.provider}")
        return real_build(config, o)

    monkeypatch.setattr(factory, "build_provider", spy)
    acme = org(
        cfg("deepgram", STT, 100),
        cfg("whisper", STT, 10),
        cfg("openai", LLM, 100),
        cfg("openai-compatible", LLM, 50, base_url="http://127.0.0.1:11434/v1", model="llama3.1"),
        cfg("elevenlabs", TTS, 100),
        cfg("piper", TTS, 50, host="tts.example.com", port=5000),  # remote: leaves the machine
        cfg("piper", TTS, 10),
    )
    arranged, dropped = strategy.apply_strategy(acme, Strategy.LOCAL_ONLY)
    chains = factory.build_chains(arranged, vad=shared_vad(), health=HealthRegistry())

    assert chains.providers == {
        STT: ["whisper"],
        LLM: ["openai-compatible", "offline"],  # a server on loopback is local
        TTS: ["piper"],
    }
    assert built == ["stt/whisper", "llm/openai-compatible", "llm/offline", "tts/piper"]
    reasons = {f"{d.config.kind}/{d.config.provider}": d.reason for d in dropped}
    assert set(reasons) == {"stt/deepgram", "llm/openai", "tts/elevenlabs", "tts/piper"}
    assert "tts.example.com" in reasons["tts/piper"]


def test_local_only_with_no_local_stt_says_what_to_add() -> None:
    with pytest.raises(ConfigError, match=r"acme.*local-only.*no stt provider.*vosk, whisper"):
        strategy.apply_strategy(org(cfg("deepgram", STT), cfg("piper", TTS)), Strategy.LOCAL_ONLY)


def test_cost_orders_as_priced_and_an_orgs_own_price_counts() -> None:
    acme = org(
        cfg("openai", LLM, 100, model="gpt-4.1"),  # $2 / $8 per million
        cfg("groq", LLM, 50),  # $0.59 / $0.79
        cfg("gemini", LLM, 10, model="gemini-2.0-flash"),  # $0.10 / $0.40
        cfg("elevenlabs", TTS, 100),
        cfg("cartesia", TTS, 50),
        cfg("piper", TTS, 1),
    )
    arranged, dropped = strategy.apply_strategy(acme, Strategy.COST, PriceOverrides({}))
    assert not dropped
    assert [c.provider for c in arranged.llm] == ["gemini", "groq", "openai"]
    assert [c.provider for c in arranged.tts] == ["piper", "cartesia", "elevenlabs"]

    contract = acme.model_copy(
        update={
            "llm": (
                acme.llm[0].model_copy(update={"pricing": tokens(0.01, 0.01, 0.01)}),
                *acme.llm[1:],
            )
        }
    )
    arranged, _ = strategy.apply_strategy(contract, Strategy.COST, PriceOverrides({}))
    assert [c.provider for c in arranged.llm] == ["openai", "gemini", "groq"]


def test_priority_keeps_the_configured_order() -> None:
    acme = org(cfg("openai", LLM, 100, model="gpt-4.1"), cfg("gemini", LLM, 10))
    arranged, dropped = strategy.apply_strategy(acme, Strategy.PRIORITY)
    assert arranged == acme and dropped == []


def test_prices_match_models_by_prefix_and_bill_cached_tokens_at_their_price() -> None:
    table = {
        "*": tokens(1, 1, 1),
        "gpt-4o": tokens(2.5, 1.25, 10),
        "gpt-4o-mini": tokens(0.15, 0.075, 0.6),
    }
    assert lookup(table, "gpt-4o-mini-2024-07-18") == table["gpt-4o-mini"]
    assert lookup(table, "gpt-4o-2024-08-06") == table["gpt-4o"]
    assert lookup(table, "other") == table["*"]
    units = {Unit.INPUT_TOKENS: 1000.0, Unit.CACHED_INPUT_TOKENS: 400.0, Unit.OUTPUT_TOKENS: 10.0}
    assert cost(table["gpt-4o"], units) == pytest.approx((600 * 2.5 + 400 * 1.25 + 10 * 10) / 1e6)


def test_pricing_json_errors_name_the_entry_and_unit() -> None:
    with pytest.raises(ConfigError, match="not valid JSON"):
        PriceOverrides.from_env({"PRICING_JSON": "{"})
    with pytest.raises(ConfigError, match=r"stt/deepgram.*unknown pricing unit 'seconds'"):
        PriceOverrides.from_env({"PRICING_JSON": json.dumps({"stt/deepgram": {"seconds": 1}})})
    with pytest.raises(ConfigError, match=r"PROVIDER_STRATEGY='cheap'.*local-only"):
        strategy.env_strategy({"PROVIDER_STRATEGY": "cheap"})


def test_backend_strategy_budget_and_pricing_are_parsed(caplog: pytest.LogCaptureFixture) -> None:
    body = org_payload(
        "acme",
        "1",
        [
            provider_entry("deepgram", "stt", config={"pricing": {"audioSeconds": 0.0001}}),
            provider_entry("piper", "tts", config={"pricing": {"audioSeconds": "free"}}),
        ],
    )
    body.update(strategy="local-only", budgetUsd=50, spentUsd=12.5)
    with caplog.at_level(logging.WARNING):
        parsed = parse_response(json.dumps(body).encode(), "acme", None)
    assert parsed.strategy is Strategy.LOCAL_ONLY
    assert (parsed.budget_usd, parsed.spent_usd) == (50.0, 12.5)
    assert parsed.stt[0].pricing == {Unit.AUDIO_SECONDS: 0.0001}
    assert "pricing" not in parsed.stt[0].options  # not passed to the plugin as an option
    assert parsed.tts[0].pricing is None  # a bad price falls back to the defaults, loudly
    assert any("pricing" in r.getMessage() for r in caplog.records)


async def test_a_spent_budget_routes_the_call_by_cost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with BackendServer() as backend:
        payload = org_payload(
            "thrifty",
            "1",
            [
                provider_entry("whisper", "stt"),
                provider_entry("elevenlabs", "tts", priority=100, secrets={"apiKey": "sk-el"}),
                provider_entry("piper", "tts", priority=1),
            ],
        )
        payload.update(budgetUsd=20, spentUsd=20.5)
        backend.set_org("thrifty", payload, version="1")
        loader = ProviderLoader(LoaderSettings(backend_url=backend.url))
        before = REGISTRY.get_sample_value(
            "voice_agent_budget_exceeded_calls_total", {"org": "thrifty"}
        )
        try:
            with (
                caplog.at_level(logging.WARNING),
                fake_job_context(job_metadata=json.dumps({"organizationId": "thrifty"})) as ctx,
            ):
                call = await asyncio.wait_for(prepare_call(ctx, loader=loader), TIMEOUT)
                await call.session.aclose()
        finally:
            await loader.aclose()
    assert call.routing == strategy.Routing(Strategy.COST, over_budget=True)
    assert call.chains.providers[TTS] == ["piper", "elevenlabs"]  # free first
    assert any(r.getMessage().startswith("monthly budget reached") for r in caplog.records)
    after = REGISTRY.get_sample_value("voice_agent_budget_exceeded_calls_total", {"org": "thrifty"})
    assert (after or 0) - (before or 0) == 1


def test_providers_report_shows_the_strategy_and_what_it_left_out() -> None:
    acme = org(cfg("deepgram", STT), cfg("whisper", STT), cfg("piper", TTS))
    routing = strategy.Routing(Strategy.LOCAL_ONLY)
    arranged, dropped = strategy.apply_strategy(acme, routing.strategy)
    data = report(arranged, None, HealthRegistry(), routing, dropped)
    assert data["strategy"] == "local-only"
    assert [e["provider"] for e in data["stt"]] == ["whisper"]
    assert data["dropped"] == [
        {
            "kind": "stt",
            "provider": "deepgram",
            "reason": "local-only: sends audio or text to its cloud API",
        }
    ]
