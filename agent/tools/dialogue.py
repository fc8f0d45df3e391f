"""What a call looked like from the caller's side, shared by ``simulate`` (no server) and
``call`` (a real LiveKit room): the turns, their latencies, the stereo recording; plus the
caller-side helpers both commands use (Piper-spoken turns, job metadata, log format)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from livekit import rtc

from agent.log import setup_logging as setup_logging  # simulate and call log the same way
from agent.tools.audio_files import SAMPLE_RATE, CallerTurn, PlaybackSegment
from agent.worker.org import check_org_id
from plugins.audio import to_mono

TURN_TIMEOUT = 20.0
"""Longest a caller waits for the agent to answer before speaking again anyway."""
CALLER_PAUSE = 0.3
"""A caller's reaction time once the agent is done speaking."""
SILENCE_GAP = 2.5
"""Silence between ``--say`` turns when the caller does not wait for the agent."""


@dataclass
class Turn:
    role: str
    """``user`` (the caller) or ``assistant`` (the agent)."""
    text: str
    providers: dict[str, str]
    """Which provider served each kind for this turn: ``stt`` for a caller's turn, ``stt``,
    ``llm`` and ``tts`` for an agent's; empty when measured at the caller, who cannot see
    the worker's providers."""
    latency: dict[str, float]
    """Seconds. User: ``stt_final``, ``end_of_turn``. Assistant: ``voice_to_voice``
    (caller speech end to agent audio, from our own I/O timestamps), ``e2e``, ``llm_ttft``,
    ``tts_ttfb`` (livekit's per-turn metrics, simulate only)."""
    at: float = 0.0
    """Timeline seconds when the turn started."""
    interrupted: bool = False
    """The caller cut this agent turn short; ``text`` is what was played."""
    scripted: bool = False
    """Said as written (``session.say``: the greeting), not produced by an LLM; its
    ``providers`` name the TTS only."""


@dataclass
class CallResult:
    organization_id: str | None
    turns: list[Turn]
    output: Path
    chains: dict[str, list[str]]
    caller_turns: list[CallerTurn] = field(default_factory=list)
    segments: list[PlaybackSegment] = field(default_factory=list)
    completed: bool = True
    """False when the call hit its timeout before the last caller turn was answered."""
    room: str | None = None
    """The LiveKit room (``call`` only)."""
    usage: dict[str, Any] | None = None
    """The call's usage record as sent to the backend (``simulate`` only: in a room the
    worker sends it)."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "organizationId": self.organization_id,
            "turns": [
                {
                    "role": t.role,
                    "text": t.text,
                    "providers": t.providers,
                    "latency": t.latency,
                    **({"interrupted": True} if t.interrupted else {}),
                    **({"scripted": True} if t.scripted else {}),
                }
                for t in self.turns
            ],
            "output": str(self.output),
        }
        if self.room is not None:
            data["room"] = self.room
        if self.usage is not None:
            data["usage"] = self.usage
        return data

    def voice_to_voice(self) -> list[float]:
        return [t.latency["voice_to_voice"] for t in self.turns if "voice_to_voice" in t.latency]


def format_transcript(result: CallResult) -> str:
    chains = "  ".join(f"{k}: {' > '.join(v)}" for k, v in result.chains.items())
    where = f"   room {result.room}" if result.room else ""
    lines = [f"organization {result.organization_id or '(none)'}{where}   {chains}".rstrip(), ""]
    caller_spoke = False
    for t in result.turns:
        who = "caller" if t.role == "user" else "agent "
        kinds = ("stt",) if t.role == "user" else ("llm", "tts")
        served = " ".join(f"{k}={t.providers[k]}" for k in kinds if k in t.providers)
        if t.scripted:
            said = "said as written" if caller_spoke else "greeting"
            served = f"{said}, no llm" + (f"  {served}" if served else "")
        caller_spoke = caller_spoke or t.role == "user"
        cut = " [interrupted]" if t.interrupted else ""
        lines.append(f"[{t.at:6.2f}s] {who}: {t.text}{cut}")
        timing = "  ".join(f"{k} {v:.2f}s" for k, v in t.latency.items())
        if served or timing:
            lines.append(f"{'':10}{served}" + (f"   {timing}" if timing else ""))
    v2v = result.voice_to_voice()
    if v2v:
        lines += ["", f"voice-to-voice: {', '.join(f'{v:.2f}s' for v in v2v)}"]
    if result.usage is not None:
        lines.append(f"usage: {describe_usage(result.usage)}")
    lines.append(f"output: {result.output} (left: caller, right: agent)")
    return "\n".join(lines)


_UNIT_NAMES = {
    "audioSeconds": "s audio",
    "inputTokens": "input tokens",
    "cachedInputTokens": "cached",
    "outputTokens": "output tokens",
    "characters": "chars",
}


def describe_usage(record: dict[str, Any]) -> str:
    """``stt/whisper 2.6 s audio; tts/piper 139 chars …; estimated $0.0000``."""
    parts = []
    for line in record.get("usage", []):
        units = ", ".join(f"{line[k]:g} {name}" for k, name in _UNIT_NAMES.items() if line.get(k))
        parts.append(f"{line['kind']}/{line['provider']} {units}".strip())
    failovers = len(record.get("failovers", []))
    tail = f"; {failovers} failover(s)" if failovers else ""
    return f"{'; '.join(parts) or 'none'}; estimated ${record['estimatedCostUsd']:.4f}{tail}"


async def say(sentences: list[str]) -> list[rtc.AudioFrame]:
    """Caller turns spoken by the local Piper voice, in-process."""
    from plugins.piper_tts import load_voice

    def speak(text: str) -> rtc.AudioFrame:
        voice = load_voice()
        chunks = list(voice.synthesize(text))
        if not chunks:
            raise ValueError(f"--say {text!r}: nothing to speak (give a sentence with words)")
        pcm = b"".join(c.audio_int16_bytes for c in chunks)
        frame = rtc.AudioFrame(pcm, chunks[0].sample_rate, 1, len(pcm) // 2)
        return to_mono(frame, SAMPLE_RATE)

    return [await asyncio.to_thread(speak, s) for s in sentences]


def job_metadata(args: argparse.Namespace) -> str:
    """The job metadata a dispatch would carry, from ``--org`` or ``--metadata``.
    Raises ``ValueError`` with the rule when either is invalid."""
    if args.metadata is not None:
        try:
            json.loads(args.metadata)  # a clear error now rather than a default org later
        except json.JSONDecodeError as e:
            raise ValueError(f"--metadata is not JSON: {e}") from None
        return str(args.metadata)
    if args.org:
        return json.dumps({"organizationId": check_org_id(args.org, "--org")})
    return ""


async def wait_for_change(
    changed: asyncio.Event, predicate: Callable[[], bool], timeout: float
) -> bool:
    """Wait until ``predicate()`` holds, re-checked whenever ``changed`` is set (and every
    0.1 s); False when ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), min(remaining, 0.1))
        except asyncio.TimeoutError:
            pass
    return True


def answered_since(state: str, spoke_at: list[float], t: float) -> bool:
    """The agent spoke after timeline second ``t`` and is listening again."""
    return state in ("listening", "idle") and any(s > t for s in spoke_at)
