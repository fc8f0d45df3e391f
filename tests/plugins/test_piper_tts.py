"""Piper TTS: in-process streaming, Piper's real HTTP server, and the error ladder."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, APIStatusError, APITimeoutError

from plugins import piper_tts
from tests.standins.piper_server import (
    PiperServer,
    hung_server,
    run_piper_server,
    status_server,
)
from tests.support.audio import synthesize_timed
from tests.support.net import free_port

THREE_SENTENCES = (
    "The quick brown fox jumps over the lazy dog. "
    "I would like a cup of coffee with milk. "
    "Please call me back tomorrow morning."
)
NO_RETRY = APIConnectOptions(max_retry=0, timeout=5.0)
# A wall-clock bound for the error paths below: ~8x a 0.5 s timeout and ~100x a refusal on
# a loaded machine, yet under the 5 s default timeout a regression would wait out instead.
SLOW = 4.0


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="module")
def piper_server() -> Iterator[PiperServer]:
    with run_piper_server(str(piper_tts.default_voice_path())) as server:
        yield server


async def _frames(
    tts: piper_tts.TTS, text: str, conn_options: APIConnectOptions = NO_RETRY
) -> list[rtc.AudioFrame]:
    async with tts.synthesize(text, conn_options=conn_options) as stream:
        return [ev.frame async for ev in stream]


def _duration(frames: list[rtc.AudioFrame]) -> float:
    return sum(f.duration for f in frames)


# --- no model needed ----------------------------------------------------------------------


def test_constructor_does_not_load_voice(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(voice_path: str | None = None) -> Any:
        raise AssertionError("voice loaded in constructor")

    monkeypatch.setattr(piper_tts, "load_voice", boom)
    local = piper_tts.TTS()
    assert local.sample_rate == 22050  # read from en_US-joe-medium.onnx.json
    assert local.num_channels == 1
    assert not local.capabilities.streaming
    assert piper_tts.TTS(host="127.0.0.1").sample_rate == 22050
    assert piper_tts.TTS(host="127.0.0.1", sample_rate=16000).sample_rate == 16000


def test_default_voice_path_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PIPER_VOICE", raising=False)
    assert piper_tts.default_voice_path().name == "en_US-joe-medium.onnx"
    assert piper_tts.default_voice_path().exists()
    monkeypatch.setenv("PIPER_VOICE", "/voices/other.onnx")
    assert str(piper_tts.default_voice_path()) == "/voices/other.onnx"


async def test_hung_server_times_out(http_session: aiohttp.ClientSession) -> None:
    async with hung_server() as port:
        tts = piper_tts.TTS(host="127.0.0.1", port=port, timeout=0.5, http_session=http_session)
        started = time.perf_counter()
        with pytest.raises(APITimeoutError):
            await asyncio.wait_for(_frames(tts, "Hello there."), 10)
        elapsed = time.perf_counter() - started
        assert 0.5 * 0.9 <= elapsed < SLOW  # the option, not the 5 s default, bounded it


async def test_hung_server_fails_within_conn_options_timeout(
    http_session: aiohttp.ClientSession,
) -> None:
    """livekit's TTS conformance test (``test_tts_synthesize_timeout``): a server that accepts
    and then stalls fails within about the caller's ``conn_options.timeout``, even when the
    plugin's own timeout (5 s by default) is longer."""
    async with hung_server() as port:
        tts = piper_tts.TTS(host="127.0.0.1", port=port, http_session=http_session)
        started = time.perf_counter()
        with pytest.raises(APITimeoutError):
            await asyncio.wait_for(
                _frames(tts, "Hello there.", APIConnectOptions(max_retry=0, timeout=0.5)), 10
            )
        elapsed = time.perf_counter() - started
        assert 0.5 * 0.9 <= elapsed < SLOW  # conn_options, not the plugin's 5 s, bounded it


async def test_refused_port_is_connection_error(http_session: aiohttp.ClientSession) -> None:
    tts = piper_tts.TTS(host="127.0.0.1", port=free_port(), timeout=5.0, http_session=http_session)
    started = time.perf_counter()
    with pytest.raises(APIConnectionError) as info:
        await asyncio.wait_for(_frames(tts, "Hello there."), 10)
    assert not isinstance(info.value, APITimeoutError)
    assert time.perf_counter() - started < SLOW  # refused at once, no 5 s timeout waited


async def test_server_error_is_status_error(http_session: aiohttp.ClientSession) -> None:
    async with status_server(500) as port:
        tts = piper_tts.TTS(host="127.0.0.1", port=port, http_session=http_session)
        with pytest.raises(APIStatusError) as info:
            await asyncio.wait_for(_frames(tts, "Hello there."), 10)
    assert info.value.status_code == 500
    assert info.value.retryable


# --- real voice -------------------------------------------------------------------------


@pytest.mark.slow
def test_load_voice_is_cached() -> None:
    assert piper_tts.load_voice() is piper_tts.load_voice()
    assert piper_tts.load_voice(str(piper_tts.default_voice_path())) is piper_tts.load_voice()


class _GatedVoice:
    """The real voice, but sentence 2 is not synthesized until the test opens the gate."""

    def __init__(self, voice: Any) -> None:
        self._voice = voice
        self.gate = threading.Event()
        self.sentences = 0

    def synthesize(self, text: str, syn_config: Any = None) -> Iterator[Any]:
        chunks = iter(self._voice.synthesize(text, syn_config))
        self.sentences += 1
        yield next(chunks)
        if not self.gate.wait(timeout=10):
            raise TimeoutError("first sentence never reached the consumer")
        for chunk in chunks:
            self.sentences += 1
            yield chunk


@pytest.mark.slow
async def test_first_sentence_streams_before_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    gated = _GatedVoice(await asyncio.to_thread(piper_tts.load_voice))
    monkeypatch.setattr(piper_tts, "load_voice", lambda voice_path=None: gated)
    tts = piper_tts.TTS()

    async def consume() -> tuple[int, float]:
        sentences_at_first_frame = -1
        frames: list[rtc.AudioFrame] = []
        async with tts.synthesize(THREE_SENTENCES, conn_options=NO_RETRY) as stream:
            async for ev in stream:
                if not frames:
                    # A non-streaming implementation never gets here: Piper is blocked
                    # until this first frame is seen, so it would time out instead.
                    sentences_at_first_frame = gated.sentences
                    gated.gate.set()
                frames.append(ev.frame)
        return sentences_at_first_frame, _duration(frames)

    sentences_at_first_frame, duration = await asyncio.wait_for(consume(), 30)
    assert sentences_at_first_frame == 1
    assert gated.sentences == 3
    assert duration > 4.0  # all three sentences were spoken


@pytest.mark.slow
async def test_first_audio_precedes_end_of_synthesis() -> None:
    await asyncio.to_thread(piper_tts.load_voice)
    tts = piper_tts.TTS()

    async def timed() -> tuple[float, float, float]:
        first, end, frames = await synthesize_timed(tts, THREE_SENTENCES, NO_RETRY)
        return first, end, _duration(frames)

    await asyncio.wait_for(timed(), 30)  # warm-up
    first, end, duration = await asyncio.wait_for(timed(), 30)
    assert 0 <= first < end
    assert end < duration  # faster than real time, even on a shared CPU


@pytest.mark.slow
async def test_resamples_in_process() -> None:
    await asyncio.to_thread(piper_tts.load_voice)
    frames = await asyncio.wait_for(_frames(piper_tts.TTS(sample_rate=16000), "Hello."), 30)
    assert frames and {f.sample_rate for f in frames} == {16000}


@pytest.mark.slow
async def test_remote_matches_in_process(
    piper_server: PiperServer, http_session: aiohttp.ClientSession
) -> None:
    await asyncio.to_thread(piper_tts.load_voice)
    local = await asyncio.wait_for(_frames(piper_tts.TTS(), THREE_SENTENCES), 30)
    remote_tts = piper_tts.TTS(
        host=piper_server.host, port=piper_server.port, timeout=15.0, http_session=http_session
    )
    remote = await asyncio.wait_for(_frames(remote_tts, THREE_SENTENCES), 60)

    assert {f.sample_rate for f in remote} == {f.sample_rate for f in local} == {22050}
    assert {f.num_channels for f in remote} == {1}
    assert _duration(remote) == pytest.approx(_duration(local), rel=0.2)


@pytest.mark.slow
async def test_remote_resamples_to_requested_rate(
    piper_server: PiperServer, http_session: aiohttp.ClientSession
) -> None:
    tts = piper_tts.TTS(
        host=piper_server.host,
        port=piper_server.port,
        sample_rate=16000,
        timeout=15.0,
        http_session=http_session,
    )
    frames = await asyncio.wait_for(_frames(tts, "Hello there, how are you?"), 60)
    assert frames and {f.sample_rate for f in frames} == {16000}
    assert 0.5 < _duration(frames) < 5.0


def test_a_long_sentences_first_clause_is_synthesized_on_its_own() -> None:
    from plugins.piper_tts import first_clause_apart

    long = "We are open Monday to Friday, from nine in the morning to five in the afternoon."
    assert first_clause_apart(long) == [
        "We are open Monday to Friday,",
        "from nine in the morning to five in the afternoon.",
    ]
    # too short a clause, or too short a rest, stays whole: it would only sound choppy
    assert first_clause_apart("Yes, there is free parking behind the building.") == [
        "Yes, there is free parking behind the building."
    ]
    assert first_clause_apart("Our office is on Harbor Street, sir.") == [
        "Our office is on Harbor Street, sir."
    ]
