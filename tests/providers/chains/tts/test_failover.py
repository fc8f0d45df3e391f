"""Fault injection into the TTS chain: the primary, a stand-in speaking its vendor's wire
format on 127.0.0.1, refuses, answers 401/402/429/500, hangs, or drops mid-sentence; the
caller must hear the sentence from the fallback quickly (after a drop, only the part not yet
heard), the shared breaker must record the right thing, the switch must be logged once, and
no key may reach a log line (SPEC §5, issue 5). Time bounds: ``tests.support.failover``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from livekit.agents import APIConnectionError

from providers.chains.build import build_chains
from providers.chains.events import FailoverLog
from providers.chains.health import BreakerState, HealthKeys, HealthRegistry
from tests.standins.cartesia import CartesiaStandin
from tests.standins.elevenlabs import ElevenLabsStandin
from tests.standins.faults import Fault
from tests.support.audio import words
from tests.support.failover import (
    BUDGET,
    FAILOVER,
    FAULTS,
    KEY_A,
    KEY_B,
    LIMIT,
    SLOW,
    TEXT,
    TTS_,
    assert_logged_once_without_keys,
    assert_switched,
    cfg,
    org_of,
    synthesize,
)


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

    from providers.chains.tts.fallback import ChainMember, ChainTTS

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
