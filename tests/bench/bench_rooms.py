"""Real rooms: voice-to-voice through a LiveKit server (at the caller, over WebRTC) beside
``simulate`` for the same utterances, and the worker's memory, CPU and voice-to-voice with
1, 2 and 4 concurrent local calls under each job executor (``thread``, ``process``).

Needs the server binary (``make livekit-server``); without it the section reports that and
measures nothing. Run directly with ``python -m tests.bench.bench_rooms``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from agent.tools.caller_audio import say
from agent.tools.room_call import CallOptions, place_call
from agent.tools.transcript import CallResult
from tests.bench.bench_voice import QUESTIONS, _p95, _row, simulated
from tests.e2e.rig import API_KEY, API_SECRET, SERVER_BIN, LiveKitServer, Worker

AGENT = "bench-agent"
TURNS = 8
CONCURRENCY = (1, 2, 4)
EXECUTORS = ("thread", "process")
CALL_TURNS = 3
"""Questions per call in the concurrency runs."""
TIMEOUT = 180.0

Row = dict[str, Any]


def _env(faq: Path, executor: str) -> dict[str, str]:
    return {
        "AGENT_NAME": AGENT,
        "DEFAULT_ORGANIZATION_ID": "bench",
        "STT_PROVIDER": "whisper",
        "STT_FALLBACK": "",
        "LLM_PROVIDER": "offline",
        "TTS_PROVIDER": "piper",
        "TTS_FALLBACK": "",
        "AGENT_GREETING": "",
        "AGENT_FAQ_FILE": str(faq),
        "JOB_EXECUTOR": executor,
        # count-based load: livekit's default (CPU, full at 0.7) turns calls away on 2 cores
        "MAX_CONCURRENT_CALLS": str(max(CONCURRENCY)),
    }


class _Sampler:
    """Samples a worker's process tree: peak resident memory and CPU seconds used."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu0 = self._cpu()
        self._t0 = time.monotonic()

    def _tree(self) -> list[psutil.Process]:
        return [self._root, *self._root.children(recursive=True)]

    def _cpu(self) -> float:
        """The tree's CPU so far, with that of children already ended and reaped (the
        process executor's call processes), which would otherwise vanish with them."""
        total = 0.0
        for p in self._tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return total

    def rss(self) -> int:
        total = 0
        for p in self._tree():
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.peak_rss = max(self.peak_rss, self.rss())

    def __enter__(self) -> _Sampler:
        self._cpu0, self._t0 = self._cpu(), time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu_seconds = self._cpu() - self._cpu0
        self.wall = time.monotonic() - self._t0


def call_options(server: LiveKitServer, output: Path) -> CallOptions:
    """A bench caller of the bench agent on ``server``, recording to ``output``."""
    return CallOptions(
        url=server.url,
        api_key=API_KEY,
        api_secret=API_SECRET,
        agent_name=AGENT,
        output=output,
        timeout=TIMEOUT - 10,
    )


async def _calls(
    server: LiveKitServer, n: int, sentences: list[str], out: Path
) -> list[CallResult]:
    frames = await say(sentences)

    async def one(i: int) -> CallResult:
        return await place_call(call_options(server, out / f"call-{n}-{i}.wav"), frames)

    return list(await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), TIMEOUT))


def _v2v_rows(prefix: str, values: list[float]) -> list[Row]:
    if not values:
        return [_row(f"{prefix}_turns", 0, "turns")]
    return [
        _row(f"{prefix}_median", statistics.median(values), "s"),
        _row(f"{prefix}_p95", _p95(values), "s"),
        _row(f"{prefix}_turns", len(values), "turns"),
    ]


def e2e_totals(worker: Worker) -> tuple[float, float]:
    """livekit's own voice-to-voice (``e2e_latency``: the VAD's end of the caller's speech →
    the agent's first audio frame, both at the agent) so far, from the worker's Prometheus
    histogram: (sum of seconds, replies)."""
    scrape = worker.metrics()
    total = sum(v for (n, _), v in scrape.items() if n == "voice_agent_voice_to_voice_seconds_sum")
    count = sum(
        v for (n, _), v in scrape.items() if n == "voice_agent_voice_to_voice_seconds_count"
    )
    return total, count


def _mean_e2e(worker: Worker) -> float | None:
    """livekit's ``e2e`` (see ``e2e_totals``), averaged over every reply so far."""
    total, count = e2e_totals(worker)
    return total / count if count else None


def _transport_rows(
    simulate_v2v: list[float],
    simulate_e2e: list[float],
    room_v2v: list[float],
    room_e2e: float | None,
) -> list[Row]:
    """Where the room's extra time goes. livekit's ``e2e`` is measured inside the agent, so
    room ``e2e`` against simulate ``e2e`` is the agent's own work in a room; what the
    caller measures beyond ``e2e``, less the same gap in ``simulate`` (the VAD's lag behind
    the last sound), is the two WebRTC legs: Opus, the server, both jitter buffers."""
    if not (simulate_v2v and simulate_e2e and room_v2v and room_e2e is not None):
        return []
    sim_gap = statistics.mean(simulate_v2v) - statistics.mean(simulate_e2e)
    return [
        _row("simulate_e2e_mean", statistics.mean(simulate_e2e), "s"),
        _row("room_e2e_mean", room_e2e, "s"),
        _row("room_transport_mean", statistics.mean(room_v2v) - room_e2e - sim_gap, "s"),
    ]


def run() -> list[Row]:
    if not SERVER_BIN.exists():
        print(f"[bench_rooms] skipped: no {SERVER_BIN}; run `make livekit-server`")
        return []
    rows: list[Row] = []
    logs = Path("bench-results/rooms-logs")
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        faq = work / "faq.json"
        faq.write_text(json.dumps([{"question": q, "answer": a} for q, a in QUESTIONS]))
        sentences = [QUESTIONS[i % len(QUESTIONS)][0] for i in range(TURNS)]
        server = LiveKitServer(logs / "livekit.log").start()
        try:
            simulated_call = asyncio.run(
                simulated(_env(faq, "thread"), sentences, work / "simulated.wav")
            )
            rows += _v2v_rows("simulate_voice_to_voice", simulated_call.voice_to_voice())
            simulate_e2e = [t.latency["e2e"] for t in simulated_call.turns if "e2e" in t.latency]
            for executor in EXECUTORS:
                worker = Worker(server, logs, executor, **_env(faq, executor)).start()
                try:
                    rows.append(
                        _row(f"{executor}_idle_rss", _Sampler(worker.pid).rss() / 2**20, "MiB")
                    )
                    if executor == "thread":
                        (room,) = asyncio.run(_calls(server, 1, sentences, work))
                        rows += _v2v_rows("room_voice_to_voice", room.voice_to_voice())
                        rows += _transport_rows(
                            simulated_call.voice_to_voice(), simulate_e2e,
                            room.voice_to_voice(), _mean_e2e(worker),
                        )  # fmt: skip
                    for n in CONCURRENCY:
                        with _Sampler(worker.pid) as s:
                            results = asyncio.run(_calls(server, n, sentences[:CALL_TURNS], work))
                        v2v = [v for r in results for v in r.voice_to_voice()]
                        rows += _v2v_rows(f"{executor}_{n}_calls_voice_to_voice", v2v)
                        rows += [
                            _row(f"{executor}_{n}_calls_peak_rss", s.peak_rss / 2**20, "MiB"),
                            _row(f"{executor}_{n}_calls_cpu", 100 * s.cpu_seconds / s.wall, "%"),
                        ]
                        print(f"[bench_rooms] {rows[-5:]}", file=sys.stderr, flush=True)
                        worker.wait_available()
                finally:
                    worker.stop()
        finally:
            server.stop()
    return rows


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row))
