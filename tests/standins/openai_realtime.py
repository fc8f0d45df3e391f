"""OpenAI Realtime stand-in: the GA speech-to-speech websocket, spoken by Piper.

Point the real plugin at it with::

    openai.realtime.RealtimeModel(api_key="k", base_url=srv.base_url)

Route: websocket ``GET /v1/realtime?model=…`` (``Authorization: Bearer <key>``), and
``GET /v1/models`` (key check). What it does, as OpenAI's server does with server VAD on:

- ``session.created`` on connect; ``session.update`` → ``session.updated``.
- ``input_audio_buffer.append`` (PCM16 at 24 kHz, base64): its own energy VAD. A chunk
  louder than ``speech_rms`` starts an utterance (``input_audio_buffer.speech_started``);
  ``silence`` seconds of quieter audio end it (``speech_stopped``, ``committed``, the user
  item ``conversation.item.added``, its transcript
  ``conversation.item.input_audio_transcription.completed``) and start a response.
- A response: ``response.created``, the assistant item, then its transcript and audio as
  ``response.output_audio_transcript.delta`` / ``response.output_audio.delta`` (Piper,
  resampled to 24 kHz, 100 ms per delta), the ``.done`` events and ``response.done`` with
  usage. ``response.create`` from the client starts one too; ``response.cancel`` ends the
  running one as ``cancelled``.
- ``conversation.item.create`` / ``delete`` / ``truncate`` and ``input_audio_buffer.clear``
  are answered with their ``added`` / ``deleted`` / ``truncated`` / ``cleared`` events.

The stand-in cannot recognize speech: each utterance's transcript is the next of
``transcripts`` (or ``transcript()``), and the reply is ``reply(conversation)`` over the
text of the conversation so far.

Faults (``server.fault``, read at every decision point): ``REFUSE`` (connection refused),
``STATUS_401`` / ``STATUS_429`` / ``STATUS_500`` (the websocket upgrade is answered with
that status), ``HANG_HANDSHAKE`` (the upgrade is never answered), ``HANG`` (it hears the
caller and transcribes, then never sends a response's first audio), ``DROP_MID_STREAM``
(a response's first ``drop_after`` audio deltas, then the TCP connection is reset).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from ._server import RecordedRequest, StandinServer, split_words
from .faults import Fault
from .openai import OPENAI_ERRORS

SAMPLE_RATE = 24000
"""The Realtime API's PCM16 rate, in and out."""
DELTA_SECONDS = 0.1
"""Audio per ``response.output_audio.delta``."""

ReplyFn = Callable[[list[dict[str, str]]], str]
"""``[{"role": "user" | "assistant", "text": …}, …]`` → the assistant's reply."""


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@functools.cache
def _voice() -> Any:
    from plugins.piper_tts import load_voice

    return load_voice()


def piper_pcm24k(text: str) -> bytes:
    """``text`` spoken by the default Piper voice, PCM16 mono at 24 kHz (blocking)."""
    from livekit import rtc
    from piper import SynthesisConfig

    voice = _voice()
    cfg = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    pcm = b"".join(c.audio_int16_bytes for c in voice.synthesize(text, syn_config=cfg))
    rate = voice.config.sample_rate
    resampler = rtc.AudioResampler(rate, SAMPLE_RATE, num_channels=1)
    out = [bytes(f.data) for f in resampler.push(rtc.AudioFrame(pcm, rate, 1, len(pcm) // 2))]
    out += [bytes(f.data) for f in resampler.flush()]
    return b"".join(out)


@dataclass
class _Conn:
    """One websocket session's state."""

    rec: RecordedRequest
    send: Callable[[dict[str, Any]], Any]
    items: list[dict[str, str]] = field(default_factory=list)
    """The conversation as text: ``{"id", "role", "text"}``."""
    speaking: bool = False
    loud_at: float = 0.0
    """Seconds of audio received when the last loud chunk arrived."""
    heard: float = 0.0
    """Seconds of audio received in all."""
    item_id: str = ""
    response: asyncio.Task[None] | None = None
    cancelled: bool = False
    audio_deltas: int = 0


class RealtimeStandin(StandinServer):
    def __init__(
        self,
        *,
        transcripts: Iterable[str] = (),
        transcript: Callable[[], str] | None = None,
        reply: str | ReplyFn = "Hello from the realtime stand-in.",
        speech_rms: float = 500.0,
        silence: float = 0.3,
        processing: float = 0.0,
        fault: Fault = Fault.OK,
        valid_keys: Iterable[str] | None = None,
        drop_after: int = 3,
        usage_per_second: int = 10,
    ) -> None:
        """
        Args:
            transcripts: each detected utterance's transcript, in order (then ``transcript``).
            transcript: the transcript of an utterance past ``transcripts``.
            reply: the assistant reply, or a function of the conversation so far.
            speech_rms: int16 RMS above which a chunk is speech.
            silence: seconds of quieter audio that end an utterance (server VAD).
            processing: seconds the "model" thinks before its first audio (a fixed, known
                delay a benchmark subtracts).
            drop_after: DROP_MID_STREAM aborts after this many audio deltas of a response.
            usage_per_second: audio tokens billed per second of audio, in and out.
        """
        super().__init__(fault=fault, valid_keys=valid_keys, drop_after=drop_after)
        self._transcripts = list(transcripts)
        self._transcript = transcript
        self.reply = reply
        self.speech_rms = speech_rms
        self.silence = silence
        self.processing = processing
        self.usage_per_second = usage_per_second
        self.connections: list[_Conn] = []
        self.responses_done = 0
        self.first_audio_at: list[float] = []
        """``time.monotonic()`` of each response's first audio delta."""
        self.speech_stopped_at: list[float] = []

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def sessions(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.websocket]

    def client_events(self, kind: str) -> list[dict[str, Any]]:
        """Every client event of type ``kind`` across sessions."""
        return [
            m
            for r in self.sessions
            for m in r.ws_messages
            if isinstance(m, dict) and m.get("type") == kind
        ]

    def _setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/realtime", self._realtime)
        app.router.add_get("/v1/models", self._models)

    def error_response(self, status: int, message: str) -> web.Response:
        type_, code = OPENAI_ERRORS.get(status, ("server_error", "error"))
        body = {"error": {"message": message, "type": type_, "code": code, "param": None}}
        return web.json_response(body, status=status)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        _, early = await self.preflight(request)
        if early is not None:
            return early
        return web.json_response({"object": "list", "data": [{"id": "gpt-realtime"}]})

    def _next_transcript(self) -> str:
        if self._transcripts:
            return self._transcripts.pop(0)
        return self._transcript() if self._transcript else "hello"

    # ------------------------------------------------------------------ websocket

    async def _realtime(self, request: web.Request) -> web.StreamResponse:
        rec, early = await self.preflight(request, websocket=True)
        if early is not None:
            return early
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)

        async def send(msg: dict[str, Any]) -> bool:
            if self.fault is Fault.REFUSE:
                self.abort(request)
                return False
            if ws.closed:
                return False
            msg.setdefault("event_id", _id("event"))
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(msg)
                return True
            return False

        conn = _Conn(rec, send)
        self.connections.append(conn)
        session = {"id": _id("sess"), "object": "realtime.session", "type": "realtime"}
        await send({"type": "session.created", "session": session})
        try:
            async for msg in self.json_messages(ws, rec):
                await self._on_client_event(request, conn, msg)
        finally:
            if conn.response is not None:
                conn.response.cancel()
        return ws

    async def _on_client_event(
        self, request: web.Request, conn: _Conn, msg: dict[str, Any]
    ) -> None:
        kind = msg.get("type")
        if kind == "session.update":
            session = {"id": _id("sess"), "type": "realtime", **(msg.get("session") or {})}
            await conn.send({"type": "session.updated", "session": session})
        elif kind == "input_audio_buffer.append":
            await self._on_audio(request, conn, base64.b64decode(msg.get("audio", "")))
        elif kind == "input_audio_buffer.clear":
            await conn.send({"type": "input_audio_buffer.cleared"})
        elif kind == "input_audio_buffer.commit":
            await conn.send({"type": "input_audio_buffer.committed", "item_id": _id("item")})
        elif kind == "conversation.item.create":
            item = dict(msg.get("item") or {})
            item.setdefault("id", _id("item"))
            previous = msg.get("previous_item_id")
            text = "".join(
                str(part.get("text") or part.get("transcript") or "")
                for part in item.get("content") or []
                if isinstance(part, dict)
            )
            if item.get("type") == "message" and item.get("role") in ("user", "assistant"):
                conn.items.append({"id": item["id"], "role": item["role"], "text": text})
            added: dict[str, Any] = {
                "type": "conversation.item.added",
                "item": item,
                "previous_item_id": None if previous == "root" else previous,
            }
            await conn.send(added)
        elif kind == "conversation.item.delete":
            item_id = msg.get("item_id")
            conn.items = [i for i in conn.items if i["id"] != item_id]
            await conn.send({"type": "conversation.item.deleted", "item_id": item_id})
        elif kind == "conversation.item.truncate":
            await conn.send(
                {
                    "type": "conversation.item.truncated",
                    "item_id": msg.get("item_id"),
                    "content_index": msg.get("content_index", 0),
                    "audio_end_ms": msg.get("audio_end_ms", 0),
                }
            )
        elif kind == "response.create":
            metadata = (msg.get("response") or {}).get("metadata")
            self._start_response(request, conn, metadata)
        elif kind == "response.cancel":
            if conn.response is not None and not conn.response.done():
                conn.cancelled = True

    async def _on_audio(self, request: web.Request, conn: _Conn, pcm: bytes) -> None:
        seconds = len(pcm) / 2 / SAMPLE_RATE
        conn.heard += seconds
        loud = _rms(pcm) >= self.speech_rms
        if loud:
            conn.loud_at = conn.heard
            if not conn.speaking:
                conn.speaking = True
                conn.item_id = _id("item")
                await conn.send(
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": int((conn.heard - seconds) * 1000),
                        "item_id": conn.item_id,
                    }
                )
            return
        if conn.speaking and conn.heard - conn.loud_at >= self.silence:
            conn.speaking = False
            await self._end_utterance(request, conn)

    async def _end_utterance(self, request: web.Request, conn: _Conn) -> None:
        self.speech_stopped_at.append(time.monotonic())
        item_id = conn.item_id
        previous = conn.items[-1]["id"] if conn.items else None
        await conn.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": int(conn.loud_at * 1000),
                "item_id": item_id,
            }
        )
        await conn.send(
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": previous,
            }
        )
        item = {
            "id": item_id,
            "type": "message",
            "object": "realtime.item",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await conn.send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        text = self._next_transcript()
        conn.items.append({"id": item_id, "role": "user", "text": text})
        await conn.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": round(conn.loud_at, 3)},
            }
        )
        self._start_response(request, conn, None)

    def _start_response(
        self, request: web.Request, conn: _Conn, metadata: dict[str, Any] | None
    ) -> None:
        if conn.response is not None and not conn.response.done():
            return  # one response at a time, as OpenAI's server does
        conn.cancelled = False
        conn.response = asyncio.create_task(self._respond(request, conn, metadata))

    async def _respond(
        self, request: web.Request, conn: _Conn, metadata: dict[str, Any] | None
    ) -> None:
        response_id, item_id = _id("resp"), _id("item")
        history = [{"role": i["role"], "text": i["text"]} for i in conn.items]
        text = self.reply(history) if callable(self.reply) else self.reply
        base = {"id": response_id, "object": "realtime.response", "metadata": metadata}
        await conn.send(
            {
                "type": "response.created",
                "response": {**base, "status": "in_progress", "output": []},
            }
        )
        item = {
            "id": item_id,
            "type": "message",
            "object": "realtime.item",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        ids = {"response_id": response_id, "item_id": item_id, "output_index": 0}
        await conn.send({"type": "response.output_item.added", **ids, "item": item})
        previous = conn.items[-1]["id"] if conn.items else None
        await conn.send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item}
        )
        conn.items.append({"id": item_id, "role": "assistant", "text": text})
        await conn.send(
            {
                "type": "response.content_part.added",
                **ids,
                "content_index": 0,
                "part": {"type": "audio", "transcript": ""},
            }
        )
        started = time.monotonic()
        pcm = await asyncio.to_thread(piper_pcm24k, text)
        # the "model's" fixed thinking time, from the moment it began (Piper's time included)
        await asyncio.sleep(max(0.0, self.processing - (time.monotonic() - started)))
        if self.fault in (Fault.HANG, Fault.HANG_HANDSHAKE):
            await self.hang(request)
            return
        for word in split_words(text):
            await conn.send(
                {
                    "type": "response.output_audio_transcript.delta",
                    **ids,
                    "content_index": 0,
                    "delta": word,
                }
            )
        step = int(SAMPLE_RATE * DELTA_SECONDS) * 2
        sent = 0
        for offset in range(0, len(pcm), step):
            if conn.cancelled:
                break
            if self.fault is Fault.DROP_MID_STREAM and sent >= self.drop_after:
                self.abort(request)
                return
            if self.fault in (Fault.HANG, Fault.HANG_HANDSHAKE):
                await self.hang(request)
                return
            chunk = base64.b64encode(pcm[offset : offset + step]).decode()
            if not await conn.send(
                {"type": "response.output_audio.delta", **ids, "content_index": 0, "delta": chunk}
            ):
                return
            if sent == 0:
                self.first_audio_at.append(time.monotonic())
            sent += 1
            conn.audio_deltas += 1
            # paced a little faster than real time, as the real API streams
            await asyncio.sleep(DELTA_SECONDS / 4)
        status = "cancelled" if conn.cancelled else "completed"
        await conn.send({"type": "response.output_audio.done", **ids, "content_index": 0})
        await conn.send(
            {
                "type": "response.output_audio_transcript.done",
                **ids,
                "content_index": 0,
                "transcript": text,
            }
        )
        part = {"type": "audio", "transcript": text}
        await conn.send(
            {"type": "response.content_part.done", **ids, "content_index": 0, "part": part}
        )
        done_item = {
            **item,
            "status": "completed",
            "content": [{"type": "output_audio", "transcript": text}],
        }
        await conn.send({"type": "response.output_item.done", **ids, "item": done_item})
        await conn.send(
            {
                "type": "response.done",
                "response": {
                    **base,
                    "status": status,
                    "output": [done_item],
                    "usage": self._usage(conn, history, text, sent),
                },
            }
        )
        self.responses_done += 1

    def _usage(
        self, conn: _Conn, history: list[dict[str, str]], text: str, deltas: int
    ) -> dict[str, Any]:
        """Tokens as OpenAI counts them: the whole conversation is input again (its earlier
        part cached), the reply's transcript and audio are output."""
        text_in = sum(len(h["text"].split()) for h in history)
        audio_in = int(conn.heard * self.usage_per_second)
        audio_out = int(deltas * DELTA_SECONDS * self.usage_per_second)
        text_out = len(text.split())
        cached_text = text_in // 2
        return {
            "total_tokens": text_in + audio_in + audio_out + text_out,
            "input_tokens": text_in + audio_in,
            "output_tokens": text_out + audio_out,
            "input_token_details": {
                "text_tokens": text_in,
                "audio_tokens": audio_in,
                "cached_tokens": cached_text,
                "cached_tokens_details": {"text_tokens": cached_text, "audio_tokens": 0},
            },
            "output_token_details": {"text_tokens": text_out, "audio_tokens": audio_out},
        }
