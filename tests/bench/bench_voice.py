"""Voice-to-voice latency on the local stack (whisper, offline FAQ, piper) via ``simulate``.

One simulated call with ten caller questions per mode; the caller waits for each answer.
Voice to voice is measured from our own I/O timestamps: the end of the last caller frame
with speech energy to the first agent frame played after it. The parts come from livekit's
per-turn metrics. Run directly with ``python -m tests.bench.bench_voice``.

The modes are the README's rows, one ``make bench`` regenerates them all: our turn-taking
settings (unprefixed rows), ours decoding only at the VAD's end of speech
(``no_early_decode_``), and livekit's defaults (``livekit_defaults_``), with the ratio of
our median and p95 to livekit's defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.tools.caller_audio import say
from agent.tools.simulate import simulate_call
from agent.tools.transcript import CallResult
from agent.worker.settings import Settings
from providers.config.loader import ProviderLoader

TARGET_MEDIAN_S = 0.8  # SPEC §9: caller stops speaking → agent audio starts
TARGET_P95_S = 1.2
QUESTIONS = [
    ("What are your opening hours?", "Nine to five."),
    ("Where is your office?", "Harbor Street."),
    ("How much does it cost?", "Forty dollars."),
    ("Can I book an appointment?", "Yes, online."),
    ("Do you have parking?", "Yes, free parking."),
]
TURNS = 10
TIMEOUT = 150.0
LIVEKIT_DEFAULTS: dict[str, str] = {
    "VAD_MIN_SILENCE": "0.55",
    "ENDPOINTING_MIN_DELAY": "0.5",
    "ENDPOINTING_MAX_DELAY": "3.0",
    "STT_EARLY_DECODE": "0",  # livekit's StreamAdapter decodes at the VAD's end of speech
    "MID_SENTENCE_PAUSE": "0",  # ... and transcribes each VAD segment on its own
    "PREEMPTIVE_GENERATION": "llm",  # livekit starts the LLM early, not the TTS
    "TURN_DETECTOR": "local",  # what livekit picks under `start` with no LiveKit Cloud
}
"""livekit-agents' own turn-taking settings, as environment overrides of ours."""
MODES: dict[str, dict[str, str]] = {
    "": {},  # ours, as configured by default (agent/turns.py, providers/early_stt.py)
    "no_early_decode_": {"STT_EARLY_DECODE": "0"},
    "livekit_defaults_": LIVEKIT_DEFAULTS,
}
"""Row-name prefix → environment overrides; every mode is one call of ``TURNS`` turns."""

Row = dict[str, Any]
LOCAL_ENV = {
    "DEFAULT_ORGANIZATION_ID": "bench",
    "STT_PROVIDER": "whisper",
    "STT_FALLBACK": "",
    "LLM_PROVIDER": "offline",
    "LLM_FALLBACK": "",
    "TTS_PROVIDER": "piper",
    "TTS_FALLBACK": "",
    "AGENT_GREETING": "",
}


def _row(name: str, value: float, unit: str, target: str | None = None) -> Row:
    row: Row = {"name": name, "value": round(value, 4), "unit": unit}
    if target is not None:
        row["target"] = target
    return row


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@contextlib.contextmanager
def env_overrides(values: dict[str, str]) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block, the previous values restored after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def simulated(env: dict[str, str], sentences: list[str], output: Path) -> CallResult:
    """One simulated call of ``sentences`` with ``env`` as the worker's environment."""
    with env_overrides(env):
        settings = Settings.from_env(os.environ)  # a worker started with this environment
        loader = ProviderLoader(settings.loader, environ=settings.provider_env)
        try:
            return await simulate_call(
                job_metadata="",
                caller_audio=await say(sentences),
                output=output,
                loader=loader,
                timeout=TIMEOUT,
                settings=settings,
            )
        finally:
            await loader.aclose()


async def _call(workdir: Path, overrides: dict[str, str]) -> CallResult:
    faq = workdir / "faq.json"
    faq.write_text(json.dumps([{"question": q, "answer": a} for q, a in QUESTIONS]))
    sentences = [QUESTIONS[i % len(QUESTIONS)][0] for i in range(TURNS)]
    # the modes' variables are set in every mode (ours: unset), so a shell's own
    # VAD_MIN_SILENCE and the like cannot leak into one mode only
    unset = dict.fromkeys(LIVEKIT_DEFAULTS, "")
    env = {**LOCAL_ENV, **unset, **overrides, "AGENT_FAQ_FILE": str(faq)}
    return await simulated(env, sentences, workdir / "bench_voice.wav")


def _median(result: CallResult, role: str, key: str) -> float | None:
    values = [t.latency[key] for t in result.turns if t.role == role and key in t.latency]
    return statistics.median(values) if values else None


def _rows(result: CallResult, prefix: str) -> list[Row]:
    ours = not prefix  # the targets are for our settings
    v2v = result.voice_to_voice()
    rows: list[Row] = [
        _row(f"{prefix}voice_to_voice_turns", len(v2v), "turns", f">= {TURNS}" if ours else None)
    ]
    if v2v:
        rows += [
            _row(
                f"{prefix}voice_to_voice_median",
                statistics.median(v2v),
                "s",
                f"< {TARGET_MEDIAN_S}" if ours else None,
            ),
            _row(
                f"{prefix}voice_to_voice_p95", _p95(v2v), "s", f"< {TARGET_P95_S}" if ours else None
            ),
        ]
    for name, role, key in (
        ("end_of_turn_median", "user", "end_of_turn"),
        ("stt_final_median", "user", "stt_final"),
        ("llm_ttft_median", "assistant", "llm_ttft"),
        ("tts_ttfb_median", "assistant", "tts_ttfb"),
        ("e2e_median", "assistant", "e2e"),
    ):
        value = _median(result, role, key)
        if value is not None:
            rows.append(_row(f"{prefix}{name}", value, "s"))
    return rows


def run() -> list[Row]:
    rows: list[Row] = []
    v2v: dict[str, list[float]] = {}
    for prefix, overrides in MODES.items():
        with tempfile.TemporaryDirectory() as tmp:
            result = asyncio.run(_call(Path(tmp), overrides))
        v2v[prefix] = result.voice_to_voice()
        rows += _rows(result, prefix)
    ours, theirs = v2v[""], v2v["livekit_defaults_"]
    if ours and theirs:
        for stat, f in (("median", statistics.median), ("p95", _p95)):
            rows.append(
                _row(f"voice_to_voice_{stat}_ours_over_livekit_defaults", f(ours) / f(theirs), "x")
            )
    return rows


if __name__ == "__main__":
    for row in run():
        print(json.dumps(row))
