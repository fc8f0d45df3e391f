"""Calls per worker: one ``python -m agent start`` worker on the local stack, 1, 2, 4 and 6
callers at once through a real LiveKit server, each asking three FAQ questions. Per load:
voice-to-voice at the caller (median, p95), wrong or missing answers, the worker's
CPU-seconds per call, its peak RSS, and the machine's CPU use over the phase — for both
job executors. The callers run in this process (rtc SDK), so the machine's figure includes
them; the worker's is its own process tree.

Needs the server binary (``make livekit-server``). Run directly:
``python -m tests.bench.bench_density [--calls 1 2 4] [--executors thread]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

from agent.tools.caller_audio import say
from agent.tools.room_call import place_call
from agent.tools.transcript import CallResult
from tests.bench.bench_rooms import TIMEOUT, _env, _Sampler, call_options
from tests.bench.bench_voice import QUESTIONS, _p95, _row
from tests.e2e.rig import SERVER_BIN, LiveKitServer, Worker

LOCAL_CALLS = (1, 2, 4, 6)
EXECUTORS = ("thread", "process")
CALL_TURNS = 3

Row = dict[str, Any]


def _right(result: CallResult, expected: list[str]) -> tuple[int, int]:
    """(answers heard right, questions asked): an answer is right when the agent's turn
    after the question holds the FAQ answer's first word."""
    agent = [t.text.lower() for t in result.turns if t.role == "assistant" and not t.scripted]
    right = sum(
        1
        for i, answer in enumerate(expected)
        if i < len(agent) and answer.split()[0].lower().strip(",.") in agent[i]
    )
    return right, len(expected)


def _e2e_totals(worker: Worker) -> tuple[float, float]:
    """The worker's voice-to-voice histogram so far: (sum, count); (0, 0) when a worker
    too busy to answer its metrics page within the rig's timeout."""
    try:
        scrape = worker.metrics()
    except OSError:
        return 0.0, 0.0
    return (
        sum(v for (n, _), v in scrape.items() if n == "voice_agent_voice_to_voice_seconds_sum"),
        sum(v for (n, _), v in scrape.items() if n == "voice_agent_voice_to_voice_seconds_count"),
    )


async def _calls(server: LiveKitServer, n: int, out: Path) -> list[tuple[CallResult, list[str]]]:
    async def one(i: int) -> tuple[CallResult, list[str]]:
        asked = [QUESTIONS[(i + k) % len(QUESTIONS)] for k in range(CALL_TURNS)]
        frames = await say([q for q, _ in asked])
        opts = call_options(server, out / f"density-{n}-{i}.wav")
        return await place_call(opts, frames), [a for _, a in asked]

    return list(await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), TIMEOUT))


def local(
    calls: tuple[int, ...], executors: tuple[str, ...], extra_env: dict[str, str] | None = None
) -> list[Row]:
    """``extra_env``: the worker's settings to measure an alternative with."""
    rows: list[Row] = []
    logs = Path("bench-results/density-logs")
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        faq = work / "faq.json"
        faq.write_text(json.dumps([{"question": q, "answer": a} for q, a in QUESTIONS]))
        server = LiveKitServer(logs / "livekit.log").start()
        try:
            for executor in executors:
                env = {
                    **_env(faq, executor),
                    "MAX_CONCURRENT_CALLS": str(2 * max(calls)),
                    **(extra_env or {}),
                }
                worker = Worker(server, logs, f"density-{executor}", **env).start()
                try:
                    for n in calls:
                        e2e_before = _e2e_totals(worker)
                        psutil.cpu_percent()  # starts the machine-wide measurement
                        with _Sampler(worker.pid) as s:
                            results = asyncio.run(_calls(server, n, work))
                        machine = psutil.cpu_percent()
                        v2v = [v for r, _ in results for v in r.voice_to_voice()]
                        right = sum(_right(r, e)[0] for r, e in results)
                        asked = n * CALL_TURNS
                        prefix = f"local_{executor}_{n}_calls"
                        if v2v:
                            rows += [
                                _row(f"{prefix}_v2v_median", statistics.median(v2v), "s"),
                                _row(f"{prefix}_v2v_p95", _p95(v2v), "s"),
                            ]
                        e2e_sum, e2e_count = (
                            a - b for a, b in zip(_e2e_totals(worker), e2e_before, strict=True)
                        )
                        if e2e_count:
                            # livekit's own, inside the agent: end of speech -> first audio
                            rows.append(_row(f"{prefix}_agent_e2e_mean", e2e_sum / e2e_count, "s"))
                        rows += [
                            _row(f"{prefix}_v2v_turns", len(v2v), "turns"),
                            _row(f"{prefix}_wrong_or_missing", asked - right, "answers"),
                            _row(f"{prefix}_worker_cpu_per_call", s.cpu_seconds / n, "cpu-s"),
                            _row(f"{prefix}_worker_peak_rss", s.peak_rss / 2**20, "MiB"),
                            _row(f"{prefix}_machine_cpu", machine, "%"),
                        ]
                        print(f"[bench_density] {rows[-6:]}", file=sys.stderr, flush=True)
                        worker.wait_available()
                finally:
                    worker.stop()
        finally:
            server.stop()
    return rows


def run() -> list[Row]:
    if not SERVER_BIN.exists():
        print(f"[bench_density] skipped: no {SERVER_BIN}; run `make livekit-server`")
        return []
    return local(LOCAL_CALLS, EXECUTORS)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_density")
    parser.add_argument("--calls", type=int, nargs="*", default=list(LOCAL_CALLS))
    parser.add_argument("--executors", nargs="*", default=list(EXECUTORS), choices=EXECUTORS)
    parser.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    extra = dict(v.split("=", 1) for v in args.env)
    for row in local(tuple(args.calls), tuple(args.executors), extra):
        print(json.dumps(row))
