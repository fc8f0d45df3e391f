"""The real-room test rig: a LiveKit server built from its Go module, workers as real
``python -m agent start`` subprocesses, and loopback servers (backend, provider stand-ins)
on a background event loop so every test's caller can use its own.

Each process writes its log to a file the test can read; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from tests.support.env import clean_environ
from tests.support.net import HOST, free_port

ROOT = Path(__file__).resolve().parents[2]
SERVER_BIN = Path(os.environ.get("LIVEKIT_SERVER_BIN", ROOT / ".bin" / "livekit-server"))
REDIS_BIN = shutil.which("redis-server") or "redis-server"
API_KEY = "devkey"
API_SECRET = "secret"
BACKEND_KEY = "e2e-internal-key"

T = TypeVar("T")


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class LoopThread:
    """An event loop on a daemon thread, for servers that outlive one test's loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@dataclass
class LiveKitServer:
    """``livekit-server --dev`` on 127.0.0.1 with its own ports, so a developer's server on
    7880 is left alone."""

    log_path: Path
    port: int = field(default_factory=free_port)
    rtc_tcp_port: int = field(default_factory=free_port)
    rtc_udp_port: int = field(default_factory=free_port)
    redis: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def start(self, timeout: float = 30) -> LiveKitServer:
        config = "\n".join(
            [
                f"port: {self.port}",
                "rtc:",
                f"  tcp_port: {self.rtc_tcp_port}",
                f"  udp_port: {self.rtc_udp_port}",
                "  use_external_ip: false",
                f"  node_ip: {HOST}",
                f"keys: {{{API_KEY}: {API_SECRET}}}",
                *([f"redis: {{address: '{self.redis}'}}"] if self.redis else []),
            ]
        )
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(SERVER_BIN), "--dev", "--bind", HOST, "--config-body", config],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._ready, timeout, f"livekit-server on {self.url} (log: {self.log_path})")
        return self

    def log_events(self, message: str) -> list[tuple[float, dict[str, Any]]]:
        """The server's log lines with ``message``, as (unix time, fields). Its console
        format: ``time<TAB>level<TAB>logger<TAB>caller<TAB>message<TAB>{json fields}``."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            parts = line.split("\t")
            if len(parts) >= 6 and parts[4] == message:
                at = datetime.fromisoformat(parts[0].replace("Z", "+00:00")).timestamp()
                try:
                    out.append((at, json.loads(parts[5])))
                except ValueError:
                    continue
        return out

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"livekit-server exited; its log: {self.log_path}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        _stop(self.process)


@dataclass
class RedisServer:
    """Debian's ``redis-server`` on 127.0.0.1, in memory only: the bus LiveKit nodes share."""

    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout: float = 15) -> RedisServer:
        args = ["--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [REDIS_BIN, *args],
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._ready, timeout, f"redis-server on {self.address}")
        return self

    def _ready(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        _stop(self.process)


class Worker:
    """``python -m agent start`` as a real subprocess, its JSON log in a file."""

    def __init__(self, server: LiveKitServer, log_dir: Path, name: str, **env: str) -> None:
        self.name = name
        self.log_path = log_dir / f"worker-{name}-{uuid.uuid4().hex[:6]}.log"
        self.env = {
            **clean_environ(),  # nothing of a developer's shell or .env
            "LIVEKIT_URL": server.url,
            "LIVEKIT_API_KEY": API_KEY,
            "LIVEKIT_API_SECRET": API_SECRET,
            "AGENT_HTTP_PORT": str(free_port()),
            "STATUS_PORT": str(free_port()),
            "PROMETHEUS_PORT": str(free_port()),
            "USAGE_SPOOL_DIR": str(log_dir / f"spool-{name}"),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.http_port = 0
        self.status_url = f"http://{HOST}:{self.env['STATUS_PORT']}"
        self.metrics_url = f"http://{HOST}:{self.env['PROMETHEUS_PORT']}/metrics"

    def start(self, timeout: float = 90) -> Worker:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "agent", "start"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_for_log(
            lambda r: r.get("message") == "registered worker", timeout, "worker registration"
        )
        listening = self.wait_for_log(
            lambda r: str(r.get("message", "")).startswith("HTTP server listening on "),
            5,
            "the worker's HTTP port",
        )
        self.http_port = int(listening["message"].rsplit(":", 1)[1])
        return self

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """One scrape of the worker's Prometheus endpoint: (name, labels) → value."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            text = r.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def replies(self) -> float:
        """Replies the worker has started (livekit's voice-to-voice count); 0 while its
        metrics page does not answer."""
        try:
            scrape = self.metrics()
        except OSError:
            return 0
        return sum(
            v for (n, _), v in scrape.items() if n == "voice_agent_voice_to_voice_seconds_count"
        )

    def active_jobs(self) -> int:
        """From the worker's own HTTP server (livekit's ``/worker`` route)."""
        url = f"http://{HOST}:{self.http_port}/worker"
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(json.loads(r.read()).get("active_jobs", 0))

    def wait_available(self, timeout: float = 20) -> None:
        """Until the worker has no call and has told the server it takes calls again (its
        status goes out every 2.5 s; a dispatch before that finds it full)."""

        def available() -> bool:
            states = [
                r["message"]
                for r in self.records()
                if str(r.get("message", "")).startswith("worker is ")
            ]
            # no status line yet: it never was full
            return self.active_jobs() == 0 and (not states or "below capacity" in states[-1])

        wait_until(available, timeout, f"worker {self.name} to be available")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def records(self) -> list[dict[str, Any]]:
        """The worker's JSON log records so far (non-JSON lines are skipped)."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def wait_for_log(self, match: Any, timeout: float, what: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def seen() -> bool:
            if not self.alive and self.process is not None:
                raise RuntimeError(f"worker {self.name} exited; its log: {self.log_path}")
            found[:] = [r for r in self.records() if match(r)]
            return bool(found)

        wait_until(seen, timeout, f"{what} in {self.log_path}")
        return found[0]

    def calls(self) -> list[dict[str, Any]]:
        """One record per call this worker configured (``call configured``)."""
        return [r for r in self.records() if r.get("message") == "call configured"]

    def call_in(self, room: str) -> dict[str, Any] | None:
        return next((r for r in self.calls() if r.get("room") == room), None)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self) -> None:
        _stop(self.process)


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(5)


@dataclass
class Workers:
    """Workers started by one test, stopped when it ends."""

    server: LiveKitServer
    log_dir: Path
    started: list[Worker] = field(default_factory=list)

    def start(self, *names: str, **env: str) -> list[Worker]:
        """Start workers side by side (their model loads overlap) and wait for all."""
        pool = [Worker(self.server, self.log_dir, name, **env) for name in names]
        self.started.extend(pool)
        with ThreadPoolExecutor(len(pool)) as ex:
            return list(ex.map(Worker.start, pool))

    def stop(self) -> None:
        for worker in self.started:
            worker.stop()
