"""Fault injection: each kind's primary provider, a stand-in speaking its wire format on
127.0.0.1, refuses, answers 401/402/429/500, hangs, or drops mid-stream; the call must
complete on the fallback quickly, the shared breaker must record the right thing, the
switch must be logged once, and no key may reach a log line (SPEC §5, issue 5).

Time bounds here are generous checks that the mechanism works (a hang costs one budget,
not livekit's 10 s attempt timeout or a plugin's 30 s read timeout): ``SLOW`` is an order of
magnitude over a healthy run on a loaded machine, and still under what a regression costs.
The figures themselves come from ``make bench`` (tests/bench/bench_failover.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import APIConnectionError, llm, stt
from livekit.agents.utils import http_context
from pydantic import SecretStr

from agent.worker.prewarm import shared_vad
from providers.catalogue import provider_config
from providers.chains.build import build_chains
from providers.chains.failover import FailoverLog, FailoverSettings
from providers.chains.health import BreakerState, HealthKeys, HealthRegistry
from providers.config.types import (
    AgentPersona,
    FaqEntry,
    OrgProviders,
    ProviderConfig,
    ProviderKind,
)
from tests.standins.cartesia import CartesiaStandin
from tests.standins.deepgram import DeepgramStandin
from tests.standins.elevenlabs import ElevenLabsStandin
from tests.standins.faults import Fault
from tests.standins.openai import OpenAIStandin
from tests.support.audio import speech_frames, words

STT_, LLM_, TTS_ = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
BUDGET = 1.0
FAILOVER = FailoverSettings({STT_: BUDGET, LLM_: BUDGET, TTS_: BUDGET})
KEY_A, KEY_B = "sk-test-PRIMARY-key-000111", "sk-test-BACKUP-key-222333"
TEXT = "The quick brown fox jumps over the lazy dog and runs along the river bank today."
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
    chains = {k: tuple(c for c in configs if c.kind is k) or fill[k] for k in ProviderKind}
    return OrgProviders(
        organization_id="acme",
        stt=chains[STT_],
        llm=chains[LLM_],
        tts=chains[TTS_],
        agent=AgentPersona(faq=faq),
    )


@pytest.fixture
async def http() -> AsyncIterator[None]:
    async with http_context.open():
        yield


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


# --- TTS -------------------------------------------------------------------------------


async def synthesize(engine: Any, text: str) -> tuple[float, float]:
    """Seconds to first audio, seconds of audio."""
    started, first, seconds = time.perf_counter(), -1.0, 0.0
    async with engine.synthesize(text) as stream:
        async for ev in stream:
            if first < 0:
                first = time.perf_counter() - started
            seconds += ev.frame.duration
    return first, seconds


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
async def test_tts_fault_fails_over(
    fault: Fault, http: None, caplog: pytest.LogCaptureFixture
) -> None:
    health = HealthRegistry()
    # audio paced like a real stream, so half of it reaches the caller before a drop
    primary_api = ElevenLabsStandin(fault=fault, drop_after=2, chunk_delay=0.3)
    async with primary_api as primary, CartesiaStandin() as backup:
        a = cfg("elevenlabs", TTS_, 10, KEY_A, base_url=primary.base_url, voice_id="v")
        b = cfg("cartesia", TTS_, 1, KEY_B, base_url=backup.base_url)
        chains = build_chains(org_of(a, b), vad=None, health=health, failover=FAILOVER)
        first, seconds = await asyncio.wait_for(synthesize(chains.tts, TEXT), LIMIT)

    assert seconds > 1.0  # the caller heard an answer
    # the primary was asked first (unless it refused the connection), the backup spoke
    asked = [] if fault is Fault.REFUSE else [TEXT]
    assert [r.body["text"] for r in primary.requests if r.body] == asked
    assert len(backup.texts) == 1
    assert {r.api_key for r in backup.requests} == {KEY_B}
    spoken = words(backup.texts[0])
    if fault is Fault.DROP_MID_STREAM:
        # only the part not yet heard, each word once: a proper suffix of the sentence
        assert 0 < len(spoken) < len(words(TEXT)) and words(TEXT)[-len(spoken) :] == spoken
    else:
        assert spoken == words(TEXT)
        assert first < (BUDGET + SLOW if fault is Fault.HANG else SLOW)
    assert_switched(health, a, b, fault)
    assert_logged_once_without_keys(caplog, "elevenlabs", "cartesia")


async def test_next_call_starts_on_the_healthy_tts_and_probes_after_cooldown(http: None) -> None:
    now = [0.0]
    health = HealthRegistry(cooldown=10.0, clock=lambda: now[0])
    async with ElevenLabsStandin(fault=Fault.STATUS_500) as primary, CartesiaStandin() as backup:
        a = cfg("elevenlabs", TTS_, 10, KEY_A, base_url=primary.base_url, voice_id="v")
        b = cfg("cartesia", TTS_, 1, KEY_B, base_url=backup.base_url)
        org = org_of(a, b)
        await asyncio.wait_for(
            synthesize(build_chains(org, vad=None, health=health).tts, TEXT), LIMIT
        )
        tried = primary.request_count

        second = build_chains(org, vad=None, health=health, failover=FAILOVER)
        assert [m.name for m in second.tts.members] == ["cartesia", "elevenlabs"]  # type: ignore[attr-defined]
        await asyncio.wait_for(synthesize(second.tts, TEXT), LIMIT)
        assert primary.request_count == tried  # 0 attempts on the dead provider

        now[0] += 11  # cool-down over: one call probes the primary, which is back
        await primary.set_fault(Fault.OK)
        third = build_chains(org, vad=None, health=health, failover=FAILOVER)
        assert [m.name for m in third.tts.members] == ["elevenlabs", "cartesia"]  # type: ignore[attr-defined]
        await asyncio.wait_for(synthesize(third.tts, TEXT), LIMIT)
        assert primary.request_count == tried + 1
    assert all(b.state is BreakerState.CLOSED for b in health.snapshot())


async def test_every_cloud_tts_down_the_local_voice_speaks(
    http: None, caplog: pytest.LogCaptureFixture
) -> None:
    health = HealthRegistry()
    async with ElevenLabsStandin(fault=Fault.REFUSE) as el, CartesiaStandin(fault=Fault.HANG) as ca:
        org = org_of(
            cfg("elevenlabs", TTS_, 10, KEY_A, base_url=el.base_url, voice_id="v"),
            cfg("cartesia", TTS_, 5, KEY_B, base_url=ca.base_url),
            cfg("piper", TTS_, 1, None),
        )
        chains = build_chains(org, vad=None, health=health, failover=FAILOVER)
        _, seconds = await asyncio.wait_for(synthesize(chains.tts, "Hello there."), LIMIT)
        assert (el.request_count, len(ca.requests_to("/tts"))) == (0, 1)  # refused, then hung
    assert seconds > 0.5
    # down the chain in order, and Piper, the one left, spoke
    switches = [r for r in caplog.records if r.getMessage() == "provider failed, switching"]
    assert [(r.__dict__["from"], r.__dict__["to"]) for r in switches] == [
        ("elevenlabs", "cartesia"),
        ("cartesia", "piper"),
    ]
    assert health.state_of(HealthKeys.of(org.tts[2])) is BreakerState.CLOSED


async def test_every_tts_down_fails_once_not_after_the_sessions_retries(http: None) -> None:
    """The chain has tried every provider without back-off; its error must not make the
    session's retries (3 here, 2 s apart) run the whole chain again."""
    from livekit.agents import APIConnectOptions

    health = HealthRegistry()
    async with (
        ElevenLabsStandin(fault=Fault.STATUS_500) as el,
        CartesiaStandin(fault=Fault.STATUS_500) as ca,
    ):
        org = org_of(
            cfg("elevenlabs", TTS_, 10, KEY_A, base_url=el.base_url, voice_id="v"),
            cfg("cartesia", TTS_, 5, KEY_B, base_url=ca.base_url),
        )
        chains = build_chains(org, vad=None, health=health, failover=FAILOVER)
        session_like = APIConnectOptions(max_retry=3, retry_interval=2.0, timeout=10)

        async def synthesize_all() -> None:
            async with chains.tts.synthesize("Hello there.", conn_options=session_like) as s:
                async for _ in s:
                    pass

        started = time.perf_counter()
        with pytest.raises(APIConnectionError) as failed:
            await asyncio.wait_for(synthesize_all(), LIMIT)
        elapsed = time.perf_counter() - started
        assert not failed.value.retryable
        assert (el.request_count, ca.request_count) == (1, 1)  # each asked once
    # two refusals take milliseconds: this bound is ~100x that, and still below the 2 s
    # that the session's second retry would wait (its first comes after 0.1 s, and the
    # request counts above catch it)
    assert elapsed < 1.9


async def test_a_probe_ending_in_a_raw_exception_frees_the_slot() -> None:
    """A plugin bug (not an APIError) is no verdict on the provider: the half-open probe
    slot must not stay taken, or the provider is skipped until the worker restarts."""
    from livekit.agents import APIConnectOptions, tts

    from providers.chains.tts.chain import ChainMember, ChainTTS

    class Broken(tts.TTS):  # a plugin with a bug
        def __init__(self) -> None:
            super().__init__(
                capabilities=tts.TTSCapabilities(streaming=False), sample_rate=16000, num_channels=1
            )

        def synthesize(self, text: str, *, conn_options: Any = None) -> tts.ChunkedStream:
            raise RuntimeError("plugin bug")

    now = [0.0]
    health = HealthRegistry(cooldown=1.0, clock=lambda: now[0])
    keys = HealthKeys.of(cfg("elevenlabs", TTS_, 10, KEY_A))
    health.record_failure(keys, APIConnectionError("down"))
    now[0] = 2.0  # due for a probe
    chain = ChainTTS(
        [ChainMember("elevenlabs", Broken(), keys, None)], health=health, failovers=FailoverLog("a")
    )
    with pytest.raises(RuntimeError):
        async with chain.synthesize("Hi.", conn_options=APIConnectOptions(max_retry=0)) as s:
            async for _ in s:
                pass
    assert health.allow(keys), "the probe slot is still taken"


# --- LLM -------------------------------------------------------------------------------


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


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
async def test_llm_fault_fails_over(fault: Fault, caplog: pytest.LogCaptureFixture) -> None:
    health = HealthRegistry()
    primary_reply = "Primary model speaking here."
    backup_reply = "The backup model answers this question."
    async with (
        OpenAIStandin(reply=primary_reply, fault=fault, chunk_words=2) as primary,
        OpenAIStandin(reply=backup_reply) as backup,
    ):
        a = cfg("openai", LLM_, 10, KEY_A, base_url=primary.base_url)
        b = cfg("groq", LLM_, 5, KEY_B, base_url=backup.base_url)
        chains = build_chains(org_of(a, b), vad=None, health=health, failover=FAILOVER)
        first, text = await asyncio.wait_for(answer(chains.llm, "Hello?"), LIMIT)

    # the primary was asked first (unless it refused the connection), the backup answered
    assert len(primary.chat_requests) == (0 if fault is Fault.REFUSE else 1)
    assert {r.api_key for r in backup.chat_requests} == {KEY_B}
    assert text.endswith(backup_reply)
    if fault is Fault.DROP_MID_STREAM:
        # what the primary said before it dropped, then the backup's answer
        said = text[: -len(backup_reply)]
        assert said and primary_reply.startswith(said) and said != primary_reply, text
    else:
        assert text == backup_reply
        assert first < (BUDGET + SLOW if fault is Fault.HANG else SLOW)
    assert_switched(health, a, b, fault)
    assert_logged_once_without_keys(caplog, "openai", "groq")


async def test_every_llm_down_the_offline_responder_answers() -> None:
    faq = (FaqEntry(question="opening hours", answer="We open at nine."),)
    async with OpenAIStandin(fault=Fault.REFUSE) as a, OpenAIStandin(fault=Fault.HANG) as b:
        org = org_of(
            cfg("openai", LLM_, 10, KEY_A, base_url=a.base_url),
            cfg("groq", LLM_, 5, KEY_B, base_url=b.base_url),
            faq=faq,
        )
        chains = build_chains(org, vad=None, health=HealthRegistry(), failover=FAILOVER)
        _, text = await asyncio.wait_for(answer(chains.llm, "What are your opening hours?"), LIMIT)
    assert text == "We open at nine."


async def test_a_skipped_llm_says_what_failed_and_when_it_is_tried_again() -> None:
    """livekit's adapter logs "<llm> recovery failed: <message>" when its recovery check
    meets our open breaker; the message must say why, not just "marked down"."""
    from livekit.plugins import openai

    from providers.chains.llm.guard import GuardedLLM

    now = [100.0]
    health = HealthRegistry(cooldown=30.0, clock=lambda: now[0])
    config = cfg("openai", LLM_, 10, KEY_A, base_url="http://127.0.0.1:9/v1")
    keys = HealthKeys.of(config)
    health.record_failure(keys, APIConnectionError())
    now[0] += 4
    inner = openai.LLM(api_key=KEY_A, base_url="http://127.0.0.1:9/v1")
    guard = GuardedLLM(inner, name="openai", keys=keys, health=health, budget=BUDGET)

    with pytest.raises(APIConnectionError) as err:
        await asyncio.wait_for(answer(guard, "Hello?"), LIMIT)

    message = str(err.value)
    assert "'openai' not asked: it failed 4 s ago (APIConnectionError)" in message
    assert "tries it again in 26 s (PROVIDER_COOLDOWN)" in message
    assert "the next LLM of the chain answers" in message
    assert KEY_A not in message


# --- STT -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech() -> list[rtc.AudioFrame]:
    """A caller's question and a pause, as 20 ms frames (Piper's voice, its native rate)."""
    return speech_frames(["What are your opening hours?"], pause_s=1.0)


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


@pytest.mark.parametrize("fault", [*FAULTS, Fault.HANG_HANDSHAKE], ids=lambda f: f.name)
async def test_stt_fault_fails_over(
    fault: Fault, http: None, speech: list[rtc.AudioFrame], caplog: pytest.LogCaptureFixture
) -> None:
    health = HealthRegistry()
    async with (
        DeepgramStandin(fault=fault, transcript="primary words", final_after=0.6) as primary,
        DeepgramStandin(transcript="backup words heard", final_after=0.6) as backup,
    ):
        a = cfg("deepgram", STT_, 10, KEY_A, base_url=primary.base_url)
        b = cfg("deepgram", STT_, 5, KEY_B, base_url=backup.base_url)
        chains = build_chains(org_of(a, b), vad=shared_vad(), health=health, failover=FAILOVER)
        _, text = await asyncio.wait_for(first_final(chains.stt, speech), LIMIT)
    # both are Deepgram: the key each stand-in saw, the breakers and the words say which
    # failed and which one heard the caller (a drop comes before the primary's final)
    assert {r.api_key for r in primary.requests_to("/listen")} <= {KEY_A}
    assert {r.api_key for r in backup.requests_to("/listen")} == {KEY_B}
    assert text == "backup words heard"
    assert_switched(health, a, b, fault)
    assert_logged_once_without_keys(caplog, "deepgram", "deepgram")


async def test_every_stt_down_fails_once_not_after_the_sessions_retries(
    http: None, speech: list[rtc.AudioFrame]
) -> None:
    """As for TTS: the chain has tried each STT once; the session's own retries (3, 0.1 /
    2 / 2 s apart, what AgentSession passes to ``stream()``) must not run it again."""
    from livekit.agents import APIConnectOptions

    async with (
        DeepgramStandin(fault=Fault.REFUSE) as a,
        DeepgramStandin(fault=Fault.STATUS_500) as b,
    ):
        org = org_of(
            cfg("deepgram", STT_, 10, KEY_A, base_url=a.base_url),
            cfg("deepgram", STT_, 5, KEY_B, base_url=b.base_url),
        )
        chains = build_chains(org, vad=shared_vad(), health=HealthRegistry(), failover=FAILOVER)
        session_like = APIConnectOptions(max_retry=3, retry_interval=2.0, timeout=10)
        stream = chains.stt.stream(conn_options=session_like)

        async def listen() -> None:
            for frame in speech:
                stream.push_frame(frame)
            async for _ in stream:
                pass

        started = time.perf_counter()
        try:
            with pytest.raises(APIConnectionError) as failed:
                await asyncio.wait_for(listen(), LIMIT)
        finally:
            await stream.aclose()
        elapsed = time.perf_counter() - started
        assert "all STTs failed" in str(failed.value)
        # one round: the 500 was asked once by the stream and once by livekit's recovery
        # probe (a refused connection leaves no request behind); retries would add rounds
        assert len(b.requests_to("/listen")) <= 2 and len(a.requests_to("/listen")) == 0
    # two refusals take milliseconds; the session's retries would add 4 s and three rounds
    assert elapsed < 3.9
