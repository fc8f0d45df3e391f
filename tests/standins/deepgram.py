"""Deepgram stand-in: live transcription websocket, prerecorded POST, projects list.

Point the real plugin at it with::

    deepgram.STT(api_key="k", base_url=srv.base_url, http_session=session)

``srv.base_url`` is the full ``.../v1/listen`` endpoint, because that is what the
plugin's ``base_url`` means (it swaps http->ws itself for streaming).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web

from ._server import RecordedRequest, StandinServer
from .faults import Fault

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Bad Request", "Bad request."),
    401: ("INVALID_AUTH", "Invalid credentials."),
    402: ("ASR_PAYMENT_REQUIRED", "Project does not have enough credits."),
    403: ("INSUFFICIENT_PERMISSIONS", "Insufficient permissions."),
    429: ("TOO_MANY_REQUESTS", "Too many requests. Please try again later."),
    500: ("INTERNAL_SERVER_ERROR", "Internal server error."),
}


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


class DeepgramStandin(StandinServer):
    """Routes: websocket ``GET /v1/listen`` (live), ``POST /v1/listen`` (prerecorded),
    ``GET /v1/projects`` (key check).

    Live protocol: binary frames are linear16 audio at the ``sample_rate``/``channels``
    query params. Per utterance, once ``interim_after`` seconds of audio arrived it sends
    ``SpeechStarted`` (if ``vad_events=true``) and an interim ``Results`` with the first
    half of the transcript's words; at ``final_after`` seconds a final ``Results``
    (``is_final`` and ``speech_final`` true) with the whole transcript. A ``Finalize``
    message finalizes a pending utterance at once (``from_finalize: true``),
    ``CloseStream`` finalizes, sends ``Metadata`` and closes (1000), ``KeepAlive`` is
    counted. With ``repeat=True`` each further ``final_after`` seconds is another
    utterance.

    With ``speech_rms`` it listens as Deepgram does instead: silence is never transcribed;
    an utterance starts with the first message louder than ``speech_rms`` (int16 RMS), and
    its final comes once ``endpointing`` seconds of quieter audio follow; every utterance
    is transcribed (``final_after`` and ``repeat`` do not apply). A simulated call, whose
    caller sends silence between turns, needs this.
    """

    def __init__(
        self,
        *,
        transcript: str | Callable[[], str] = "hello from the deepgram stand-in",
        transcripts: Sequence[str] = (),
        interim_after: float = 0.3,
        final_after: float = 1.0,
        repeat: bool = False,
        confidence: float = 0.98,
        fault: Fault = Fault.OK,
        valid_keys: Iterable[str] | None = None,
        chunk_delay: float = 0.0,
        drop_after: int = 1,
        speech_rms: float | None = None,
        endpointing: float = 0.5,
    ) -> None:
        """
        Args:
            transcript: text of each utterance (or a function returning it).
            transcripts: when given, the n-th utterance of each connection is
                ``transcripts[n % len(transcripts)]`` instead: every caller of a benchmark
                asks its own questions in order.
            interim_after: seconds of received audio before the interim result.
            final_after: seconds of received audio before the final result.
            repeat: emit another utterance per further ``final_after`` seconds of audio.
            drop_after: DROP_MID_STREAM aborts after this many ``Results`` messages.
            speech_rms: transcribe speech only (see the class docstring).
            endpointing: with ``speech_rms``, seconds of silence that end an utterance.
        """
        super().__init__(
            fault=fault, valid_keys=valid_keys, chunk_delay=chunk_delay, drop_after=drop_after
        )
        self.transcript = transcript
        self.transcripts = list(transcripts)
        self.interim_after = interim_after
        self.final_after = final_after
        self.repeat = repeat
        self.speech_rms = speech_rms
        self.endpointing = endpointing
        self.confidence = confidence
        self.keepalives = 0
        self.finalize_messages = 0
        self.close_stream_messages = 0
        self.ws_connections = 0

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1/listen"

    def _setup_routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/listen", self._listen_ws)
        app.router.add_post("/v1/listen", self._listen_prerecorded)
        app.router.add_get("/v1/projects", self._projects)

    def is_streaming_route(self, request: web.Request) -> bool:
        return request.path == "/v1/listen" and request.method == "GET"

    def error_response(self, status: int, message: str) -> web.Response:
        code, msg = _ERRORS.get(status, ("ERROR", message))
        return web.json_response(
            {"err_code": code, "err_msg": msg, "request_id": str(uuid.uuid4())},
            status=status,
            headers={"dg-request-id": str(uuid.uuid4())},
        )

    def _text(self, utterance: int = 0) -> str:
        if self.transcripts:
            return self.transcripts[utterance % len(self.transcripts)]
        return self.transcript() if callable(self.transcript) else self.transcript

    # ---------------------------------------------------------------- message builders

    def _words(self, text: str, start: float, duration: float) -> list[dict[str, Any]]:
        words = text.split()
        if not words:
            return []
        step = duration / len(words)
        return [
            {
                "word": w.strip(".,!?;:").lower(),
                "start": round(start + i * step, 3),
                "end": round(start + (i + 1) * step, 3),
                "confidence": self.confidence,
                "punctuated_word": w,
            }
            for i, w in enumerate(words)
        ]

    def _results(
        self,
        *,
        text: str,
        start: float,
        duration: float,
        is_final: bool,
        request_id: str,
        from_finalize: bool = False,
    ) -> dict[str, Any]:
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(duration, 3),
            "start": round(start, 3),
            "is_final": is_final,
            "speech_final": is_final,
            "from_finalize": from_finalize,
            "channel": {
                "alternatives": [
                    {
                        "transcript": text,
                        "confidence": self.confidence if text else 0.0,
                        "words": self._words(text, start, duration),
                    }
                ]
            },
            "metadata": {
                "request_id": request_id,
                "model_info": {"name": "standin", "version": "1", "arch": "standin"},
                "model_uuid": str(uuid.UUID(int=0)),
            },
        }

    # ---------------------------------------------------------------- handlers

    async def _projects(self, request: web.Request) -> web.StreamResponse:
        _, early = await self.preflight(request)
        if early is not None:
            return early
        return web.json_response(
            {"projects": [{"project_id": str(uuid.UUID(int=1)), "name": "stand-in project"}]}
        )

    async def _listen_prerecorded(self, request: web.Request) -> web.StreamResponse:
        rec, early = await self.preflight(request)
        if early is not None:
            return early
        text = self._text()
        # a WAV body: 16-bit mono, 44-byte header
        duration = max(0.0, (len(rec.raw_body) - 44) / 2 / 16000)
        alt = {
            "transcript": text,
            "confidence": self.confidence,
            "words": self._words(text, 0.0, duration or 1.0),
        }
        return web.json_response(
            {
                "metadata": {
                    "request_id": str(uuid.uuid4()),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "duration": duration,
                    "channels": 1,
                },
                "results": {"channels": [{"alternatives": [alt]}]},
            }
        )

    async def _listen_ws(self, request: web.Request) -> web.StreamResponse:
        rec, early = await self.preflight(request, websocket=True)
        if early is not None:
            return early
        ws = web.WebSocketResponse(autoping=True)
        request_id = str(uuid.uuid4())
        ws.headers["dg-request-id"] = request_id
        await ws.prepare(request)
        self.ws_connections += 1
        try:
            await self._live_session(request, ws, rec, request_id)
        except ConnectionError:
            pass
        return ws

    async def _live_session(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        rec: RecordedRequest,
        request_id: str,
    ) -> None:
        q = rec.query
        sample_rate = int(q.get("sample_rate", "16000"))
        channels = int(q.get("channels", "1"))
        vad_events = q.get("vad_events", "false") == "true"
        interim_results = q.get("interim_results", "false") == "true"
        bytes_per_s = float(sample_rate * channels * 2)

        received_s = 0.0  # audio seconds received on this connection
        utt_start = 0.0  # where the current utterance begins
        interim_sent = False
        done = False  # no more utterances (repeat=False)
        speaking = False  # speech_rms mode: an utterance is under way
        last_loud = 0.0  # speech_rms mode: where the last loud audio ended
        sent = 0  # transcript messages sent (for DROP_MID_STREAM)
        utterances = 0  # finals sent on this connection

        async def send(msg: dict[str, Any]) -> bool:
            # only Results messages count towards DROP_MID_STREAM's drop_after
            nonlocal sent
            fault = self.fault
            if fault in (Fault.HANG, Fault.HANG_HANDSHAKE):
                return True  # swallow: a hung provider says nothing
            is_result = msg.get("type") == "Results"
            if fault is Fault.REFUSE or (
                fault is Fault.DROP_MID_STREAM and is_result and sent >= self.drop_after
            ):
                self.abort(request)
                return False
            if self.chunk_delay and is_result:
                await asyncio.sleep(self.chunk_delay)
            await ws.send_str(json.dumps(msg))
            sent += is_result
            return True

        async def emit_final(*, from_finalize: bool) -> bool:
            nonlocal utt_start, interim_sent, done, speaking, utterances
            if self.speech_rms is not None:
                end = last_loud
            else:
                end = received_s if from_finalize else utt_start + self.final_after
            ok = await send(
                self._results(
                    text=self._text(utterances),
                    start=utt_start,
                    duration=max(0.0, end - utt_start),
                    is_final=True,
                    request_id=request_id,
                    from_finalize=from_finalize,
                )
            )
            utt_start, interim_sent, speaking = end, False, False
            utterances += 1
            done = not self.repeat and self.speech_rms is None
            return ok

        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                rec.audio_bytes += len(msg.data)
                received_s += len(msg.data) / bytes_per_s
                if self.fault is Fault.DROP_MID_STREAM and sent >= self.drop_after:
                    self.abort(request)
                    return
                if done:
                    continue
                if self.speech_rms is not None:
                    if _rms(msg.data) > self.speech_rms:
                        speaking, last_loud = True, received_s
                    elif not speaking:
                        utt_start = received_s  # silence before speech: nothing to say
                        continue
                    elif received_s - last_loud >= self.endpointing:
                        if not await emit_final(from_finalize=False):
                            return
                        continue
                if not interim_sent and received_s - utt_start >= self.interim_after:
                    interim_sent = True
                    if vad_events and not await send(
                        {"type": "SpeechStarted", "channel": [0, 1], "timestamp": utt_start}
                    ):
                        return
                    if interim_results:
                        words = self._text(utterances).split()
                        partial = " ".join(words[: max(1, (len(words) + 1) // 2)])
                        if not await send(
                            self._results(
                                text=partial,
                                start=utt_start,
                                duration=received_s - utt_start,
                                is_final=False,
                                request_id=request_id,
                            )
                        ):
                            return
                if (
                    self.speech_rms is None
                    and interim_sent
                    and received_s - utt_start >= self.final_after
                ):
                    if not await emit_final(from_finalize=False):
                        return
            elif msg.type == aiohttp.WSMsgType.TEXT:
                try:
                    data: Any = json.loads(msg.data)
                except ValueError:
                    data = msg.data
                rec.ws_messages.append(data)
                mtype = data.get("type") if isinstance(data, dict) else None
                if mtype == "KeepAlive":
                    self.keepalives += 1
                elif mtype == "Finalize":
                    self.finalize_messages += 1
                    if (
                        (speaking if self.speech_rms is not None else interim_sent)
                        and not done
                        and not await emit_final(from_finalize=True)
                    ):
                        return
                elif mtype == "CloseStream":
                    self.close_stream_messages += 1
                    if (
                        (speaking if self.speech_rms is not None else interim_sent)
                        and not done
                        and not await emit_final(from_finalize=True)
                    ):
                        return
                    if not await send(
                        {
                            "type": "Metadata",
                            "transaction_key": "deprecated",
                            "request_id": request_id,
                            "sha256": "",
                            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "duration": round(received_s, 3),
                            "channels": channels,
                        }
                    ):
                        return
                    if self.fault in (Fault.HANG, Fault.HANG_HANDSHAKE):
                        await self.hang(request)
                    else:
                        await ws.close(code=1000)
                    return
            else:
                return
