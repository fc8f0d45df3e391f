"""Cartesia stand-in: ``/tts/bytes``, the ``/tts/websocket`` stream, ``/voices``.

Point the real plugin at it with::

    cartesia.TTS(api_key="k", base_url=srv.base_url, http_session=session)

``srv.base_url`` is ``http://127.0.0.1:<port>`` (no version prefix, like
``https://api.cartesia.ai``). The plugin always asks for raw ``pcm_s16le`` at its
``sample_rate``; the stand-in answers at whatever ``output_format.sample_rate`` asks.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
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


def render_audio(text: str, output_format: dict[str, Any], chars_per_second: float) -> bytes:
    """Audio for ``text`` in a Cartesia ``output_format`` (raw/wav/mp3 container;
    pcm_s16le or pcm_f32le encoding)."""
    rate = int(output_format.get("sample_rate") or 24000)
    container = str(output_format.get("container") or "raw")
    encoding = str(output_format.get("encoding") or "pcm_s16le")
    pcm = tone_pcm(text_duration(text, chars_per_second=chars_per_second), rate)
    if container == "raw":
        if encoding == "pcm_s16le":
            return pcm
        if encoding == "pcm_f32le":
            return (np.frombuffer(pcm, dtype="<i2").astype("<f4") / 32768.0).tobytes()
        raise ValueError(f"stand-in does not produce encoding {encoding!r}")
    if container in ("wav", "mp3"):
        return encode_audio(
            pcm, rate, container, bit_rate=int(output_format.get("bit_rate") or 128000)
        )
    raise ValueError(f"stand-in does not produce container {container!r}")


class CartesiaStandin(StandinServer):
    """Routes: ``POST /tts/bytes`` (streamed body), websocket ``GET /tts/websocket``,
    ``GET /voices`` (key check).

    Websocket protocol: every generation request with non-blank ``transcript`` is
    answered with ``chunks_per_transcript`` ``{"type": "chunk", "data": b64, ...}``
    messages and, if ``add_timestamps``, a ``{"type": "timestamps", "word_timestamps"}``
    message; a request with ``"continue": false`` is then answered with
    ``{"type": "done", "done": true}``. ``{"cancel": true}`` is acknowledged silently.
    DROP_MID_STREAM counts audio chunks.
    """

    def __init__(
        self,
        *,
        chunks_per_transcript: int = 2,
        chars_per_second: float = 15.0,
        fault: Fault = Fault.OK,
        valid_keys: Iterable[str] | None = None,
        chunk_delay: float = 0.0,
        drop_after: int = 1,
    ) -> None:
        super().__init__(
            fault=fault, valid_keys=valid_keys, chunk_delay=chunk_delay, drop_after=drop_after
        )
        self.chunks_per_transcript = max(1, chunks_per_transcript)
        self.chars_per_second = chars_per_second
        self.ws_connections = 0
        self.texts: list[str] = []
        """Every non-blank transcript synthesized, over HTTP or websocket, in order."""

    def _setup_routes(self, app: web.Application) -> None:
        app.router.add_post("/tts/bytes", self._bytes)
        app.router.add_get("/tts/websocket", self._ws)
        app.router.add_get("/voices", self._voices)
        app.router.add_get("/voices/", self._voices)

    def is_streaming_route(self, request: web.Request) -> bool:
        return request.path.startswith("/tts/")

    def error_response(self, status: int, message: str) -> web.Response:
        return web.json_response(
            {"error": message, "status_code": status},
            status=status,
            headers={"X-Request-Id": uuid.uuid4().hex},
        )

    async def _voices(self, request: web.Request) -> web.StreamResponse:
        _, early = await self.preflight(request)
        if early is not None:
            return early
        return web.json_response(
            {
                "data": [
                    {
                        "id": str(uuid.UUID(int=2)),
                        "name": "Stand-in",
                        "language": "en",
                        "is_public": True,
                    }
                ],
                "has_more": False,
            }
        )

    async def _bytes(self, request: web.Request) -> web.StreamResponse:
        rec, early = await self.preflight(request)
        if early is not None:
            return early
        body: dict[str, Any] = rec.body if isinstance(rec.body, dict) else {}
        text = str(body.get("transcript", ""))
        try:
            audio = render_audio(text, body.get("output_format") or {}, self.chars_per_second)
        except ValueError as e:
            return self.error_response(400, str(e))
        self.texts.append(text)
        resp = web.StreamResponse(
            headers={"Content-Type": "application/octet-stream", "X-Request-Id": uuid.uuid4().hex}
        )
        await resp.prepare(request)
        for i, piece in enumerate(split_bytes(audio, 4)):
            if not await self.stream_gate(request, i):
                return resp
            await resp.write(piece)
        await resp.write_eof()
        return resp

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        rec, early = await self.preflight(request, websocket=True)
        if early is not None:
            return early
        ws = web.WebSocketResponse(autoping=True)
        ws.headers["X-Request-Id"] = uuid.uuid4().hex
        await ws.prepare(request)
        self.ws_connections += 1
        try:
            await self._ws_session(request, ws, rec)
        except ConnectionError:
            pass
        return ws

    async def _ws_session(
        self, request: web.Request, ws: web.WebSocketResponse, rec: RecordedRequest
    ) -> None:
        send = self.ws_sender(request, ws, lambda msg: msg.get("type") == "chunk")
        spoken: set[str] = set()

        async for data in self.json_messages(ws, rec):
            context_id = str(data.get("context_id") or uuid.uuid4().hex)
            if data.get("cancel"):
                continue

            transcript = data.get("transcript")
            if isinstance(transcript, str) and transcript.strip():
                self.texts.append(transcript)
                await self.first_of_context(spoken, context_id)
                try:
                    audio = render_audio(
                        transcript, data.get("output_format") or {}, self.chars_per_second
                    )
                except ValueError as e:
                    await send(
                        {
                            "type": "error",
                            "context_id": context_id,
                            "status_code": 400,
                            "done": True,
                            "error": str(e),
                        }
                    )
                    continue
                for piece in split_bytes(audio, self.chunks_per_transcript):
                    ok = await send(
                        {
                            "type": "chunk",
                            "data": base64.b64encode(piece).decode(),
                            "done": False,
                            "status_code": 206,
                            "step_time": 1.0,
                            "context_id": context_id,
                        }
                    )
                    if not ok:
                        return
                if data.get("add_timestamps"):
                    words = transcript.split()
                    step = text_duration(transcript, chars_per_second=self.chars_per_second) / max(
                        1, len(words)
                    )
                    if not await send(
                        {
                            "type": "timestamps",
                            "done": False,
                            "status_code": 206,
                            "context_id": context_id,
                            "word_timestamps": {
                                "words": words,
                                "start": [round(i * step, 3) for i in range(len(words))],
                                "end": [round((i + 1) * step, 3) for i in range(len(words))],
                            },
                        }
                    ):
                        return

            if data.get("continue") is False and not await send(
                {"type": "done", "done": True, "status_code": 200, "context_id": context_id}
            ):
                return
