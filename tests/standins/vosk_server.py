"""A stand-in for vosk-server on 127.0.0.1: our reimplementation of the WebSocket protocol
of alphacephei's ``websocket/asr_server.py`` over the real ``vosk`` library and model, in the
test's own event loop (upstream's script is not on PyPI). Plus deliberately broken servers.

Protocol (as asr_server.py): an optional text ``{"config": {...}}`` (no reply), then every
message gets exactly one JSON reply: binary PCM -> ``Result()`` when Vosk's endpointing
closes an utterance, else ``PartialResult()``; the exact text ``{"reset" : 1}`` ->
``FinalResult()`` and the connection stays open for the next utterance; the exact text
``{"eof" : 1}`` -> ``FinalResult()`` and the server closes the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import vosk
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from plugins.vosk_stt import load_model
from tests.support.net import HOST

EOF_MSG = '{"eof" : 1}'
RESET_MSG = '{"reset" : 1}'


def _process_chunk(rec: Any, message: str | bytes) -> tuple[str, bool]:
    if message == EOF_MSG:
        return rec.FinalResult(), True
    if message == RESET_MSG:
        return rec.FinalResult(), False
    if rec.AcceptWaveform(message):
        return rec.Result(), False
    return rec.PartialResult(), False


@dataclass
class VoskServer:
    host: str
    port: int
    _server: Server | None = field(default=None, repr=False)
    accepted: int = 0
    """How many WebSocket connections were accepted (to check a client reconnected)."""
    resets: int = 0
    """How many ``reset`` messages were answered."""

    def __iter__(self) -> Iterator[Any]:
        """``host, port = server``."""
        return iter((self.host, self.port))

    def kill(self) -> None:
        """Die like a crashed server: stop listening and drop every connection without a
        close frame (the client sees an abnormal closure, not a clean one)."""
        assert self._server is not None
        self._server.server.close()
        for conn in self._server.connections:
            conn.transport.abort()


@contextlib.asynccontextmanager
async def serve_vosk(model_path: str, *, sample_rate: float = 8000) -> AsyncIterator[VoskServer]:
    """Serve ``model_path`` on a free port of 127.0.0.1 until the block exits.

    The model comes from the plugin's per-process cache, so a test that also runs the
    in-process mode does not load it twice. ``sample_rate`` is asr_server's default, used
    until a client's config says otherwise.
    """
    model = await asyncio.get_running_loop().run_in_executor(None, load_model, model_path)
    info = VoskServer(HOST, 0)

    async def recognize(ws: ServerConnection) -> None:
        info.accepted += 1
        loop = asyncio.get_running_loop()
        rec: Any = None
        rate = sample_rate
        try:
            while True:
                message = await ws.recv()
                if isinstance(message, str) and "config" in message:
                    config = json.loads(message)["config"]
                    rate = float(config.get("sample_rate", rate))
                    continue
                if rec is None:
                    rec = vosk.KaldiRecognizer(model, rate)
                    rec.SetWords(True)
                response, stop = await loop.run_in_executor(None, _process_chunk, rec, message)
                info.resets += message == RESET_MSG
                await ws.send(response)
                if stop:
                    break
        except ConnectionClosed:
            pass

    async with serve(recognize, HOST, 0, compression=None) as server:
        info.port = int(server.sockets[0].getsockname()[1])
        info._server = server
        yield info
        server.close(close_connections=False)
        for conn in server.connections:
            conn.transport.abort()


@contextlib.asynccontextmanager
async def serve_raw(reply: str | None) -> AsyncIterator[tuple[str, int]]:
    """A broken server. ``reply=None``: accepts TCP but never answers the WebSocket
    handshake (the timeout case). Otherwise a WebSocket server answering every message
    with ``reply`` (the malformed-reply case)."""
    if reply is None:

        async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                await reader.read()  # until the client gives up
            writer.close()

        tcp = await asyncio.start_server(stall, HOST, 0)
        try:
            yield HOST, int(tcp.sockets[0].getsockname()[1])
        finally:
            tcp.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(tcp.wait_closed(), 1.0)
        return

    async def answer(ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                await ws.send(reply)

    async with serve(answer, HOST, 0) as server:
        yield HOST, int(server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def serve_script(*replies: str) -> AsyncIterator[tuple[str, int]]:
    """A WebSocket server that answers the n-th message after the config with ``replies[n]``
    (the last one again once the script runs out), like vosk-server's one reply per message;
    ``eof`` is answered and closes. For replies a real model cannot be made to send."""

    async def answer(ws: ServerConnection) -> None:
        n = 0
        with contextlib.suppress(ConnectionClosed):
            async for message in ws:
                if isinstance(message, str) and "config" in message:
                    continue
                await ws.send(replies[min(n, len(replies) - 1)])
                n += 1
                if message == EOF_MSG:
                    break

    async with serve(answer, HOST, 0) as server:
        yield HOST, int(server.sockets[0].getsockname()[1])
