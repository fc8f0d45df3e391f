"""ElevenLabs stand-in: chunked TTS, multi-context websocket TTS, user/models/voices.

Point the real plugin at it with::

    elevenlabs.TTS(api_key="k", base_url=srv.base_url, http_session=session,
                   encoding="pcm_22050")

``srv.base_url`` is ``http://127.0.0.1:<port>/v1`` (the plugin appends
``/text-to-speech/...`` and swaps http->ws itself). Any ``encoding`` works: pcm_* is
raw, mp3_* and opus_* are really encoded (libmp3lame / libopus through PyAV). The
text-to-dialogue models (eleven_v3*, eleven_v4*) are not implemented (404).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from ._server import (
    RecordedRequest,
    StandinServer,
    encode_audio,
    split_bytes,
    text_duration,
    tone_pcm,
)
from .faults import Fault

_CONTENT_TYPES = {"pcm": "audio/pcm", "mp3": "audio/mpeg", "opus": "audio/ogg"}
_ERRORS: dict[int, str] = {
    400: "invalid_request",
    401: "invalid_api_key",
    402: "payment_required",
    403: "missing_permissions",
    429: "too_many_concurrent_requests",
    500: "internal_server_error",
}


def parse_output_format(output_format: str) -> tuple[str, int, int]:
    """``pcm_22050`` -> ("pcm", 22050, 0); ``mp3_22050_32`` -> ("mp3", 22050, 32000)."""
    parts = output_format.split("_")
    kind = parts[0]
    if kind not in _CONTENT_TYPES or len(parts) < 2:
        raise ValueError(f"unsupported output_format {output_format!r}")
    rate = int(parts[1])
    bit_rate = int(parts[2]) * 1000 if len(parts) > 2 else 128000
    return kind, rate, bit_rate


def _alignment(text: str, duration_ms: float) -> dict[str, list[Any]]:
    chars = list(text)
    step = duration_ms / max(1, len(chars))
    return {
        "chars": chars,
        "charStartTimesMs": [int(i * step) for i in range(len(chars))],
        "charDurationsMs": [max(1, int(step)) for _ in chars],
    }


class ElevenLabsStandin(StandinServer):
    """Routes: ``POST /v1/text-to-speech/{voice_id}[/stream]`` (chunked audio),
    websocket ``GET /v1/text-to-speech/{voice_id}/multi-stream-input``,
    ``GET /v1/user`` / ``/v1/models`` / ``/v1/voices`` (key checks).

    Websocket protocol (multi-context): every message with non-blank ``text`` is answered
    with ``audio_messages_per_text`` messages ``{"audio": b64, "contextId", "alignment",
    "normalizedAlignment"}`` of a tone whose duration is proportional to the text; a
    ``close_context`` message is answered with ``{"contextId", "isFinal": true}``;
    ``close_socket`` closes. DROP_MID_STREAM counts audio messages.
    """

    def __init__(
        self,
        *,
        audio_messages_per_text: int = 2,
        chars_per_second: float = 15.0,
        fault: Fault = Fault.OK,
        valid_keys: Iterable[str] | None = None,
        chunk_delay: float = 0.0,
        drop_after: int = 1,
    ) -> None:
        super().__init__(
            fault=fault, valid_keys=valid_keys, chunk_delay=chunk_delay, drop_after=drop_after
        )
        self.audio_messages_per_text = max(1, audio_messages_per_text)
        self.chars_per_second = chars_per_second
        self.ws_connections = 0
        self.texts: list[str] = []
        """Every non-blank text synthesized, over HTTP or websocket, in order."""

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def _setup_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/text-to-speech/{voice_id}/stream", self._synthesize)
        app.router.add_post("/v1/text-to-speech/{voice_id}", self._synthesize)
        app.router.add_get("/v1/text-to-speech/{voice_id}/multi-stream-input", self._multi_ws)
        app.router.add_get("/v1/user", self._user)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/voices", self._voices)

    def is_streaming_route(self, request: web.Request) -> bool:
        return request.path.startswith("/v1/text-to-speech/")

    def error_response(self, status: int, message: str) -> web.Response:
        return web.json_response(
            {"detail": {"status": _ERRORS.get(status, "error"), "message": message}},
            status=status,
            headers={"x-trace-id": uuid.uuid4().hex},
        )

    def _audio(self, text: str, output_format: str) -> tuple[bytes, float]:
        kind, rate, bit_rate = parse_output_format(output_format)
        duration = text_duration(text, chars_per_second=self.chars_per_second)
        return encode_audio(tone_pcm(duration, rate), rate, kind, bit_rate=bit_rate), duration

    # ---------------------------------------------------------------- key checks

    async def _user(self, request: web.Request) -> web.StreamResponse:
        _, early = await self.preflight(request)
        if early is not None:
            return early
        return web.json_response(
            {
                "user_id": "standin",
                "subscription": {
                    "tier": "creator",
                    "character_count": 0,
                    "character_limit": 100000,
                    "status": "active",
                },
                "is_new_user": False,
            }
        )

    async def _models(self, request: web.Request) -> web.StreamResponse:
        _, early = await self.preflight(request)
        if early is not None:
            return early
        names = ("eleven_turbo_v2_5", "eleven_flash_v2_5", "eleven_multilingual_v2")
        return web.json_response(
            [{"model_id": m, "name": m, "can_do_text_to_speech": True} for m in names]
        )

    async def _voices(self, request: web.Request) -> web.StreamResponse:
        _, early = await self.preflight(request)
        if early is not None:
            return early
        return web.json_response(
            {"voices": [{"voice_id": "standin-voice", "name": "Stand-in", "category": "premade"}]}
        )

    # ---------------------------------------------------------------- synthesis

    async def _synthesize(self, request: web.Request) -> web.StreamResponse:
        rec, early = await self.preflight(request)
        if early is not None:
            return early
        body: dict[str, Any] = rec.body if isinstance(rec.body, dict) else {}
        text = str(body.get("text", ""))
        output_format = rec.query.get("output_format", "mp3_44100_128")
        try:
            audio, _ = self._audio(text, output_format)
        except ValueError as e:
            return self.error_response(400, str(e))
        self.texts.append(text)
        kind = output_format.split("_")[0]
        resp = web.StreamResponse(
            headers={
                "Content-Type": _CONTENT_TYPES[kind],
                "x-trace-id": uuid.uuid4().hex,
                "request-id": uuid.uuid4().hex,
            }
        )
        await resp.prepare(request)
        for i, piece in enumerate(split_bytes(audio, 4)):
            if not await self.stream_gate(request, i):
                return resp
            await resp.write(piece)
        await resp.write_eof()
        return resp

    async def _multi_ws(self, request: web.Request) -> web.StreamResponse:
        rec, early = await self.preflight(request, websocket=True)
        if early is not None:
            return early
        output_format = rec.query.get("output_format", "mp3_44100_128")
        try:
            parse_output_format(output_format)
        except ValueError as e:
            return self.error_response(400, str(e))
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.ws_connections += 1
        try:
            await self._multi_session(request, ws, rec, output_format)
        except ConnectionError:
            pass
        return ws

    async def _multi_session(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        rec: RecordedRequest,
        output_format: str,
    ) -> None:
        send = self.ws_sender(request, ws, lambda msg: "audio" in msg)
        spoken: set[str] = set()

        async for data in self.json_messages(ws, rec):
            context_id = str(data.get("context_id") or data.get("contextId") or "default")

            if data.get("close_socket"):
                if self.fault not in (Fault.HANG, Fault.HANG_HANDSHAKE):
                    await ws.close()
                return

            text = data.get("text")
            if isinstance(text, str) and text.strip():
                self.texts.append(text)
                await self.first_of_context(spoken, context_id)
                audio, duration = self._audio(text, output_format)
                pieces = split_bytes(audio, self.audio_messages_per_text)
                for i, piece in enumerate(pieces):
                    out: dict[str, Any] = {
                        "audio": base64.b64encode(piece).decode(),
                        "contextId": context_id,
                        "isFinal": None,
                    }
                    if i == 0:
                        out["alignment"] = _alignment(text, duration * 1000)
                        out["normalizedAlignment"] = _alignment(text, duration * 1000)
                    if not await send(out):
                        return

            if data.get("close_context") and not await send(
                {"contextId": context_id, "isFinal": True}
            ):
                return
