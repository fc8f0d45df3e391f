"""Voice to voice three ways for the same caller utterances: ``simulate`` (no server, file
I/O), ``call`` through a real LiveKit room (the rtc SDK at the caller), and the web caller's
page (``python -m agent web``) in headless Chromium, whose fake microphone plays the same
Piper-spoken audio, against the same server and worker.

Each path measures at its own caller: ``simulate`` and ``call`` from the frames they send
and receive (last frame with speech → first agent frame with speech), the page from its own
analysis of the audio it captures and plays (``window.voiceAgent.measurements``: the last
20 ms block of microphone audio with speech energy → the first of the agent's). Beside each,
livekit's own ``e2e`` inside the agent, averaged over the path's replies.

Needs the server binary (``make livekit-server``); the browser row needs Debian's
``chromium`` and Playwright, and says why it is missing otherwise. Run directly with
``python -m tests.bench.bench_web``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from agent.tools.caller_audio import say
from agent.tools.room_call import CallOptions
from agent.tools.web import WebCaller, WebOptions
from tests.bench.bench_rooms import _calls, _env, _v2v_rows, e2e_totals
from tests.bench.bench_voice import QUESTIONS, _row, simulated
from tests.e2e.browser import browser, browser_missing, write_fake_mic
from tests.e2e.rig import API_KEY, API_SECRET, SERVER_BIN, LiveKitServer, Worker

AGENT = "bench-agent"  # bench_rooms' _env dispatches this name
QUESTION_COUNT = 3
TURNS = 6
"""The first three FAQ questions, twice each: the same utterances on every path."""
LEAD_S = 8.0
"""Silence the page's fake microphone plays first: dispatch, the agent's join."""
GAP_S = 4.5
"""Silence after each question: the answer (a few words), then a pause."""
PAGE_SLACK_S = 30.0
TIMEOUT = 150.0

Row = dict[str, Any]
PATHS = (("simulate", "simulate"), ("call", "room"), ("browser", "browser"))
"""(what the table calls it, its row-name prefix)."""


def _e2e_row(prefix: str, before: tuple[float, float], after: tuple[float, float]) -> list[Row]:
    count = after[1] - before[1]
    if not count:
        return []
    return [_row(f"{prefix}_e2e_mean", (after[0] - before[0]) / count, "s")]


async def _browser_call(server: LiveKitServer, sentences: list[str], mic: Path) -> list[float]:
    """One call from the web caller's page, its fake microphone playing ``sentences``; the
    page's own voice-to-voice of each reply."""
    frames = await say(sentences)
    write_fake_mic(mic, frames, lead_s=LEAD_S, gap_s=GAP_S)
    spoken = sum(f.samples_per_channel / f.sample_rate for f in frames)
    played_ms = 1000 * (LEAD_S + spoken + GAP_S * len(frames) + PAGE_SLACK_S)
    call = CallOptions(url=server.url, api_key=API_KEY, api_secret=API_SECRET, agent_name=AGENT)
    web = WebCaller(WebOptions(call))
    await web.start(0)
    try:
        async with browser(mic) as page:
            await page.goto(web.url)
            await page.click("#call")
            await page.wait_for_function("() => voiceAgent.state === 'in-call'", timeout=60_000)
            await page.wait_for_function(
                f"() => voiceAgent.measurements.length >= {len(sentences)}", timeout=played_ms
            )
            await asyncio.sleep(1.5)  # the last answer's audio
            seconds = await page.evaluate("() => voiceAgent.measurements.map((m) => m.seconds)")
            await page.click("#hangup")
            return [float(s) for s in seconds]
    finally:
        await web.stop()


def _table(rows: list[Row], skipped: str | None) -> str:
    values = {r["name"]: r["value"] for r in rows}
    lines = [
        f"voice to voice, the same {TURNS} utterances per path",
        f"  {'path':<10} {'median':>8} {'p95':>8} {'n':>3}   livekit e2e (mean, in the agent)",
    ]
    for label, prefix in PATHS:
        n = values.get(f"{prefix}_voice_to_voice_turns", 0)
        if label == "browser" and skipped:
            lines.append(f"  {label:<10} skipped: {skipped}")
        elif not n:
            lines.append(f"  {label:<10} no reply measured")
        else:
            e2e = values.get(f"{prefix}_e2e_mean")
            lines.append(
                f"  {label:<10} {values[f'{prefix}_voice_to_voice_median']:>7.2f}s"
                f" {values[f'{prefix}_voice_to_voice_p95']:>7.2f}s {n:>3}   "
                + (f"{e2e:.2f}s" if e2e is not None else "—")
            )
    return "\n".join(lines)


def run() -> list[Row]:
    if not SERVER_BIN.exists():
        print(f"[bench_web] skipped: no {SERVER_BIN}; run `make livekit-server`")
        return []
    missing = browser_missing()
    if missing:
        print(f"[bench_web] browser row skipped: {missing}", file=sys.stderr)
    rows: list[Row] = []
    logs = Path("bench-results/web-logs")
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        faq = work / "faq.json"
        faq.write_text(json.dumps([{"question": q, "answer": a} for q, a in QUESTIONS]))
        sentences = [QUESTIONS[i % QUESTION_COUNT][0] for i in range(TURNS)]
        env = _env(faq, "thread")
        server = LiveKitServer(logs / "livekit.log").start()
        try:
            sim = asyncio.run(simulated(env, sentences, work / "simulated.wav"))
            rows += _v2v_rows("simulate_voice_to_voice", sim.voice_to_voice())
            sim_e2e = [t.latency["e2e"] for t in sim.turns if "e2e" in t.latency]
            if sim_e2e:
                rows.append(_row("simulate_e2e_mean", statistics.mean(sim_e2e), "s"))
            worker = Worker(server, logs, "web", **env).start()
            try:
                before = e2e_totals(worker)
                (room,) = asyncio.run(_calls(server, 1, sentences, work))
                rows += _v2v_rows("room_voice_to_voice", room.voice_to_voice())
                after = e2e_totals(worker)
                rows += _e2e_row("room", before, after)
                if not missing:
                    worker.wait_available()
                    page = asyncio.run(
                        asyncio.wait_for(
                            _browser_call(server, sentences, work / "mic.wav"), TIMEOUT
                        )
                    )
                    rows += _v2v_rows("browser_voice_to_voice", page)
                    rows += _e2e_row("browser", after, e2e_totals(worker))
            finally:
                worker.stop()
        finally:
            server.stop()
    print(_table(rows, missing), flush=True)
    return rows


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row))
