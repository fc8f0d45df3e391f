"""STT failover keeps the caller's words: the Deepgram plugin, at its stand-in, dies
mid-utterance; local Whisper, next in the chain, transcribes the whole utterance, the words
said to Deepgram before it died included (``STT_REPLAY_SECONDS``), so the caller need not
repeat them. With the handover off (livekit's adapter alone) those words are lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit import rtc
from livekit.agents import stt
from livekit.agents.utils import http_context
from pydantic import SecretStr

from agent.worker.prewarm import shared_vad
from providers.catalogue import provider_config
from providers.chains.budgets import FailoverSettings
from providers.chains.build import build_chains
from providers.chains.health import HealthRegistry
from providers.types import AgentPersona, OrgProviders, ProviderConfig, ProviderKind
from tests.standins.deepgram import DeepgramStandin
from tests.standins.faults import Fault
from tests.support.audio import speech_frames, words

STT_, LLM_, TTS_ = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
LIMIT = 60.0
BEFORE = "Good morning, I need to cancel my appointment."
"""Said while Deepgram still listens."""
AFTER = "Can you call me back tomorrow afternoon?"
"""Said after it died, in the same breath (too short a pause to end the utterance)."""


@pytest.fixture(scope="module")
def utterance() -> tuple[list[rtc.AudioFrame], list[rtc.AudioFrame]]:
    return speech_frames([BEFORE], pause_s=0.05), speech_frames([AFTER], pause_s=0.5)


async def first_final(
    engine: stt.STT[Any],
    before: list[rtc.AudioFrame],
    after: list[rtc.AudioFrame],
    primary: DeepgramStandin,
) -> str:
    """Speak ``before`` in real time, kill the primary, speak ``after``, then silence until
    a final transcript comes."""
    stream = engine.stream()
    n = after[0].samples_per_channel
    silence = rtc.AudioFrame(bytes(2 * n), after[0].sample_rate, 1, n)

    async def speak(frames: list[rtc.AudioFrame]) -> None:
        for i, frame in enumerate(frames):
            stream.push_frame(frame)
            if i % 5 == 4:
                await asyncio.sleep(0.1)  # real time: 5 frames of 20 ms

    async def call() -> None:
        await speak(before)
        await primary.set_fault(Fault.REFUSE)  # aborts Deepgram's open socket
        await speak(after)
        while True:
            await speak([silence] * 5)

    caller = asyncio.create_task(call())
    try:
        async for ev in stream:
            if ev.type is stt.SpeechEventType.FINAL_TRANSCRIPT and ev.alternatives[0].text:
                return ev.alternatives[0].text
        raise AssertionError("the stream ended without a final transcript")
    finally:
        caller.cancel()
        await stream.aclose()


@pytest.mark.parametrize(
    ("replay", "dead_second"),
    [(5.0, False), (5.0, True), (0.0, False)],
    ids=["handover", "handover-past-a-dead-stt", "livekit-alone"],
)
async def test_words_said_to_a_failed_stt_reach_the_next_one(
    replay: float,
    dead_second: bool,
    utterance: tuple[list[rtc.AudioFrame], list[rtc.AudioFrame]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    before, after = utterance
    budgets = {STT_: 2.0, LLM_: 2.0, TTS_: 2.0}
    async with (
        http_context.open(),
        DeepgramStandin(transcript="deepgram never finished", final_after=60.0) as primary,
        DeepgramStandin(fault=Fault.REFUSE) as second,  # a second Deepgram account, down
    ):

        def deepgram(priority: int, base_url: str) -> ProviderConfig:
            return provider_config(
                provider="deepgram",
                kind=STT_,
                priority=priority,
                options={"base_url": base_url},
                secrets={"apiKey": SecretStr(f"dg-test-{priority}")},
            )

        seconds = (deepgram(5, second.base_url),) if dead_second else ()
        org = OrgProviders(
            organization_id="acme",
            stt=(
                deepgram(10, primary.base_url),
                *seconds,
                provider_config(provider="whisper", kind=STT_, priority=1),
            ),
            tts=(provider_config(provider="piper", kind=TTS_),),
            agent=AgentPersona(),
        )
        chains = build_chains(
            org,
            vad=shared_vad(),
            health=HealthRegistry(),
            failover=FailoverSettings(budgets, stt_replay=replay),
        )
        text = await asyncio.wait_for(first_final(chains.stt, before, after, primary), LIMIT)

    heard = words(text)
    assert "tomorrow" in heard and "afternoon" in heard, text  # Whisper took over
    switches = [r for r in caplog.records if r.getMessage() == "provider failed, switching"]
    path = ["deepgram", "deepgram", "whisper"] if dead_second else ["deepgram", "whisper"]
    assert [(r.__dict__["from"], r.__dict__["to"]) for r in switches] == list(
        zip(path, path[1:], strict=False)
    )
    replays = [r for r in caplog.records if r.getMessage().startswith("replaying the caller")]
    if replay:
        assert "cancel" in heard and "appointment" in heard, text
        assert [r.__dict__["to"] for r in replays] == path[1:]
        assert 2.0 < replays[0].__dict__["seconds"] <= replay  # BEFORE, at most the bound
    else:
        assert "cancel" not in heard and "appointment" not in heard, text
        assert not replays
