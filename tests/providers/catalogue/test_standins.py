"""The provider stand-ins (tests/standins) driven by the REAL livekit plugin classes.

For every fault the table below states what the plugin raises. Faults a plugin does
NOT turn into an error within a bounded time are asserted as such ("silent"), because a
FallbackAdapter can only act on them through its own attempt timeout:

* deepgram.STT.stream + HANG (upgrade accepted, audio drained, no transcript): silent
  forever (the 30 s websocket heartbeat is answered, there is no first-result timeout).
* elevenlabs / cartesia / openai ``synthesize()`` + HANG: silent for ~30 s (their HTTP
  timeout is ``total=30`` / ``read=30``; ``conn_options.timeout`` only bounds connect).
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import aiohttp
import pytest
from livekit import rtc
from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APIStatusError,
    APITimeoutError,
    llm,
    stt,
    tts,
)
from livekit.plugins import cartesia, deepgram, elevenlabs, openai

from tests.standins import (
    LEAK_FAULTS,
    CartesiaStandin,
    DeepgramStandin,
    ElevenLabsStandin,
    Fault,
    OpenAIStandin,
    tone_pcm,
)
from tests.standins._server import StandinServer

P = ParamSpec("P")
R = TypeVar("R")

TIMEOUT = 2.0  # conn_options.timeout for the OK / status / refuse / drop paths
HANG_TIMEOUT = 1.0  # shorter conn_options.timeout for the hang paths, to keep the file fast
CO = APIConnectOptions(max_retry=0, timeout=TIMEOUT)
CO_HANG = APIConnectOptions(max_retry=0, timeout=HANG_TIMEOUT)
SILENT_WINDOW = HANG_TIMEOUT + 1.5  # how long a "silent" fault is watched for

ERROR_FAULTS = [f for f in Fault if f is not Fault.OK and f not in LEAK_FAULTS]


def bounded(seconds: float = 20.0) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Any]]:
    """Run the whole async test under asyncio.wait_for(..., seconds)."""

    def deco(fn: Callable[P, Awaitable[R]]) -> Callable[P, Any]:
        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            return await asyncio.wait_for(fn(*args, **kwargs), seconds)

        return wrapper

    return deco


@pytest.fixture
async def session() -> Any:
    async with aiohttp.ClientSession() as s:
        yield s


@dataclass
class Expect:
    """What a plugin does under a fault."""

    exc: type[BaseException] | None  # None: no error within SILENT_WINDOW
    status: int | None = None  # APIStatusError.status_code
    timed: bool = False  # raised only after conn_options.timeout
    partial: bool = False  # output was delivered before the error


def _status_expects(**extra: Expect) -> dict[Fault, Expect]:
    table = {f: Expect(APIStatusError, status=f.status) for f in Fault if f.status is not None}
    for name, e in extra.items():
        table[Fault[name]] = e
    return table


# --------------------------------------------------------------------------- tables

LLM_EXPECT = _status_expects(
    REFUSE=Expect(APIConnectionError),
    HANG=Expect(APITimeoutError, timed=True),
    HANG_HANDSHAKE=Expect(APITimeoutError, timed=True),
    DROP_MID_STREAM=Expect(APIConnectionError, partial=True),
)
DEEPGRAM_EXPECT = _status_expects(
    REFUSE=Expect(APIConnectionError),
    HANG=Expect(None),  # !! never errors
    HANG_HANDSHAKE=Expect(APIConnectionError, timed=True),  # not APITimeoutError
    DROP_MID_STREAM=Expect(APIStatusError, status=1006, partial=True),
)
# synthesize() over HTTP: elevenlabs /stream, cartesia /tts/bytes, openai /audio/speech
CHUNKED_TTS_EXPECT = _status_expects(
    REFUSE=Expect(APIConnectionError),
    HANG=Expect(None),  # !! total=30 s / read=30 s
    HANG_HANDSHAKE=Expect(None),
    DROP_MID_STREAM=Expect(APIConnectionError),
)
ELEVENLABS_STREAM_EXPECT = _status_expects(
    REFUSE=Expect(APIConnectionError),
    # the per-context timer raises APITimeoutError into the waiter, which the plugin
    # re-wraps as APIStatusError("Could not synthesize", status_code=-1)
    HANG=Expect(APIStatusError, status=-1, timed=True),
    HANG_HANDSHAKE=Expect(APITimeoutError, timed=True),
    DROP_MID_STREAM=Expect(APIStatusError, status=1006, partial=True),
)
CARTESIA_STREAM_EXPECT = _status_expects(
    REFUSE=Expect(APIConnectionError),
    HANG=Expect(APITimeoutError, timed=True),
    HANG_HANDSHAKE=Expect(APITimeoutError, timed=True),
    DROP_MID_STREAM=Expect(APIStatusError, status=1006, partial=True),
)


def _co_for(fault: Fault) -> APIConnectOptions:
    return CO_HANG if fault in (Fault.HANG, Fault.HANG_HANDSHAKE) else CO


async def _run_expecting(
    work: Callable[[], Coroutine[Any, Any, None]],
    expect: Expect,
    co: APIConnectOptions,
    partial: Callable[[], bool],
) -> BaseException | None:
    """Run ``work`` and check it against ``expect``; returns the raised error."""
    task = asyncio.create_task(work())
    t0 = time.monotonic()
    if expect.exc is None:
        done, _ = await asyncio.wait({task}, timeout=SILENT_WINDOW)
        try:
            assert not done, f"expected no result within {SILENT_WINDOW}s, got {task!r}"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return None
    with pytest.raises(expect.exc) as info:
        await task
    elapsed = time.monotonic() - t0
    err = info.value
    if expect.status is not None:
        assert isinstance(err, APIStatusError)
        assert err.status_code == expect.status
    assert isinstance(err, APIError)  # what a FallbackAdapter acts on
    # which path raised, not how fast: a timed error waited the timeout out; any other
    # came before it (milliseconds on loopback; the bound is ~100x that, and a plugin
    # that waited for its timeout instead would cross it)
    if expect.timed:
        assert elapsed >= co.timeout * 0.9, elapsed
    else:
        assert elapsed < co.timeout, elapsed
    if expect.partial:
        assert partial(), "expected output before the error"
    return err


def _chat_ctx(user: str = "hi there", system: str = "You are the stand-in test agent.") -> Any:
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="system", content=system)
    ctx.add_message(role="user", content=user)
    return ctx


# --------------------------------------------------------------------------- generic


@bounded()
async def test_refuse_really_refuses_and_recovers_on_the_same_port() -> None:
    async with OpenAIStandin() as srv:
        port = srv.port
        srv.fault = Fault.REFUSE
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", port)
        await srv.set_fault(Fault.OK)
        assert srv.port == port
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.close()


@bounded()
async def test_refuse_from_start() -> None:
    async with DeepgramStandin(fault=Fault.REFUSE) as srv:
        assert srv.port != 0
        s = socket.socket()
        try:
            with pytest.raises(ConnectionRefusedError):
                s.connect(("127.0.0.1", srv.port))
        finally:
            s.close()


@pytest.mark.parametrize(
    ("factory", "path", "header"),
    [
        (OpenAIStandin, "/v1/models", ("Authorization", "Bearer {}")),
        (DeepgramStandin, "/v1/projects", ("Authorization", "Token {}")),
        (ElevenLabsStandin, "/v1/user", ("xi-api-key", "{}")),
        (ElevenLabsStandin, "/v1/models", ("xi-api-key", "{}")),
        (CartesiaStandin, "/voices", ("X-API-Key", "{}")),
    ],
)
@bounded()
async def test_key_check_endpoints(
    session: aiohttp.ClientSession,
    factory: Callable[..., StandinServer],
    path: str,
    header: tuple[str, str],
) -> None:
    async with factory(valid_keys={"good"}) as srv:
        name, fmt = header
        for key, status in (("good", 200), ("bad", 401)):
            async with session.get(srv.root_url + path, headers={name: fmt.format(key)}) as r:
                assert r.status == status
                await r.read()
        assert [r.api_key for r in srv.requests] == ["good", "bad"]
        srv.fault = Fault.STATUS_429
        async with session.get(srv.root_url + path, headers={name: fmt.format("good")}) as r:
            assert r.status == 429


# --------------------------------------------------------------------------- openai LLM


async def _chat(model: llm.LLM[Any], co: APIConnectOptions, out: list[str]) -> None:
    async with model.chat(chat_ctx=_chat_ctx(), conn_options=co) as s:
        async for chunk in s:
            if chunk.delta and chunk.delta.content:
                out.append(chunk.delta.content)


@bounded()
async def test_openai_llm_ok_streams_reply_and_sees_instructions() -> None:
    seen: list[list[dict[str, Any]]] = []

    def reply(messages: list[dict[str, Any]]) -> str:
        seen.append(messages)
        return f"You said: {messages[-1]['content']}. System was: {messages[0]['content']}"

    async with OpenAIStandin(reply=reply) as srv:
        model = openai.LLM(model="gpt-4o-mini", api_key="sk-primary", base_url=srv.base_url)
        try:
            out: list[str] = []
            await _chat(model, CO, out)
        finally:
            await model.aclose()
        assert "".join(out) == ("You said: hi there. System was: You are the stand-in test agent.")
        assert len(out) > 3  # streamed in several chunks
        assert seen[0][0] == {"role": "system", "content": "You are the stand-in test agent."}
        (req,) = srv.chat_requests
        assert req.api_key == "sk-primary"
        assert req.headers["Authorization"] == "Bearer sk-primary"
        assert req.body["stream"] is True
        assert req.body["model"] == "gpt-4o-mini"
        assert req.body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("fault", ERROR_FAULTS, ids=lambda f: f.name)
@bounded()
async def test_openai_llm_faults(fault: Fault) -> None:
    async with OpenAIStandin(reply="one two three four five", fault=fault) as srv:
        model = openai.LLM(model="gpt-4o-mini", api_key="sk-x", base_url=srv.base_url)
        out: list[str] = []
        co = _co_for(fault)
        try:
            await _run_expecting(
                lambda: _chat(model, co, out), LLM_EXPECT[fault], co, lambda: bool(out)
            )
        finally:
            await model.aclose()
        if fault is Fault.DROP_MID_STREAM:
            assert "".join(out) == "one "
        if fault is not Fault.REFUSE:
            assert srv.requests[-1].api_key == "sk-x"


@pytest.mark.parametrize(
    ("flip_to", "exc"),
    [(Fault.DROP_MID_STREAM, APIConnectionError), (Fault.HANG, APITimeoutError)],
    ids=["drop", "hang"],
)
@bounded()
async def test_openai_llm_fault_flipped_mid_stream(
    flip_to: Fault, exc: type[BaseException]
) -> None:
    async with OpenAIStandin(reply="a b c d e f g h", chunk_delay=0.05, drop_after=0) as srv:
        model = openai.LLM(model="gpt-4o-mini", api_key="sk-x", base_url=srv.base_url)
        out: list[str] = []
        try:
            with pytest.raises(exc):
                async with model.chat(chat_ctx=_chat_ctx(), conn_options=CO_HANG) as s:
                    async for chunk in s:
                        if chunk.delta and chunk.delta.content:
                            out.append(chunk.delta.content)
                            if len(out) == 2:
                                srv.fault = flip_to
        finally:
            await model.aclose()
        assert 2 <= len(out) < 8


@bounded()
async def test_openai_llm_fallback_adapter_uses_second_key() -> None:
    async with (
        OpenAIStandin(reply="from primary", fault=Fault.STATUS_401) as primary,
        OpenAIStandin(reply="from backup", valid_keys={"sk-backup"}) as backup,
    ):
        adapter = llm.FallbackAdapter(
            [
                openai.LLM(model="gpt-4o-mini", api_key="sk-primary", base_url=primary.base_url),
                openai.LLM(model="gpt-4o-mini", api_key="sk-backup", base_url=backup.base_url),
            ],
            attempt_timeout=2.0,
        )
        try:
            out: list[str] = []
            await _chat(adapter, CO, out)
        finally:
            await adapter.aclose()
        assert "".join(out) == "from backup"
        assert primary.requests[0].api_key == "sk-primary"
        assert backup.chat_requests[-1].api_key == "sk-backup"


# --------------------------------------------------------------------------- deepgram


def _frames(seconds: float, sample_rate: int = 16000) -> list[rtc.AudioFrame]:
    pcm = tone_pcm(0.02, sample_rate)
    n = int(seconds / 0.02)
    return [rtc.AudioFrame(pcm, sample_rate, 1, len(pcm) // 2) for _ in range(n)]


async def _feed(stream: stt.RecognizeStream, seconds: float) -> None:
    for i, frame in enumerate(_frames(seconds)):
        try:
            stream.push_frame(frame)
        except RuntimeError:  # the stream already failed and closed
            return
        if i % 5 == 0:
            await asyncio.sleep(0.005)


async def _listen(
    model: stt.STT[Any],
    co: APIConnectOptions,
    events: list[stt.SpeechEvent],
    *,
    audio_s: float = 1.5,
) -> None:
    """Stream audio, collect events until the first FINAL_TRANSCRIPT."""
    stream = model.stream(conn_options=co)
    feeder = asyncio.create_task(_feed(stream, audio_s))
    try:
        async for ev in stream:
            events.append(ev)
            if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
                return
    finally:
        feeder.cancel()
        await stream.aclose()


def _texts(events: list[stt.SpeechEvent], kind: stt.SpeechEventType) -> list[str]:
    return [e.alternatives[0].text for e in events if e.type == kind]


@bounded()
async def test_deepgram_ok_interim_then_final(session: aiohttp.ClientSession) -> None:
    async with DeepgramStandin(transcript="hello from the stand in") as srv:
        model = deepgram.STT(api_key="dg-primary", base_url=srv.base_url, http_session=session)
        events: list[stt.SpeechEvent] = []
        await _listen(model, CO, events)
        kinds = [e.type for e in events if e.type != stt.SpeechEventType.RECOGNITION_USAGE]
        assert kinds[:3] == [
            stt.SpeechEventType.START_OF_SPEECH,
            stt.SpeechEventType.INTERIM_TRANSCRIPT,
            stt.SpeechEventType.FINAL_TRANSCRIPT,
        ]
        assert _texts(events, stt.SpeechEventType.INTERIM_TRANSCRIPT) == ["hello from the"]
        assert _texts(events, stt.SpeechEventType.FINAL_TRANSCRIPT) == ["hello from the stand in"]
        (req,) = srv.requests
        assert req.websocket and req.path == "/v1/listen"
        assert req.headers["Authorization"] == "Token dg-primary"
        assert req.api_key == "dg-primary"
        assert req.query["encoding"] == "linear16" and req.query["sample_rate"] == "16000"
        assert req.audio_bytes >= 16000 * 2  # ~1 s of 16 kHz int16 before the final


@bounded()
async def test_deepgram_speech_mode_transcribes_speech_not_silence(
    session: aiohttp.ClientSession,
) -> None:
    """``speech_rms``: a caller's silence gets no transcript; each utterance one final,
    once ``endpointing`` seconds of silence follow it."""
    silence = rtc.AudioFrame(bytes(640), 16000, 1, 320)
    async with DeepgramStandin(transcript="spoken", speech_rms=300.0, endpointing=0.3) as srv:
        model = deepgram.STT(api_key="dg", base_url=srv.base_url, http_session=session)
        stream = model.stream(conn_options=CO)
        finals: list[tuple[str, float]] = []

        async def consume() -> None:
            async for ev in stream:
                if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
                    alt = ev.alternatives[0]
                    finals.append((alt.text, round(alt.start_time, 1)))
                    if len(finals) == 2:
                        return

        consumer = asyncio.create_task(consume())
        try:
            for audio in ([silence] * 100, _frames(0.6), [silence] * 25, _frames(0.6)):
                for frame in [*audio, *[silence] * 25]:
                    stream.push_frame(frame)
            stream.flush()
            await consumer
        finally:
            await stream.aclose()
    # the two utterances, where they were spoken (seconds into the stream); silence ignored
    assert finals == [("spoken", 2.5), ("spoken", 4.6)]


@bounded()
async def test_deepgram_finalize_and_close_stream(session: aiohttp.ClientSession) -> None:
    async with DeepgramStandin(transcript="flush me", final_after=5.0) as srv:
        model = deepgram.STT(api_key="dg", base_url=srv.base_url, http_session=session)
        stream = model.stream(conn_options=CO)
        try:
            await _feed(stream, 0.5)  # past interim_after, far from final_after
            stream.flush()  # -> {"type": "Finalize"} -> final with from_finalize
            finals: list[str] = []
            async for ev in stream:
                if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
                    finals.append(ev.alternatives[0].text)
                    break
            assert finals == ["flush me"]
            assert srv.finalize_messages == 1
            stream.end_input()  # -> {"type": "CloseStream"}
            # the stand-in ends its side of the session only after a CloseStream (or a drop)
            await asyncio.wait_for(srv.requests[0].handled.wait(), TIMEOUT)
            assert srv.close_stream_messages == 1
            msgs = srv.requests[0].ws_messages
            assert {"type": "Finalize"} in msgs and {"type": "CloseStream"} in msgs
            assert {"type": "KeepAlive"} in msgs
        finally:
            await stream.aclose()


@pytest.mark.parametrize(
    ("flip_to", "exc"),
    [(Fault.REFUSE, APIError), (Fault.HANG, None)],
    ids=["refuse", "hang"],
)
@bounded()
async def test_deepgram_fault_flipped_after_interim(
    session: aiohttp.ClientSession, flip_to: Fault, exc: type[BaseException] | None
) -> None:
    """REFUSE mid-stream aborts the open socket -> error; HANG mid-utterance -> the
    final never comes and nothing is raised."""
    async with DeepgramStandin(final_after=1.0) as srv:
        model = deepgram.STT(api_key="dg", base_url=srv.base_url, http_session=session)
        stream = model.stream(conn_options=CO_HANG)
        events: list[stt.SpeechEvent] = []
        flipped = asyncio.Event()

        async def consume() -> None:
            async for ev in stream:
                events.append(ev)
                if ev.type == stt.SpeechEventType.INTERIM_TRANSCRIPT:
                    srv.fault = flip_to
                    flipped.set()

        try:
            consumer = asyncio.create_task(consume())
            await _feed(stream, 0.4)  # interim at 0.3 s
            await flipped.wait()
            await _feed(stream, 1.0)  # would be the final
            if exc is None:
                done, _ = await asyncio.wait({consumer}, timeout=SILENT_WINDOW)
                assert not done
                consumer.cancel()
            else:
                with pytest.raises(exc):
                    await consumer
            assert not _texts(events, stt.SpeechEventType.FINAL_TRANSCRIPT)
        finally:
            await stream.aclose()


@bounded()
async def test_deepgram_prerecorded_recognize(session: aiohttp.ClientSession) -> None:
    async with DeepgramStandin(transcript="batch words") as srv:
        model = deepgram.STT(api_key="dg-batch", base_url=srv.base_url, http_session=session)
        ev = await model.recognize(_frames(0.5), conn_options=CO)
        assert ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT
        assert ev.alternatives[0].text == "batch words"
        assert srv.requests[0].method == "POST" and srv.requests[0].api_key == "dg-batch"


@pytest.mark.parametrize("fault", ERROR_FAULTS, ids=lambda f: f.name)
@bounded()
async def test_deepgram_faults(session: aiohttp.ClientSession, fault: Fault) -> None:
    async with DeepgramStandin(fault=fault) as srv:
        model = deepgram.STT(api_key="dg-x", base_url=srv.base_url, http_session=session)
        events: list[stt.SpeechEvent] = []
        co = _co_for(fault)

        def got_transcript() -> bool:
            return bool(_texts(events, stt.SpeechEventType.INTERIM_TRANSCRIPT))

        await _run_expecting(
            lambda: _listen(model, co, events, audio_s=2 * SILENT_WINDOW),
            DEEPGRAM_EXPECT[fault],
            co,
            got_transcript,
        )
        if fault is Fault.HANG:
            # connected, audio flowing, but not a single transcript and no error
            assert not got_transcript()
            assert srv.requests[0].audio_bytes > 0
        if fault is not Fault.REFUSE:
            assert srv.requests[0].api_key == "dg-x"


# --------------------------------------------------------------------------- TTS helpers

TEXT = "Hello there. This is the stand-in speaking."


async def _synth(
    model: tts.TTS[Any], co: APIConnectOptions, out: list[float], text: str = TEXT
) -> None:
    async with model.synthesize(text, conn_options=co) as s:
        async for ev in s:
            out.append(ev.frame.duration)


async def _stream(model: tts.TTS[Any], co: APIConnectOptions, out: list[float]) -> None:
    async with model.stream(conn_options=co) as s:
        s.push_text("Hello there. ")
        s.push_text("This is the streamed stand-in speaking.")
        s.end_input()
        async for ev in s:
            out.append(ev.frame.duration)


# --------------------------------------------------------------------------- elevenlabs


@pytest.mark.parametrize("encoding", ["pcm_22050", "mp3_22050_32"])
@pytest.mark.parametrize("mode", ["synthesize", "stream"])
@bounded()
async def test_elevenlabs_ok(session: aiohttp.ClientSession, mode: str, encoding: Any) -> None:
    async with ElevenLabsStandin() as srv:
        model = elevenlabs.TTS(
            api_key="xi-primary", base_url=srv.base_url, http_session=session, encoding=encoding
        )
        out: list[float] = []
        try:
            await (_synth if mode == "synthesize" else _stream)(model, CO, out)
        finally:
            await model.aclose()
        assert sum(out) > 1.0  # ~len(text)/15 s of tone
        req = srv.requests[0]
        assert req.api_key == "xi-primary" and req.headers["xi-api-key"] == "xi-primary"
        assert req.query["output_format"] == encoding
        if mode == "synthesize":
            assert req.path.endswith("/stream") and req.body["text"] == TEXT
        else:
            assert req.websocket and req.path.endswith("/multi-stream-input")
            assert any(m.get("close_context") for m in req.ws_messages)
            assert "".join(srv.texts).split() == (
                "Hello there. This is the streamed stand-in speaking.".split()
            )


@pytest.mark.parametrize("fault", ERROR_FAULTS, ids=lambda f: f.name)
@pytest.mark.parametrize("mode", ["synthesize", "stream"])
@bounded()
async def test_elevenlabs_faults(session: aiohttp.ClientSession, mode: str, fault: Fault) -> None:
    async with ElevenLabsStandin(fault=fault) as srv:
        model = elevenlabs.TTS(
            api_key="xi-x", base_url=srv.base_url, http_session=session, encoding="pcm_22050"
        )
        out: list[float] = []
        co = _co_for(fault)
        table = CHUNKED_TTS_EXPECT if mode == "synthesize" else ELEVENLABS_STREAM_EXPECT
        run = _synth if mode == "synthesize" else _stream
        try:
            err = await _run_expecting(
                lambda: run(model, co, out), table[fault], co, lambda: bool(out)
            )
        finally:
            await model.aclose()
        if mode == "stream" and fault is Fault.HANG:
            assert isinstance(err, APIStatusError)
            assert isinstance(err.__cause__, APITimeoutError)
        if fault is not Fault.REFUSE:
            assert srv.requests[0].api_key == "xi-x"


# --------------------------------------------------------------------------- cartesia


@pytest.mark.parametrize("mode", ["synthesize", "stream"])
@bounded()
async def test_cartesia_ok(session: aiohttp.ClientSession, mode: str) -> None:
    async with CartesiaStandin() as srv:
        model = cartesia.TTS(
            api_key="ca-primary", base_url=srv.base_url, http_session=session, sample_rate=24000
        )
        out: list[float] = []
        try:
            await (_synth if mode == "synthesize" else _stream)(model, CO, out)
        finally:
            await model.aclose()
        assert sum(out) > 1.0
        req = srv.requests[0]
        assert req.api_key == "ca-primary" and req.headers["X-API-Key"] == "ca-primary"
        if mode == "synthesize":
            assert req.path == "/tts/bytes" and req.body["transcript"] == TEXT
            assert req.body["output_format"] == {
                "container": "raw",
                "encoding": "pcm_s16le",
                "sample_rate": 24000,
            }
            assert "Cartesia-Version" in req.headers
        else:
            assert req.websocket and req.path == "/tts/websocket"
            assert "cartesia_version" in req.query
            assert req.ws_messages[-1]["continue"] is False


@pytest.mark.parametrize("fault", ERROR_FAULTS, ids=lambda f: f.name)
@pytest.mark.parametrize("mode", ["synthesize", "stream"])
@bounded()
async def test_cartesia_faults(session: aiohttp.ClientSession, mode: str, fault: Fault) -> None:
    async with CartesiaStandin(fault=fault) as srv:
        model = cartesia.TTS(api_key="ca-x", base_url=srv.base_url, http_session=session)
        out: list[float] = []
        co = _co_for(fault)
        table = CHUNKED_TTS_EXPECT if mode == "synthesize" else CARTESIA_STREAM_EXPECT
        run = _synth if mode == "synthesize" else _stream
        try:
            await _run_expecting(lambda: run(model, co, out), table[fault], co, lambda: bool(out))
        finally:
            await model.aclose()
        if fault is not Fault.REFUSE:
            assert srv.requests[0].api_key == "ca-x"


# --------------------------------------------------------------------------- openai TTS


@pytest.mark.parametrize(
    ("model_name", "fmt"),
    [("gpt-4o-mini-tts", "pcm"), ("gpt-4o-mini-tts", "mp3"), ("tts-1", "pcm"), ("tts-1", "mp3")],
)
@bounded()
async def test_openai_tts_ok(model_name: str, fmt: str) -> None:
    async with OpenAIStandin() as srv:
        model = openai.TTS(
            model=model_name, api_key="sk-tts", base_url=srv.base_url, response_format=fmt
        )
        out: list[float] = []
        try:
            await _synth(model, CO, out)
        finally:
            await model.aclose()
        assert sum(out) > 1.0
        req = srv.requests[0]
        assert req.path == "/v1/audio/speech" and req.api_key == "sk-tts"
        assert req.body["response_format"] == fmt
        assert req.body["stream_format"] == ("audio" if model_name == "tts-1" else "sse")


@pytest.mark.parametrize("fault", ERROR_FAULTS, ids=lambda f: f.name)
@bounded()
async def test_openai_tts_faults(fault: Fault) -> None:
    async with OpenAIStandin(fault=fault) as srv:
        model = openai.TTS(api_key="sk-tts", base_url=srv.base_url, response_format="pcm")
        out: list[float] = []
        co = _co_for(fault)
        try:
            await _run_expecting(
                lambda: _synth(model, co, out), CHUNKED_TTS_EXPECT[fault], co, lambda: bool(out)
            )
        finally:
            await model.aclose()
