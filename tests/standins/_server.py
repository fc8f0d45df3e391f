"""Shared machinery of the provider stand-ins: server lifecycle on 127.0.0.1, the
REFUSE/HANG/DROP fault plumbing, request recording and audio generation."""

from __future__ import annotations

import asyncio
import io
import json
import math
import re
import socket
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web
from multidict import CIMultiDict, MultiDict
from typing_extensions import Self

from .faults import Fault

HOST = "127.0.0.1"

# headers a provider reads the API key from, in the order they are checked
_KEY_HEADERS = ("xi-api-key", "x-api-key")
_AUTH_SCHEMES = ("bearer ", "token ")


@dataclass
class RecordedRequest:
    """One HTTP request or websocket connection a stand-in received."""

    method: str
    path: str
    query: MultiDict[str]
    headers: CIMultiDict[str]
    body: Any = None
    """Parsed JSON body (None when there was none / it was not JSON)."""
    raw_body: bytes = b""
    websocket: bool = False
    ws_messages: list[Any] = field(default_factory=list)
    """Websocket text messages received, JSON-decoded when possible."""
    audio_bytes: int = 0
    """Websocket binary payload bytes received (audio)."""
    fault: Fault = Fault.OK
    """The fault in effect when the request arrived."""
    timestamp: float = field(default_factory=time.monotonic)
    handled: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    """Set once the handler returned: a streamed response (audio, SSE, a websocket session)
    has been written in full, or cut short by a fault."""

    @property
    def api_key(self) -> str | None:
        """The credential the client sent: ``Authorization: Bearer/Token <k>``,
        ``xi-api-key``, ``X-API-Key`` header, or an ``api_key`` query parameter."""
        auth = self.headers.get("Authorization")
        if auth:
            for scheme in _AUTH_SCHEMES:
                if auth.lower().startswith(scheme):
                    return auth[len(scheme) :].strip()
            return auth.strip()
        for name in _KEY_HEADERS:
            if value := self.headers.get(name):
                return value
        return self.query.get("api_key")


# --------------------------------------------------------------------------- audio


def tone_pcm(
    duration: float, sample_rate: int, *, freq: float = 440.0, amplitude: float = 0.2
) -> bytes:
    """Mono int16 little-endian sine tone."""
    n = max(1, int(round(duration * sample_rate)))
    t = np.arange(n, dtype=np.float64) / sample_rate
    samples = np.sin(2.0 * math.pi * freq * t) * (amplitude * 32767.0)
    return samples.astype("<i2").tobytes()


def text_duration(text: str, *, chars_per_second: float = 15.0, minimum: float = 0.2) -> float:
    """Duration of synthesized speech for ``text``: proportional to its length."""
    return max(minimum, len(text.strip()) / chars_per_second)


def pcm_to_wav(pcm: bytes, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()


def _encode_with_av(
    pcm: bytes, sample_rate: int, *, container: str, codec: str, bit_rate: int
) -> bytes:
    import av  # bundled with livekit-agents (used by its decoder)

    arr = np.frombuffer(pcm, dtype="<i2")
    buf = io.BytesIO()
    # mp3: bare frames (no ID3 tag, no Xing/LAME info frame), so that segments encoded
    # separately (one per websocket text chunk) can be concatenated into one valid stream
    options = {"write_xing": "0", "id3v2_version": "0", "write_id3v1": "0"}
    with av.open(buf, "w", format=container, options=options if container == "mp3" else {}) as out:
        stream: Any = out.add_stream(codec, rate=sample_rate)
        stream.bit_rate = bit_rate
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(arr.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def encode_audio(pcm: bytes, sample_rate: int, fmt: str, *, bit_rate: int = 32000) -> bytes:
    """Encode mono int16 PCM as ``pcm`` (raw), ``wav``, ``mp3`` or ``opus`` (ogg)."""
    if fmt == "pcm":
        return pcm
    if fmt == "wav":
        return pcm_to_wav(pcm, sample_rate)
    if fmt == "mp3":
        return _encode_with_av(
            pcm, sample_rate, container="mp3", codec="libmp3lame", bit_rate=bit_rate
        )
    if fmt == "opus":
        if sample_rate != 48000:
            arr = np.frombuffer(pcm, dtype="<i2")
            idx = np.minimum(
                (np.arange(int(len(arr) * 48000 / sample_rate)) * sample_rate / 48000).astype(
                    np.int64
                ),
                len(arr) - 1,
            )
            pcm, sample_rate = arr[idx].astype("<i2").tobytes(), 48000
        return _encode_with_av(
            pcm, sample_rate, container="ogg", codec="libopus", bit_rate=bit_rate
        )
    raise ValueError(f"stand-in cannot encode audio format {fmt!r}")


def split_bytes(data: bytes, n_chunks: int) -> list[bytes]:
    n_chunks = max(1, min(n_chunks, len(data)))
    size = math.ceil(len(data) / n_chunks)
    return [data[i : i + size] for i in range(0, len(data), size)]


def split_words(text: str) -> list[str]:
    """Split keeping the trailing whitespace on each piece, so ''.join() == text."""
    return re.findall(r"\S+\s*|\s+", text) or [text]


# --------------------------------------------------------------------------- server

_RECORD = web.RequestKey("recorded request", RecordedRequest)


@web.middleware
async def _mark_handled(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    finally:
        if (rec := request.get(_RECORD)) is not None:
            rec.handled.set()


class StandinServer:
    """Base class: an aiohttp application on 127.0.0.1:<ephemeral port> with faults.

    Subclasses implement ``_setup_routes`` and ``error_response`` and call
    ``await self.preflight(request)`` at the top of every handler.
    """

    def __init__(
        self,
        *,
        fault: Fault = Fault.OK,
        valid_keys: Iterable[str] | None = None,
        chunk_delay: float = 0.0,
        drop_after: int = 1,
    ) -> None:
        """
        Args:
            fault: initial fault.
            valid_keys: API keys the stand-in accepts; others get 401 like the real API.
                None accepts any non-empty key.
            chunk_delay: seconds between streamed chunks / messages.
            drop_after: DROP_MID_STREAM sends this many chunks / messages before aborting.
        """
        self.valid_keys: set[str] | None = set(valid_keys) if valid_keys is not None else None
        self.redirect_to = "http://127.0.0.1:9/"
        """Where ``Fault.REDIRECT`` sends a client."""
        self.chunk_delay = chunk_delay
        self.first_byte_delay = 0.0
        """Seconds before the first chunk of every streamed answer (a websocket TTS: of
        every context): a real provider's fixed time to first byte, for benchmarks."""
        self.drop_after = drop_after
        self.requests: list[RecordedRequest] = []
        self.port = 0
        self._fault = fault
        self._runner: web.AppRunner | None = None
        self._aserver: asyncio.AbstractServer | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None
        self._closing = asyncio.Event()
        self._recorded = asyncio.Event()
        self._started = False

    # ---------------------------------------------------------------- public API

    @property
    def root_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """The value to pass as the plugin's ``base_url``. Overridden per provider."""
        return self.root_url

    @property
    def fault(self) -> Fault:
        return self._fault

    @fault.setter
    def fault(self, value: Fault) -> None:
        previous, self._fault = self._fault, value
        if not self._started:
            return
        if value is Fault.REFUSE and previous is not Fault.REFUSE:
            self._stop_listening()
        elif value is not Fault.REFUSE and previous is Fault.REFUSE:
            # the socket is bound and listening synchronously (connects queue in the
            # backlog); the accept loop starts on the next event-loop iteration
            self._start_listening()

    async def set_fault(self, value: Fault) -> None:
        """Like ``server.fault = value`` but also waits until accepting resumes."""
        self.fault = value
        if self._listen_task is not None and value is not Fault.REFUSE:
            await asyncio.shield(self._listen_task)

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def requests_to(self, path_fragment: str) -> list[RecordedRequest]:
        """Recorded requests whose path contains ``path_fragment``."""
        return [r for r in self.requests if path_fragment in r.path]

    async def wait_for_request(self, path_fragment: str, timeout: float) -> RecordedRequest:
        """The first recorded request whose path contains ``path_fragment``, waiting up to
        ``timeout`` seconds for it to arrive."""

        async def first() -> RecordedRequest:
            while not (found := self.requests_to(path_fragment)):
                self._recorded.clear()
                await self._recorded.wait()
            return found[0]

        return await asyncio.wait_for(first(), timeout)

    @property
    def api_keys_seen(self) -> list[str | None]:
        return [r.api_key for r in self.requests]

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(middlewares=[_mark_handled])
        self._setup_routes(app)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        self._started = True
        self._start_listening()
        if self._listen_task is not None:
            await self._listen_task
        if self._fault is Fault.REFUSE:
            self._stop_listening()

    async def stop(self) -> None:
        self._closing.set()
        self._stop_listening()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._started = False

    # ---------------------------------------------------------------- for subclasses

    def _setup_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def error_response(self, status: int, message: str) -> web.Response:
        """A provider-style error response."""
        return web.json_response({"error": message}, status=status)

    def key_ok(self, key: str | None) -> bool:
        if not key:
            return False
        return self.valid_keys is None or key in self.valid_keys

    async def record(self, request: web.Request, *, websocket: bool = False) -> RecordedRequest:
        raw = b"" if websocket else await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        rec = RecordedRequest(
            method=request.method,
            path=request.path,
            query=MultiDict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
            raw_body=raw,
            websocket=websocket,
            fault=self._fault,
        )
        self.requests.append(rec)
        request[_RECORD] = rec
        self._recorded.set()
        return rec

    async def preflight(
        self, request: web.Request, *, websocket: bool = False
    ) -> tuple[RecordedRequest, web.StreamResponse | None]:
        """Record the request and apply request-level faults.

        Returns the record and, if the request must not be served normally, the
        response to return instead. HANG on plain HTTP never returns until shutdown.
        """
        rec = await self.record(request, websocket=websocket)
        fault = self._fault
        if fault is Fault.REFUSE:  # raced with the listener shutting down
            self.abort(request)
            return rec, web.Response(status=503)
        if (status := fault.status) is not None:
            return rec, self.error_response(status, f"stand-in fault {fault.name}")
        if fault in (Fault.ECHO_401, Fault.ECHO_500):
            headers = json.dumps(dict(rec.headers))
            message = f"Incorrect API key provided: {rec.api_key}. url={request.url} {headers}"
            return rec, self.error_response(401 if fault is Fault.ECHO_401 else 500, message)
        if fault is Fault.GARBAGE:
            page = "<html><body>Welcome to the proxy</body></html>"
            return rec, web.Response(text=page, content_type="text/html")
        if fault is Fault.REDIRECT:
            return rec, web.Response(status=302, headers={"Location": self.redirect_to})
        if fault is Fault.HANG_HANDSHAKE or (fault is Fault.HANG and not websocket):
            await self.hang(request)
            return rec, web.Response(status=503)
        if fault is Fault.DROP_MID_STREAM and not self.is_streaming_route(request):
            self.abort(request)
            return rec, web.Response(status=503)
        if not self.key_ok(rec.api_key):
            return rec, self.error_response(401, "invalid API key")
        return rec, None

    def is_streaming_route(self, request: web.Request) -> bool:
        """Whether the route sends output progressively (DROP is applied mid-stream)."""
        return True

    async def hang(self, request: web.Request | None = None) -> None:
        """Block until the stand-in shuts down, then abort the connection."""
        await self._closing.wait()
        if request is not None:
            self.abort(request)

    def ws_sender(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        is_audio: Callable[[dict[str, Any]], bool],
    ) -> Callable[[dict[str, Any]], Awaitable[bool]]:
        """``send(msg)`` for one websocket session, applying the runtime fault: HANG says
        nothing, REFUSE aborts, DROP_MID_STREAM aborts after ``drop_after`` audio messages.
        It returns False once the connection is gone."""
        sent = 0

        async def send(msg: dict[str, Any]) -> bool:
            nonlocal sent
            fault = self.fault
            if fault in (Fault.HANG, Fault.HANG_HANDSHAKE):
                return True  # a hung provider says nothing
            audio = is_audio(msg)
            if fault is Fault.REFUSE or (
                fault is Fault.DROP_MID_STREAM and audio and sent >= self.drop_after
            ):
                self.abort(request)
                return False
            if self.chunk_delay and audio:
                await asyncio.sleep(self.chunk_delay)
            await ws.send_str(json.dumps(msg))
            sent += audio
            return True

        return send

    @staticmethod
    async def json_messages(
        ws: web.WebSocketResponse, rec: RecordedRequest
    ) -> AsyncIterator[dict[str, Any]]:
        """The JSON objects the client sends as text frames, recorded on ``rec``; binary
        frames and bad JSON are skipped; ends when the socket closes."""
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                return
            try:
                data: Any = json.loads(msg.data)
            except ValueError:
                continue
            rec.ws_messages.append(data)
            if isinstance(data, dict):
                yield data

    def abort(self, request: web.Request) -> None:
        transport = request.transport
        if transport is not None:
            transport.abort()

    async def stream_gate(self, request: web.Request, index: int) -> bool:
        """Call before sending streamed chunk/message ``index`` (0-based).

        Applies runtime faults: HANG stalls forever (until shutdown), DROP_MID_STREAM
        aborts the connection once ``drop_after`` chunks went out, REFUSE aborts. Returns
        False when the caller must stop sending (connection aborted)."""
        fault = self._fault
        if fault is Fault.REFUSE:
            self.abort(request)
            return False
        if fault is Fault.DROP_MID_STREAM and index >= self.drop_after:
            self.abort(request)
            return False
        if fault in (Fault.HANG, Fault.HANG_HANDSHAKE):
            await self.hang(request)
            return False
        if self.chunk_delay and index > 0:
            await asyncio.sleep(self.chunk_delay)
        if self.first_byte_delay and index == 0:
            await asyncio.sleep(self.first_byte_delay)
        return True

    async def first_of_context(self, seen: set[str], context_id: str) -> None:
        """Call before a websocket session's output for ``context_id``: waits
        ``first_byte_delay`` the first time that context speaks."""
        if context_id not in seen:
            seen.add(context_id)
            if self.first_byte_delay:
                await asyncio.sleep(self.first_byte_delay)

    # ---------------------------------------------------------------- listening

    def _start_listening(self) -> None:
        assert self._runner is not None and self._runner.server is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._sock = sock
        loop = asyncio.get_running_loop()
        server_factory = self._runner.server

        async def _serve() -> None:
            # start_serving=False: no suspension point before self._aserver is set
            server = await loop.create_server(server_factory, sock=sock, start_serving=False)
            self._aserver = server
            self._sock = None
            await server.start_serving()

        self._listen_task = asyncio.create_task(_serve())

    def _stop_listening(self) -> None:
        if self._listen_task is not None and not self._listen_task.done():
            self._listen_task.cancel()
        if self._aserver is not None:
            self._aserver.close()  # closes the listening socket synchronously
            self._aserver = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._runner is not None and self._runner.server is not None:
            for handler in self._runner.server.connections:
                if handler.transport is not None:
                    handler.transport.abort()
