"""What a call looked like from the caller's side, as ``simulate`` and ``call`` print it:
the turns with the providers that served them and their latencies, as text or one JSON
object."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.tools.audio_files import CallerTurn, PlaybackSegment


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


def print_result(result: CallResult, as_json: bool) -> None:
    """The call on stdout: one JSON object (``--json``; logs stay on stderr) or the text."""
    print(json.dumps(result.to_json()) if as_json else format_transcript(result))


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


__all__ = ["CallResult", "Turn", "describe_usage", "format_transcript", "print_result"]
