"""Turn-taking on real speech: the utterance corpus (``tests/corpus.py``: mid-sentence pauses
of 300–500 ms, two voices) through simulated calls on the local stack (whisper, the offline
responder with the demo FAQ, piper), with our turn settings and with livekit's defaults.

Per utterance: voice-to-voice (end of the caller's last phrase → the agent's first audio
after it), whether the turn was split (the agent committed a turn or started answering
inside the utterance, at a pause), and whether the reply held every FAQ answer asked for.
Run alone with ``python -m tests.bench.bench_turns``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.tools.transcript import CallResult
from tests.bench.bench_voice import LIVEKIT_DEFAULTS, LOCAL_ENV, _p95, _row, env_overrides
from tests.support.corpus import CORPUS, DEMO_FAQ, Utterance, answered, available_voices, speak

TARGET_MEDIAN_S = 0.8
TARGET_P95_S = 1.2
TIMEOUT = 400.0

BASE_ENV = {**LOCAL_ENV, "AGENT_FAQ_FILE": str(DEMO_FAQ)}
Row = dict[str, Any]
SLACK = 0.1
"""Seconds: livekit places a turn's start by its VAD, a little off our own timestamps."""


@dataclass(frozen=True)
class Outcome:
    utterance: Utterance
    split: bool
    answered: bool
    voice_to_voice: float | None
    heard: str
    """What the agent said in reply."""
    transcript: str
    """What the STT made of the utterance."""


def outcomes(result: CallResult, corpus: tuple[Utterance, ...]) -> list[Outcome]:
    """Judge each utterance of a simulated call from its timeline."""
    out: list[Outcome] = []
    starts = sorted(s.started_at for s in result.segments)
    callers = result.caller_turns
    for i, (utt, caller) in enumerate(zip(corpus, callers, strict=False)):
        end = caller.speech_end
        until = callers[i + 1].started_at if i + 1 < len(callers) else float("inf")
        # split: the utterance became more than one caller turn, or the agent started
        # answering inside it
        users = [
            t
            for t in result.turns
            if t.role == "user" and caller.started_at - SLACK <= t.at < until - SLACK
        ]
        early = [
            t
            for t in result.turns
            if t.role == "assistant" and caller.started_at - SLACK <= t.at < end - SLACK
        ]
        split = len(users) > 1 or bool(early)
        replies = " ".join(
            t.text
            for t in result.turns
            if t.role == "assistant" and end - SLACK <= t.at < until - SLACK
        )
        first = next((s for s in starts if end <= s < until), None)
        v2v = None if first is None else first - end
        said = " ".join(t.text for t in users)
        out.append(Outcome(utt, split, answered(utt, replies), v2v, replies, said))
    return out


async def _call(env: dict[str, str], voice: str, output: Path) -> list[Outcome]:
    from agent.tools.simulate import simulate_call
    from agent.worker.settings import Settings
    from providers.config.loader import ProviderLoader

    frames = [await asyncio.to_thread(speak, u, voice) for u in CORPUS]
    # every mode's variables are set (ours: empty), so a shell's own cannot leak into one
    unset = dict.fromkeys(LIVEKIT_DEFAULTS, "")
    with env_overrides({**BASE_ENV, **unset, **env}):
        settings = Settings.from_env(os.environ)  # a worker started with this environment
        loader = ProviderLoader(settings.loader, environ=settings.provider_env)
        try:
            result = await simulate_call(
                job_metadata="",
                caller_audio=frames,
                output=output,
                loader=loader,
                timeout=TIMEOUT,
                settings=settings,
            )
        finally:
            await loader.aclose()
    return outcomes(result, CORPUS)


def _summary(name: str, results: list[Outcome]) -> list[Row]:
    v2v = [o.voice_to_voice for o in results if o.voice_to_voice is not None]
    rows = [
        _row(f"{name}: utterances", len(results), "turns", ">= 20"),
        _row(f"{name}: split at a pause", sum(o.split for o in results), "turns", "0"),
        _row(
            f"{name}: right answer spoken",
            round(100.0 * sum(o.answered for o in results) / max(1, len(results)), 1),
            "%",
            ">= 95",
        ),
    ]
    if v2v:
        rows += [
            _row(
                f"{name}: voice_to_voice_median",
                statistics.median(v2v),
                "s",
                f"< {TARGET_MEDIAN_S}",
            ),
            _row(f"{name}: voice_to_voice_p95", _p95(v2v), "s", f"< {TARGET_P95_S}"),
        ]
    return rows


def measure() -> dict[str, list[Outcome]]:
    configs = {
        "ours": {},
        # the audio end-of-turn model instead of silence alone (TURN_DETECTOR=local)
        "ours + livekit's local turn model": {"TURN_DETECTOR": "local"},
        "livekit defaults": LIVEKIT_DEFAULTS,
    }
    measured: dict[str, list[Outcome]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, env in configs.items():
            measured[name] = []
            for voice in available_voices():
                wav = Path(tmp) / f"{name.replace(' ', '_')}-{voice}.wav"
                measured[name] += asyncio.run(_call(env, voice, wav))
    return measured


def run() -> list[Row]:
    measured = measure()
    rows: list[Row] = [_row("voices", len(available_voices()), "", "2 (espeak-ng installed)")]
    for name, results in measured.items():
        rows += _summary(name, results)
    ours, theirs = (
        [o.voice_to_voice for o in measured[k] if o.voice_to_voice is not None]
        for k in ("ours", "livekit defaults")
    )
    if ours and theirs:
        ratio = statistics.median(ours) / statistics.median(theirs)
        rows.append(_row("median ours / livekit defaults", ratio, "x"))
    return rows


if __name__ == "__main__":
    for name, results in measure().items():
        for o in results:
            v2v = f"{o.voice_to_voice:.2f}" if o.voice_to_voice is not None else "-"
            print(json.dumps({"config": name, "said": o.utterance.text, "split": o.split,
                              "answered": o.answered, "v2v": v2v, "heard": o.heard}))  # fmt: skip
        for row in _summary(name, results):
            print(json.dumps(row))
