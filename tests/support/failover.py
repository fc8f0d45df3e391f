"""What the per-kind fault-injection tests share (``tests/providers/chains/*/test_failover.py``):
configs with planted keys, an org around them, the faults, checks of the switch, and what
a caller does with each kind (``tests/bench/bench_failover.py`` measures the same).

Time bounds there are generous checks that the mechanism works (a hang costs one budget,
not livekit's 10 s attempt timeout or a plugin's 30 s read timeout): ``SLOW`` is an order of
magnitude over a healthy run on a loaded machine, and still under what a regression costs.
The figures themselves come from ``make bench`` (tests/bench/bench_failover.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import llm, stt
from pydantic import SecretStr

from providers.catalogue import provider_config
from providers.chains.budgets import FailoverSettings
from providers.chains.health import BreakerState, HealthKeys, HealthRegistry
from providers.types import (
    AgentPersona,
    FaqEntry,
    OrgProviders,
    ProviderConfig,
    ProviderKind,
)
from tests.standins.faults import Fault

STT_, LLM_, TTS_ = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
BUDGET = 1.0
FAILOVER = FailoverSettings({STT_: BUDGET, LLM_: BUDGET, TTS_: BUDGET})
KEY_A, KEY_B = "sk-test-PRIMARY-key-000111", "sk-test-BACKUP-key-222333"
FAULTS = [
    Fault.REFUSE,
    Fault.STATUS_401,
    Fault.STATUS_402,
    Fault.STATUS_429,
    Fault.STATUS_500,
    Fault.HANG,
    Fault.DROP_MID_STREAM,
]
CREDENTIAL_FAULTS = {Fault.STATUS_401, Fault.STATUS_402, Fault.STATUS_429}
LIMIT = 20
# first audio/token from a loopback stand-in takes ~0.1 s, a failover ~0.2 s more; a hang
# costs one BUDGET. Without the budget it is livekit's 10 s attempt timeout or more.
SLOW = 4.0


def cfg(
    name: str, kind: ProviderKind, priority: int, key: str | None, **options: Any
) -> ProviderConfig:
    secrets = {"apiKey": SecretStr(key)} if key else {}
    return provider_config(
        provider=name, kind=kind, priority=priority, options=options, secrets=secrets
    )


def org_of(*configs: ProviderConfig, faq: tuple[FaqEntry, ...] = ()) -> OrgProviders:
    fill = {  # kinds a test does not exercise: cheap to build, never used
        STT_: (cfg("deepgram", STT_, 0, "unused"),),
        LLM_: (),
        TTS_: (cfg("piper", TTS_, 0, None),),
    }
    chains = {k: tuple(c for c in configs if c.kind is k) or fill[k] for k in fill}
    return OrgProviders(
        organization_id="acme",
        stt=chains[STT_],
        llm=chains[LLM_],
        tts=chains[TTS_],
        agent=AgentPersona(faq=faq),
    )


def assert_breaker(health: HealthRegistry, config: ProviderConfig, fault: Fault) -> None:
    keys = HealthKeys.of(config)
    key = keys.credential if fault in CREDENTIAL_FAULTS else keys.endpoint
    states = {b.key: b.state for b in health.snapshot()}
    assert states.get(key) is BreakerState.OPEN, states
    other = keys.endpoint if fault in CREDENTIAL_FAULTS else keys.credential
    assert states.get(other or "", BreakerState.CLOSED) is BreakerState.CLOSED


def assert_switched(
    health: HealthRegistry, failed: ProviderConfig, spoke: ProviderConfig, fault: Fault
) -> None:
    """The direction of the switch: the primary's breaker (the right one) opened, and the
    provider that answered is healthy."""
    assert_breaker(health, failed, fault)
    assert health.state_of(HealthKeys.of(spoke)) is BreakerState.CLOSED


def assert_logged_once_without_keys(caplog: pytest.LogCaptureFixture, frm: str, to: str) -> None:
    switches = [r for r in caplog.records if r.getMessage() == "provider failed, switching"]
    assert [(r.__dict__["from"], r.__dict__["to"]) for r in switches] == [(frm, to)]
    everything = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    assert KEY_A not in everything and KEY_B not in everything


# --- what a caller does with each kind (the bench measures the same) ---------------------


TEXT = "The quick brown fox jumps over the lazy dog and runs along the river bank today."


async def synthesize(engine: Any, text: str) -> tuple[float, float]:
    """Seconds to first audio, seconds of audio."""
    started, first, seconds = time.perf_counter(), -1.0, 0.0
    async with engine.synthesize(text) as stream:
        async for ev in stream:
            if first < 0:
                first = time.perf_counter() - started
            seconds += ev.frame.duration
    return first, seconds


async def answer(engine: llm.LLM[Any], question: str) -> tuple[float, str]:
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content=question)
    started, first, text = time.perf_counter(), -1.0, ""
    async with engine.chat(chat_ctx=ctx) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                if first < 0:
                    first = time.perf_counter() - started
                text += chunk.delta.content
    return first, text


async def first_final(engine: stt.STT[Any], frames: list[rtc.AudioFrame]) -> tuple[float, str]:
    """Feed the caller's audio (4x real time, looped) until a final transcript arrives."""
    stream = engine.stream()
    started = time.perf_counter()

    async def feed() -> None:
        while True:
            for frame in frames:
                stream.push_frame(frame)
                await asyncio.sleep(0.005)

    feeder = asyncio.create_task(feed())
    try:
        async for ev in stream:
            if ev.type is stt.SpeechEventType.FINAL_TRANSCRIPT and ev.alternatives[0].text:
                return time.perf_counter() - started, ev.alternatives[0].text
        raise AssertionError("the stream ended without a final transcript")
    finally:
        feeder.cancel()
        await stream.aclose()
