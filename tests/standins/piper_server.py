"""Piper's real HTTP server in a subprocess, plus broken servers for the error ladder.

Everything binds 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from aiohttp import web

from tests.support.net import HOST, free_port


@dataclass(frozen=True)
class PiperServer:
    host: str
    port: int
    process: subprocess.Popen[bytes]


def _wait_ready(proc: subprocess.Popen[bytes], port: int, deadline: float) -> None:
    url = f"http://{HOST}:{port}/info"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"piper.http_server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                json.load(resp)
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            time.sleep(0.2)
    raise TimeoutError("piper.http_server did not become ready")


@contextlib.contextmanager
def run_piper_server(voice_path: str, *, startup_timeout: float = 60.0) -> Iterator[PiperServer]:
    """``python -m piper.http_server`` on a free port; killed on exit.

    Its log goes to a temporary file (a pipe nobody reads would fill up and stall it)
    and is quoted if start-up fails.
    """
    port = free_port()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "piper.http_server", "-m", voice_path]
            + ["--host", HOST, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            try:
                _wait_ready(proc, port, time.monotonic() + startup_timeout)
            except Exception as e:
                log.seek(0)
                tail = log.read()[-2000:].decode(errors="replace")
                raise RuntimeError(f"piper.http_server failed to start:\n{tail}") from e
            yield PiperServer(host=HOST, port=port, process=proc)
        finally:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.asynccontextmanager
async def hung_server() -> AsyncIterator[int]:
    """Accepts connections, reads the request, never answers; yields the port."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while await reader.read(4096):
                pass
        writer.close()

    server = await asyncio.start_server(handle, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def status_server(status: int) -> AsyncIterator[int]:
    """Answers every request with ``status``; yields the port."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, text="synthesis failed")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    port = int(sock.getsockname()[1])
    await web.SockSite(runner, sock).start()
    try:
        yield port
    finally:
        await runner.cleanup()
