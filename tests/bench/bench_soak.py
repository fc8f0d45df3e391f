"""Soak: ``SOAK_CALLS`` calls in a row on one worker, one question each, through a real
LiveKit server. After every call (once the worker has no call left and its job has
ended): the worker's RSS, threads and open file descriptors, and which threads there are
by name — so memory kept per call, or a thread left behind by each, shows as growth
between call 5 and the last, and the names say whose it is.

Both stacks: ``local`` (Whisper, offline responder, Piper in the worker) and ``cloud``
(the stand-ins of ``tests/bench/cloud_stack.py``). Needs the server binary (``make
livekit-server``). Run directly:
``python -m tests.bench.bench_soak [--stacks cloud local] [--calls 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.tools.caller_audio import say
from agent.tools.room_call import place_call
from tests.bench.bench_rooms import TIMEOUT, _env, _Sampler, call_options
from tests.bench.bench_voice import QUESTIONS, _row
from tests.bench.cloud_stack import CloudStandins, questions, worker_env
from tests.bench.proc_threads import fd_count, thread_names
from tests.e2e.rig import SERVER_BIN, LiveKitServer, Worker

SOAK_CALLS = 20
STACKS = ("cloud", "local")
EARLY = 5
"""The call after which the worker counts as warmed up: growth is measured from here."""
SETTLE = 1.0
"""Seconds after the worker reports no call, for a call's last threads to end."""

Row = dict[str, Any]


@dataclass
class Snapshot:
    """The worker after one call."""

    rss_mib: float
    threads: Counter[str]
    fds: int
    answered: bool


@dataclass
class Soak:
    stack: str
    after: list[Snapshot] = field(default_factory=list)
    """One snapshot per call, in order."""

    def grown(self, first: int, last: int) -> dict[str, int]:
        """Threads by name that are more after call ``last`` than after call ``first``."""
        diff = self.after[last - 1].threads - self.after[first - 1].threads
        return dict(diff.most_common())

    def rows(self) -> list[Row]:
        p = f"soak_{self.stack}"
        n = len(self.after)
        early, last = self.after[min(EARLY, n) - 1], self.after[-1]
        rows = [
            _row(f"{p}_calls", n, "calls"),
            _row(f"{p}_unanswered", sum(not s.answered for s in self.after), "calls"),
            _row(f"{p}_rss_after_call_1", self.after[0].rss_mib, "MiB"),
            _row(f"{p}_rss_after_call_{EARLY}", early.rss_mib, "MiB"),
            _row(f"{p}_rss_after_call_{n}", last.rss_mib, "MiB"),
            _row(f"{p}_rss_growth_{EARLY}_to_{n}", last.rss_mib - early.rss_mib, "MiB"),
            _row(f"{p}_threads_after_call_1", self.after[0].threads.total(), "threads"),
            _row(f"{p}_threads_after_call_{EARLY}", early.threads.total(), "threads"),
            _row(f"{p}_threads_after_call_{n}", last.threads.total(), "threads"),
            _row(f"{p}_fds_after_call_1", self.after[0].fds, "fds"),
            _row(f"{p}_fds_after_call_{EARLY}", early.fds, "fds"),
            _row(f"{p}_fds_after_call_{n}", last.fds, "fds"),
        ]
        if grown := self.grown(min(EARLY, n), n):
            text = ", ".join(f"{name} +{k}" for name, k in grown.items())
            rows.append({"name": f"{p}_threads_grown_{EARLY}_to_{n}", "value": text, "unit": ""})
        return rows


def _snapshot(worker: Worker, answered: bool) -> Snapshot:
    worker.wait_available(timeout=60)
    time.sleep(SETTLE)
    return Snapshot(
        rss_mib=_Sampler(worker.pid).rss() / 2**20,
        threads=thread_names(worker.pid),
        fds=fd_count(worker.pid),
        answered=answered,
    )


@contextmanager
def _stack_worker(stack: str, server: LiveKitServer, work: Path, logs: Path) -> Iterator[Worker]:
    """A thread-executor worker on ``stack``, stopped (with the stand-ins) afterwards."""
    if stack == "cloud":
        with CloudStandins(turns=1) as standins:
            env = worker_env(standins.backend_url, "thread", 2)
            worker = Worker(server, logs, "soak-cloud", **env).start()
            try:
                yield worker
            finally:
                worker.stop()
        return
    faq = work / "faq.json"
    faq.write_text(json.dumps([{"question": q, "answer": a} for q, a in QUESTIONS]))
    worker = Worker(server, logs, "soak-local", **_env(faq, "thread")).start()
    try:
        yield worker
    finally:
        worker.stop()


def soak(
    stack: str, calls: int, server: LiveKitServer, work: Path, logs: Path, progress: bool = True
) -> Soak:
    """``calls`` one-question calls in a row on a fresh worker on ``stack``."""
    ((question, answer),) = questions(1)
    frames = asyncio.run(say([question]))
    result = Soak(stack)
    with _stack_worker(stack, server, work, logs) as worker:
        for i in range(calls):
            opts = call_options(server, work / f"soak-{stack}-{i}.wav")
            call = asyncio.run(asyncio.wait_for(place_call(opts, frames), TIMEOUT))
            heard = " ".join(t.text for t in call.turns if t.role == "assistant").lower()
            result.after.append(_snapshot(worker, answer.split()[0].lower() in heard))
            if progress:
                s = result.after[-1]
                print(
                    f"[bench_soak] {stack} call {i + 1}: {s.rss_mib:.0f} MiB, "
                    f"{s.threads.total()} threads, {s.fds} fds",
                    file=sys.stderr,
                    flush=True,
                )
    return result


def measure(stacks: tuple[str, ...], calls: int) -> list[Row]:
    rows: list[Row] = []
    logs = Path("bench-results/soak-logs")
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = LiveKitServer(logs / "livekit.log").start()
        try:
            for stack in stacks:
                rows += soak(stack, calls, server, Path(tmp), logs).rows()
        finally:
            server.stop()
    return rows


def run() -> list[Row]:
    if not SERVER_BIN.exists():
        print(f"[bench_soak] skipped: no {SERVER_BIN}; run `make livekit-server`")
        return []
    return measure(STACKS, SOAK_CALLS)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_soak")
    parser.add_argument("--stacks", nargs="*", default=list(STACKS), choices=STACKS)
    parser.add_argument("--calls", type=int, default=SOAK_CALLS)
    args = parser.parse_args()
    for row in measure(tuple(args.stacks), args.calls):
        print(json.dumps(row))
