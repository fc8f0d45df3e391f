"""No org can switch a provider off for the others (``providers.chains.blame``), through
each kind's real chain and the real plugins against provider stand-ins on 127.0.0.1.

Org A's config makes the primary fail (400 for its request, or its own budget shorter than
the worker's runs out): A's next call skips the primary at once, org B's next call still
uses it. A failure that says the service is down (500, a hang at the worker's budget)
makes B skip it too. Time bounds: ``tests.support.failover``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit import rtc

from agent.worker.prewarm import shared_vad
from providers.chains.build import build_chains
from providers.chains.health import BreakerState, HealthKeys, HealthRegistry
from providers.types import OrgProviders, ProviderConfig
from tests.standins.cartesia import CartesiaStandin
from tests.standins.deepgram import DeepgramStandin
from tests.standins.elevenlabs import ElevenLabsStandin
from tests.standins.faults import Fault
from tests.standins.openai import OpenAIStandin
from tests.standins.piper_server import hung_server
from tests.support.audio import speech_frames
from tests.support.failover import (
    BUDGET,
    FAILOVER,
    KEY_A,
    KEY_B,
    LIMIT,
    LLM_,
    STT_,
    TEXT,
    TTS_,
    answer,
    cfg,
    first_final,
    org_of,
    synthesize,
)

SHORT = BUDGET / 4
"""An org's own ``firstResultTimeout``, shorter than the worker's budget (``BUDGET``)."""


def org(name: str, *configs: ProviderConfig) -> OrgProviders:
    """The same providers, endpoints and key for every org (as on the worker's env config):
    only the org tells their calls apart."""
    return org_of(*configs).model_copy(update={"organization_id": name})


def states(health: HealthRegistry) -> dict[str, BreakerState]:
    return {b.key: b.state for b in health.snapshot()}


def assert_only_the_org_config_is_open(
    health: HealthRegistry, config: ProviderConfig, org_id: str
) -> None:
    keys = HealthKeys.of(config, org_id)
    now = states(health)
    assert now.get(keys.config or "") is BreakerState.OPEN, now
    assert now.get(keys.endpoint) is BreakerState.CLOSED, now
    assert now.get(keys.credential or "", BreakerState.CLOSED) is BreakerState.CLOSED, now


# --- LLM ----------------------------------------------------------------------------------


async def llm_call(health: HealthRegistry, org_: OrgProviders) -> str:
    chains = build_chains(org_, vad=None, health=health, failover=FAILOVER)
    try:
        _, text = await asyncio.wait_for(answer(chains.llm, "Hello?"), LIMIT)
    finally:
        await chains.aclose()
    return text


@pytest.mark.parametrize("fault", [Fault.STATUS_400, Fault.HANG], ids=lambda f: f.name)
async def test_llm_an_org_config_failure_is_that_org_s_alone(fault: Fault) -> None:
    """400: org A's request is invalid (say its temperature); HANG: A's own first-token
    budget (``SHORT``) is shorter than the worker's."""
    health = HealthRegistry()
    own = {"first_result_timeout": SHORT} if fault is Fault.HANG else {}
    async with (
        OpenAIStandin(reply="Primary answers.", fault=fault) as primary,
        OpenAIStandin(reply="Backup answers.") as backup,
    ):
        a = cfg("openai", LLM_, 10, KEY_A, base_url=primary.base_url, **own)
        b = cfg("groq", LLM_, 5, KEY_B, base_url=backup.base_url)
        assert await llm_call(health, org("acme", a, b)) == "Backup answers."
        assert len(primary.chat_requests) == 1

        await primary.set_fault(Fault.OK)
        # another org, same endpoint, same key: the primary still serves it
        plain = cfg("openai", LLM_, 10, KEY_A, base_url=primary.base_url)
        assert await llm_call(health, org("globex", plain, b)) == "Primary answers."
        assert len(primary.chat_requests) == 2
        # the org whose config failed skips the primary at once, without asking it
        assert await llm_call(health, org("acme", a, b)) == "Backup answers."
        assert len(primary.chat_requests) == 2
    assert_only_the_org_config_is_open(health, a, "acme")


@pytest.mark.parametrize("fault", [Fault.STATUS_500, Fault.HANG], ids=lambda f: f.name)
async def test_llm_a_service_failure_is_everyone_s(fault: Fault) -> None:
    """500, or a hang at the worker's own budget: the service is down for every org."""
    health = HealthRegistry()
    async with (
        OpenAIStandin(reply="Primary answers.", fault=fault) as primary,
        OpenAIStandin(reply="Backup answers.") as backup,
    ):
        a = cfg("openai", LLM_, 10, KEY_A, base_url=primary.base_url)
        b = cfg("groq", LLM_, 5, KEY_B, base_url=backup.base_url)
        assert await llm_call(health, org("acme", a, b)) == "Backup answers."
        await primary.set_fault(Fault.OK)
        assert await llm_call(health, org("globex", a, b)) == "Backup answers."
        assert len(primary.chat_requests) == 1
        assert states(health)[HealthKeys.of(a).endpoint] is BreakerState.OPEN


# --- TTS ----------------------------------------------------------------------------------


async def tts_call(health: HealthRegistry, org_: OrgProviders) -> None:
    chains = build_chains(org_, vad=None, health=health, failover=FAILOVER)
    try:
        _, seconds = await asyncio.wait_for(synthesize(chains.tts, TEXT), LIMIT)
    finally:
        await chains.aclose()
    assert seconds > 1.0  # the caller heard the sentence


@pytest.mark.parametrize("fault", [Fault.STATUS_400, Fault.HANG], ids=lambda f: f.name)
async def test_tts_an_org_config_failure_is_that_org_s_alone(fault: Fault, http: None) -> None:
    """400: org A's voice or model is invalid; HANG: A's own first-audio budget is short."""
    health = HealthRegistry()
    own = {"first_result_timeout": SHORT} if fault is Fault.HANG else {}
    async with ElevenLabsStandin(fault=fault) as primary, CartesiaStandin() as backup:
        a = cfg("elevenlabs", TTS_, 10, KEY_A, base_url=primary.base_url, voice_id="v", **own)
        b = cfg("cartesia", TTS_, 1, KEY_B, base_url=backup.base_url)
        await tts_call(health, org("acme", a, b))
        assert (primary.request_count, len(backup.texts)) == (1, 1)

        await primary.set_fault(Fault.OK)
        plain = cfg("elevenlabs", TTS_, 10, KEY_A, base_url=primary.base_url, voice_id="v")
        await tts_call(health, org("globex", plain, b))
        assert (primary.request_count, len(backup.texts)) == (2, 1)  # the primary spoke
        await tts_call(health, org("acme", a, b))
        assert (primary.request_count, len(backup.texts)) == (2, 2)  # skipped for acme
    assert_only_the_org_config_is_open(health, a, "acme")


async def test_tts_a_5xx_is_everyone_s(http: None) -> None:
    health = HealthRegistry()
    async with (
        ElevenLabsStandin(fault=Fault.STATUS_500) as primary,
        CartesiaStandin() as backup,
    ):
        a = cfg("elevenlabs", TTS_, 10, KEY_A, base_url=primary.base_url, voice_id="v")
        b = cfg("cartesia", TTS_, 1, KEY_B, base_url=backup.base_url)
        await tts_call(health, org("acme", a, b))
        await primary.set_fault(Fault.OK)
        await tts_call(health, org("globex", a, b))
        assert (primary.request_count, len(backup.texts)) == (1, 2)


# --- STT ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech() -> list[rtc.AudioFrame]:
    return speech_frames(["What are your opening hours?"], pause_s=1.0)


async def stt_call(health: HealthRegistry, org_: OrgProviders, speech: Any) -> str:
    chains = build_chains(org_, vad=shared_vad(), health=health, failover=FAILOVER)
    try:
        _, text = await asyncio.wait_for(first_final(chains.stt, speech), LIMIT)
    finally:
        await chains.aclose()
    return text


async def test_stt_an_org_config_failure_is_that_org_s_alone(
    http: None, speech: list[rtc.AudioFrame]
) -> None:
    """400 on the websocket upgrade: org A's model or language is invalid."""
    health = HealthRegistry()
    async with (
        DeepgramStandin(fault=Fault.STATUS_400, transcript="primary", final_after=0.6) as primary,
        DeepgramStandin(transcript="backup", final_after=0.6) as backup,
    ):
        a = cfg("deepgram", STT_, 10, KEY_A, base_url=primary.base_url)
        b = cfg("deepgram", STT_, 5, KEY_B, base_url=backup.base_url)
        assert await stt_call(health, org("acme", a, b), speech) == "backup"
        asked = len(primary.requests_to("/listen"))

        await primary.set_fault(Fault.OK)
        assert await stt_call(health, org("globex", a, b), speech) == "primary"
        assert len(primary.requests_to("/listen")) == asked + 1
        assert await stt_call(health, org("acme", a, b), speech) == "backup"
        assert len(primary.requests_to("/listen")) == asked + 1
    assert_only_the_org_config_is_open(health, a, "acme")


async def test_stt_a_5xx_is_everyone_s(http: None, speech: list[rtc.AudioFrame]) -> None:
    health = HealthRegistry()
    async with (
        DeepgramStandin(fault=Fault.STATUS_500, transcript="primary", final_after=0.6) as primary,
        DeepgramStandin(transcript="backup", final_after=0.6) as backup,
    ):
        a = cfg("deepgram", STT_, 10, KEY_A, base_url=primary.base_url)
        b = cfg("deepgram", STT_, 5, KEY_B, base_url=backup.base_url)
        assert await stt_call(health, org("acme", a, b), speech) == "backup"
        await primary.set_fault(Fault.OK)
        assert await stt_call(health, org("globex", a, b), speech) == "backup"


async def test_tts_a_provider_timeout_the_org_set_short_is_that_org_s_alone(http: None) -> None:
    """Piper's own ``timeout`` option, set below its default by org A, runs out against a
    shared Piper server that hangs: A's config breaker opens, the server's does not."""
    health = HealthRegistry()
    async with hung_server() as port, CartesiaStandin() as backup:
        piper = {"host": "127.0.0.1", "port": port}
        a = cfg("piper", TTS_, 10, None, timeout=SHORT, **piper)
        b = cfg("cartesia", TTS_, 1, KEY_B, base_url=backup.base_url)
        await tts_call(health, org("acme", a, b))
        assert len(backup.texts) == 1
        assert_only_the_org_config_is_open(health, a, "acme")
        plain = cfg("piper", TTS_, 10, None, **piper)
        globex = build_chains(org("globex", plain, b), vad=None, health=health, failover=FAILOVER)
        acme = build_chains(org("acme", a, b), vad=None, health=health, failover=FAILOVER)
        assert globex.providers[TTS_] == ["piper", "cartesia"]  # globex still starts on it
        assert acme.providers[TTS_] == ["cartesia", "piper"]  # acme skips it
        await globex.aclose()
        await acme.aclose()
