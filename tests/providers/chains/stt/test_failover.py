"""Fault injection into the STT chain: the primary, a Deepgram stand-in on 127.0.0.1,
refuses, answers 401/402/429/500, hangs (after the handshake or in it), or drops
mid-stream; the caller's words must be transcribed by the fallback, the shared breaker must
record the right thing, the switch must be logged once, and no key may reach a log line
(SPEC §5, issue 5). Time bounds: ``tests.support.failover``."""

from __future__ import annotations

import asyncio
import time

import pytest
from livekit import rtc
from livekit.agents import APIConnectionError

from agent.worker.prewarm import shared_vad
from providers.chains.build import build_chains
from providers.chains.health import HealthRegistry
from tests.standins.deepgram import DeepgramStandin
from tests.standins.faults import Fault
from tests.support.audio import speech_frames
from tests.support.failover import (
    FAILOVER,
    FAULTS,
    KEY_A,
    KEY_B,
    LIMIT,
    STT_,
    assert_logged_once_without_keys,
    assert_switched,
    cfg,
    first_final,
    org_of,
)


@pytest.fixture(scope="module")
def speech() -> list[rtc.AudioFrame]:
    """A caller's question and a pause, as 20 ms frames (Piper's voice, its native rate)."""
    return speech_frames(["What are your opening hours?"], pause_s=1.0)


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
    2 / 2 s apart, by default) must not run it again. The session passes ``stream()`` what
    the chains told it (``session_options``, given to ``AgentSession`` by the call)."""
    async with (
        DeepgramStandin(fault=Fault.REFUSE) as a,
        DeepgramStandin(fault=Fault.STATUS_500) as b,
    ):
        org = org_of(
            cfg("deepgram", STT_, 10, KEY_A, base_url=a.base_url),
            cfg("deepgram", STT_, 5, KEY_B, base_url=b.base_url),
        )
        chains = build_chains(org, vad=shared_vad(), health=HealthRegistry(), failover=FAILOVER)
        session_like = chains.session_options.stt_conn_options
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
