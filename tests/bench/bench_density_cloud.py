"""Calls per worker with cloud-shaped providers: what the worker itself costs per call once
speech recognition, the LLM and speech synthesis are elsewhere. One ``python -m agent
start`` worker, a real LiveKit server, the Deepgram / OpenAI / ElevenLabs stand-ins with
fixed response times (``tests/bench/cloud_stack.py``), and 1, 5, 10, 25 and 40 callers
dispatched together into as many rooms, each asking three FAQ questions.

Per load: voice-to-voice at the caller (median, p95), wrong or missing answers, the
worker's CPU-seconds per call and per call-minute, its peak RSS and RSS per added call,
the machine's CPU, and what the callers and the stand-ins took of it — the callers run in
processes of their own (``CALLERS_PER_PROCESS`` each), so one Python loop playing forty
callers does not become the limit. Then the most calls whose voice-to-voice median stays
within ``BUDGET`` of one call's, every answer right.

Needs the server binary (``make livekit-server``). Run directly:
``python -m tests.bench.bench_density_cloud [--calls 1 5 10 25 40] [--executors thread]
[--callers-per-process 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing.connection
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from tests.bench.bench_rooms import TIMEOUT, _Sampler
from tests.bench.bench_voice import _p95, _row
from tests.bench.cloud_stack import READY_TIMEOUT, SPAWN, CloudStandins, questions, worker_env
from tests.bench.proc_threads import ThreadCpu
from tests.e2e.rig import API_KEY, API_SECRET, SERVER_BIN, LiveKitServer, Worker

CLOUD_CALLS = (1, 5, 10, 25, 40)
PROCESS_CALLS = (1, 5, 10)
"""The process executor starts one process per call slot: past ten, its start-up alone
takes minutes on 2 cores."""
EXECUTORS = ("thread", "process")
CALL_TURNS = 3
CALLERS_PER_PROCESS = 8
BUDGET = 0.15
"""Seconds of voice-to-voice a load may add to one call's median and still count as held."""

Row = dict[str, Any]
Speech = list[tuple[bytes, int]]
"""The caller's turns as (mono int16 PCM, sample rate): what crosses into a caller process."""


async def _speech(turns: int) -> Speech:
    from agent.tools.caller_audio import say

    frames = await say([q for q, _ in questions(turns)])
    return [(bytes(f.data), f.sample_rate) for f in frames]


async def _group(url: str, speech: Speech, n: int, out: Path) -> list[dict[str, Any]]:
    from livekit import rtc

    from agent.tools.room_call import CallOptions, place_call
    from tests.bench.bench_rooms import AGENT

    frames = [rtc.AudioFrame(pcm, rate, 1, len(pcm) // 2) for pcm, rate in speech]
    expected = [a for _, a in questions(len(speech))]

    async def one(i: int) -> dict[str, Any]:
        opts = CallOptions(
            url=url, api_key=API_KEY, api_secret=API_SECRET, agent_name=AGENT,
            output=out / f"call-{i}.wav", timeout=TIMEOUT - 10,
        )  # fmt: skip
        t0 = time.monotonic()
        try:
            result = await place_call(opts, frames)
        except Exception as e:  # one failed call is a missing answer, not a failed bench
            return {"v2v": [], "heard": [], "seconds": time.monotonic() - t0, "error": repr(e)}
        heard = [t.text for t in result.turns if t.role == "assistant" and not t.scripted]
        return {
            "v2v": result.voice_to_voice(),
            "heard": heard,
            "seconds": time.monotonic() - t0,
            "error": None if result.completed else "not completed",
        }

    calls = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), TIMEOUT)
    for call in calls:
        call["right"] = sum(
            1
            for k, answer in enumerate(expected)
            if k < len(call["heard"]) and answer.lower().strip(".") in call["heard"][k].lower()
        )
        call["asked"] = len(expected)
    return list(calls)


def _callers_main(
    conn: multiprocessing.connection.Connection, url: str, speech: Speech, n: int, out: str
) -> None:
    """One caller process: imports done, says ready; on ``go`` places ``n`` calls at once."""
    import livekit.rtc  # noqa: F401 - loaded before the clock starts

    conn.send("ready")
    conn.recv()
    conn.send(asyncio.run(_group(url, speech, n, Path(out))))


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


class _Callers:
    """``n`` callers in ``ceil(n / CALLERS_PER_PROCESS)`` processes, started and ready
    before the phase is timed."""

    def __init__(self, url: str, speech: Speech, n: int, out: Path) -> None:
        sizes = [CALLERS_PER_PROCESS] * (n // CALLERS_PER_PROCESS)
        sizes += [n % CALLERS_PER_PROCESS] if n % CALLERS_PER_PROCESS else []
        self._conns: list[multiprocessing.connection.Connection] = []
        self._procs = []
        for g, size in enumerate(sizes):
            parent, child = SPAWN.Pipe()
            (out / f"g{g}").mkdir()
            p = SPAWN.Process(
                target=_callers_main, args=(child, url, speech, size, str(out / f"g{g}")),
                name=f"callers-{g}", daemon=True,
            )  # fmt: skip
            p.start()
            self._conns.append(parent)
            self._procs.append(p)
        for c in self._conns:
            if not c.poll(READY_TIMEOUT):
                self.stop()
                raise TimeoutError(f"a caller process was not ready in {READY_TIMEOUT:.0f} s")
            c.recv()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def run(self) -> list[dict[str, Any]]:
        for c in self._conns:
            c.send("go")
        results: list[dict[str, Any]] = []
        deadline = time.monotonic() + TIMEOUT + 10
        for c in self._conns:
            if not c.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"callers did not finish within {TIMEOUT:.0f} s")
            results += c.recv()
        return results

    def stop(self) -> None:
        for p in self._procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)


def _sample(threads: ThreadCpu, done: threading.Event) -> None:
    while not done.wait(0.5):
        threads.sample()
    threads.sample()


def _phase(
    server: LiveKitServer,
    worker: Worker,
    standins: CloudStandins,
    speech: Speech,
    n: int,
    out: Path,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    callers = _Callers(server.url, speech, n, out)
    try:
        assert server.process is not None
        callers_cpu0, standins_cpu0 = _cpu(callers.pids), standins.cpu()
        server_cpu0 = _cpu([server.process.pid])
        psutil.cpu_percent()  # starts the machine-wide measurement
        t0 = time.monotonic()
        threads = ThreadCpu(worker.pid)
        done = threading.Event()
        sampling = threading.Thread(target=lambda: _sample(threads, done), daemon=True)
        sampling.start()
        with _Sampler(worker.pid) as s:
            calls = callers.run()
        done.set()
        sampling.join()
        wall = time.monotonic() - t0
        machine = psutil.cpu_percent()
        figures = {
            "worker_cpu": s.cpu_seconds,
            "peak_rss": s.peak_rss,
            "machine": machine,
            "wall": wall,
            "callers_cpu": _cpu(callers.pids) - callers_cpu0,
            "standins_cpu": standins.cpu() - standins_cpu0,
            "server_cpu": _cpu([server.process.pid]) - server_cpu0,
            "threads_cpu": threads.used(),
        }
    finally:
        callers.stop()
    return figures, calls


def _rows(prefix: str, n: int, f: dict[str, Any], calls: list[dict[str, Any]]) -> list[Row]:
    v2v = [v for c in calls for v in c["v2v"]]
    call_minutes = sum(c["seconds"] for c in calls) / 60
    rows: list[Row] = []
    if v2v:
        rows += [
            _row(f"{prefix}_v2v_median", statistics.median(v2v), "s"),
            _row(f"{prefix}_v2v_p95", _p95(v2v), "s"),
        ]
    rows += [
        _row(f"{prefix}_v2v_turns", len(v2v), "turns"),
        _row(f"{prefix}_wrong_or_missing", sum(c["asked"] - c["right"] for c in calls), "answers"),
        _row(f"{prefix}_worker_cpu_per_call", f["worker_cpu"] / n, "cpu-s"),
        _row(f"{prefix}_worker_cpu_per_call_minute", f["worker_cpu"] / call_minutes, "cpu-s"),
        _row(f"{prefix}_worker_peak_rss", f["peak_rss"] / 2**20, "MiB"),
        _row(f"{prefix}_machine_cpu", f["machine"], "%"),
        _row(f"{prefix}_callers_cpu_per_call", f["callers_cpu"] / n, "cpu-s"),
        _row(f"{prefix}_standins_cpu", f["standins_cpu"], "cpu-s"),
        _row(f"{prefix}_livekit_server_cpu_per_call", f["server_cpu"] / n, "cpu-s"),
        _row(f"{prefix}_wall", f["wall"], "s"),
    ]
    # where the worker's CPU went, by thread name (Python's threads, livekit's Rust ones)
    for name, cpu in f["threads_cpu"][:4]:
        key = "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()
        rows.append(_row(f"{prefix}_worker_cpu_in_{key}", cpu / n, "cpu-s"))
    return rows


def _held(medians: dict[int, float], wrong: dict[int, int]) -> int:
    """The most calls measured whose median, and every smaller load's, stays within
    ``BUDGET`` of one call's with every answer right (0 when one call already fails)."""
    if 1 not in medians:
        return 0
    held = 0
    for n in sorted(medians):
        if medians[n] > medians[1] + BUDGET or wrong[n]:
            break
        held = n
    return held


def _executor(
    server: LiveKitServer,
    standins: CloudStandins,
    speech: Speech,
    executor: str,
    loads: tuple[int, ...],
    tmp: Path,
    logs: Path,
) -> list[Row]:
    """One worker under ``executor`` through every load, lightest first. A load where most
    answers go missing ends the climb: heavier ones would only fail the same way."""
    env = worker_env(standins.backend_url, executor, max(loads))
    worker = Worker(server, logs, f"cloud-{executor}", **env).start()
    rows = [_row(f"cloud_{executor}_idle_rss", _Sampler(worker.pid).rss() / 2**20, "MiB")]
    medians: dict[int, float] = {}
    wrong: dict[int, int] = {}
    peaks: dict[int, float] = {}
    try:
        for n in loads:
            out = tmp / f"{executor}-{n}"
            out.mkdir()
            figures, results = _phase(server, worker, standins, speech, n, out)
            prefix = f"cloud_{executor}_{n}_calls"
            phase = _rows(prefix, n, figures, results)
            peaks[n] = figures["peak_rss"] / 2**20
            if n > 1 and 1 in peaks:
                added = (peaks[n] - peaks[1]) / (n - 1)
                phase.append(_row(f"{prefix}_rss_per_added_call", added, "MiB"))
            by_name = {r["name"]: r["value"] for r in phase}
            if f"{prefix}_v2v_median" in by_name:
                medians[n] = by_name[f"{prefix}_v2v_median"]
            wrong[n] = by_name[f"{prefix}_wrong_or_missing"]
            rows += phase
            print(f"[bench_density_cloud] {phase}", file=sys.stderr, flush=True)
            if errors := sorted({c["error"] for c in results if c["error"]}):
                print(f"[bench_density_cloud] {errors[:5]}", file=sys.stderr, flush=True)
            if wrong[n] > n * CALL_TURNS / 2:
                print(
                    f"[bench_density_cloud] {executor}: most answers missing at {n} calls; "
                    "heavier loads not measured",
                    file=sys.stderr,
                )
                break
            try:
                worker.wait_available(timeout=max(20.0, 2.0 * n))
            except (OSError, TimeoutError) as e:
                print(f"[bench_density_cloud] worker did not recover: {e}", file=sys.stderr)
                break
    finally:
        worker.stop()
    rows.append(_row(f"cloud_{executor}_calls_held", _held(medians, wrong), "calls"))
    return rows


def cloud(calls: tuple[int, ...], executors: tuple[str, ...]) -> list[Row]:
    rows: list[Row] = []
    logs = Path("bench-results/density-cloud-logs")
    logs.mkdir(parents=True, exist_ok=True)
    speech = asyncio.run(_speech(CALL_TURNS))
    with tempfile.TemporaryDirectory() as tmp, CloudStandins(CALL_TURNS) as standins:
        server = LiveKitServer(logs / "livekit.log").start()
        try:
            for executor in executors:
                rows += _executor(server, standins, speech, executor, calls, Path(tmp), logs)
        finally:
            server.stop()
    return rows


def run() -> list[Row]:
    if not SERVER_BIN.exists():
        print(f"[bench_density_cloud] skipped: no {SERVER_BIN}; run `make livekit-server`")
        return []
    return cloud(CLOUD_CALLS, ("thread",)) + cloud(PROCESS_CALLS, ("process",))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_density_cloud")
    parser.add_argument("--calls", type=int, nargs="*", default=list(CLOUD_CALLS))
    parser.add_argument("--executors", nargs="*", default=list(EXECUTORS), choices=EXECUTORS)
    parser.add_argument("--callers-per-process", type=int, default=CALLERS_PER_PROCESS)
    args = parser.parse_args()
    CALLERS_PER_PROCESS = max(1, args.callers_per_process)
    for row in cloud(tuple(args.calls), tuple(args.executors)):
        print(json.dumps(row))
