"""OpenAI-compatible stand-in: streaming chat completions, model list, speech.

Point the real plugin at it with::

    openai.LLM(model="gpt-4o-mini", api_key="k", base_url=srv.base_url)
    openai.TTS(api_key="k", base_url=srv.base_url, response_format="pcm")

(the openai plugins use the ``openai`` SDK over httpx, they take no aiohttp session).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from ._server import (
    StandinServer,
    encode_audio,
    split_bytes,
    split_words,
    text_duration,
    tone_pcm,
)
from .faults import Fault

ReplyFn = Callable[[list[dict[str, Any]]], str]

TTS_SAMPLE_RATE = 24000  # what livekit's openai.TTS decodes at
_TTS_CONTENT_TYPES = {
    "pcm": "audio/pcm",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
}
OPENAI_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    402: ("insufficient_quota", "insufficient_quota"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
}
"""HTTP status → the error ``type`` and ``code`` OpenAI's APIs answer it with (its
Realtime API too)."""


def message_text(message: dict[str, Any]) -> str:
    """Text of a chat message whose content is a string or a list of parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class OpenAIStandin(StandinServer):
    """Routes: ``POST /v1/chat/completions`` (SSE when ``stream: true``),
    ``GET /v1/models`` (key check), ``POST /v1/audio/speech`` (pcm/wav/mp3/opus, raw or
    ``stream_format: sse``)."""

    def __init__(
        self,
        *,
        reply: str | ReplyFn = "Hello from the OpenAI stand-in.",
        chunk_words: int = 1,
        models: Iterable[str] = ("gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini-tts"),
        fault: Fault = Fault.OK,
        valid_keys: Iterable[str] | None = None,
        chunk_delay: float = 0.0,
        drop_after: int = 1,
    ) -> None:
        """
        Args:
            reply: the assistant reply, or a function of the request's ``messages``.
            chunk_words: words per streamed content delta.
            models: ids listed by ``GET /v1/models``.
        """
        super().__init__(
            fault=fault, valid_keys=valid_keys, chunk_delay=chunk_delay, drop_after=drop_after
        )
        self.reply = reply
        self.chunk_words = max(1, chunk_words)
        self.models = list(models)

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def chat_requests(self) -> list[Any]:
        return self.requests_to("/chat/completions")

    def _setup_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/speech", self._speech)

    def is_streaming_route(self, request: web.Request) -> bool:
        return request.path != "/v1/models"

    def error_response(self, status: int, message: str) -> web.Response:
        etype, code = OPENAI_ERRORS.get(status, ("server_error", "error"))
        return web.json_response(
            {"error": {"message": message, "type": etype, "param": None, "code": code}},
            status=status,
            headers={"x-request-id": f"req_{uuid.uuid4().hex}"},
        )

    # ---------------------------------------------------------------- handlers

    async def _models(self, request: web.Request) -> web.StreamResponse:
        _, early = await self.preflight(request)
        if early is not None:
            return early
        now = int(time.time())
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": now, "owned_by": "standin"}
                    for m in self.models
                ],
            }
        )

    def _reply_for(self, messages: list[dict[str, Any]]) -> str:
        return self.reply(messages) if callable(self.reply) else self.reply

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        rec, early = await self.preflight(request)
        if early is not None:
            return early
        body: dict[str, Any] = rec.body if isinstance(rec.body, dict) else {}
        messages: list[dict[str, Any]] = body.get("messages") or []
        model = str(body.get("model", "standin"))
        temperature = body.get("temperature")
        if isinstance(temperature, (int, float)) and not 0 <= temperature <= 2:
            # as OpenAI answers a request its caller got wrong: 400, naming the parameter
            return self.error_response(
                400,
                f"Invalid 'temperature': decimal above maximum value. Expected a value <= 2, "
                f"but got {temperature} instead.",
            )
        text = self._reply_for(messages)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        prompt_tokens = sum(len(message_text(m).split()) for m in messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        headers = {"x-request-id": f"req_{uuid.uuid4().hex}"}

        if not body.get("stream"):
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
                headers=headers,
            )

        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            c: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                c["usage"] = None
            return c

        words = split_words(text) if text else [""]
        pieces = [
            "".join(words[i : i + self.chunk_words]) for i in range(0, len(words), self.chunk_words)
        ]
        chunks = [chunk({"role": "assistant", "content": pieces[0]}, None)]
        chunks += [chunk({"content": p}, None) for p in pieces[1:]]
        chunks.append(chunk({}, "stop"))
        if include_usage:
            chunks.append(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": None,
                    "choices": [],
                    "usage": usage,
                }
            )

        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **headers,
            }
        )
        await resp.prepare(request)
        for i, c in enumerate(chunks):
            if not await self.stream_gate(request, i):
                return resp
            await resp.write(f"data: {json.dumps(c)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        rec, early = await self.preflight(request)
        if early is not None:
            return early
        body: dict[str, Any] = rec.body if isinstance(rec.body, dict) else {}
        text = str(body.get("input", ""))
        fmt = str(body.get("response_format") or "mp3")
        if fmt not in _TTS_CONTENT_TYPES:
            return self.error_response(400, f"stand-in does not produce {fmt!r} audio")
        audio = encode_audio(tone_pcm(text_duration(text), TTS_SAMPLE_RATE), TTS_SAMPLE_RATE, fmt)
        pieces = split_bytes(audio, 4)
        request_id = f"req_{uuid.uuid4().hex}"

        if body.get("stream_format") == "sse":
            resp = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "x-request-id": request_id}
            )
            await resp.prepare(request)
            for i, piece in enumerate(pieces):
                if not await self.stream_gate(request, i):
                    return resp
                event = {"type": "speech.audio.delta", "audio": base64.b64encode(piece).decode()}
                await resp.write(f"data: {json.dumps(event)}\n\n".encode())
            n_in = len(text.split())
            done = {
                "type": "speech.audio.done",
                "usage": {"input_tokens": n_in, "output_tokens": len(pieces), "total_tokens": 0},
            }
            await resp.write(f"data: {json.dumps(done)}\n\n".encode())
            await resp.write_eof()
            return resp

        resp = web.StreamResponse(
            headers={"Content-Type": _TTS_CONTENT_TYPES[fmt], "x-request-id": request_id}
        )
        await resp.prepare(request)
        for i, piece in enumerate(pieces):
            if not await self.stream_gate(request, i):
                return resp
            await resp.write(piece)
        await resp.write_eof()
        return resp
