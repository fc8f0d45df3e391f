"""Turn-taking settings: how long a caller's silence ends their turn.

Between the caller's last word and the agent's first, three waits can add up:
- Silero's silence (``VAD_MIN_SILENCE``) before speech counts as ended (a non-streaming
  STT such as Whisper starts decoding earlier, after ``STT_EARLY_DECODE``, see
  ``providers/chains/stt/early_decode.py``);
- livekit's endpointing delay (``ENDPOINTING_MIN_DELAY``) before the turn is committed;
- when livekit's end-of-turn model judges the sentence unfinished, up to
  ``ENDPOINTING_MAX_DELAY`` for the caller to go on.

livekit's defaults are 0.55 s / 0.5 s / 3.0 s. Ours are shorter — measured with
``make bench`` on the local stack (README, Benchmarks) — and safe because a sentence that
sounds unfinished still gets the longer wait. Too short a silence cuts callers off at a
breath; raise ``VAD_MIN_SILENCE`` for slow speakers.

Which model judges "unfinished" is explicit (``TURN_DETECTOR``): left to itself, livekit
picks its LiveKit Cloud detector under ``dev`` and its local one under ``start``, and
interruptions go to a LiveKit Cloud model when it can reach one — so an offline worker
first tries the network on every call. Ours defaults to the local audio model
(``turn-detector-v1-mini``, on this machine) and VAD interruptions: nothing leaves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from livekit.agents import TurnHandlingOptions

from providers import EnvReader, env_reader
from providers.chains import DEFAULT_EARLY_DECODE, DEFAULT_JOIN_PAUSES

TurnDetectorChoice = Literal["local", "cloud", "vad", "auto"]
InterruptionChoice = Literal["vad", "adaptive", "auto"]
PreemptiveChoice = Literal["tts", "llm", "off"]
_DETECTORS: tuple[TurnDetectorChoice, ...] = ("local", "cloud", "vad", "auto")
_INTERRUPTIONS: tuple[InterruptionChoice, ...] = ("vad", "adaptive", "auto")
_PREEMPTIVE: tuple[PreemptiveChoice, ...] = ("tts", "llm", "off")


@dataclass(frozen=True)
class TurnSettings:
    vad_min_silence: float = 0.3
    mid_sentence_pause: float = DEFAULT_JOIN_PAUSES
    """A caller's silence shorter than this is a pause inside a sentence: it never ends
    the turn (Whisper's adapter joins it; for streaming STTs, the endpointing waits it)."""
    endpointing_min_delay: float = 0.3
    endpointing_max_delay: float = 1.5
    turn_detector: TurnDetectorChoice = "vad"
    """``local``: livekit's audio end-of-turn model on this machine; ``cloud``: its LiveKit
    Cloud model (local model if unreachable); ``vad``: no model, silence only; ``auto``:
    livekit's own pick."""
    interruption: InterruptionChoice = "vad"
    """``vad``: the caller's speech interrupts; ``adaptive``: LiveKit Cloud's model tells a
    real interruption from a backchannel; ``auto``: livekit's own pick."""
    preemptive: PreemptiveChoice = "tts"
    """Start the reply before the turn is committed, on the STT's transcript: ``tts``
    (the LLM and the first audio), ``llm`` (livekit's default: the LLM only), ``off``."""

    early_decode: float = DEFAULT_EARLY_DECODE
    """Silence after which a non-streaming STT (Whisper) starts decoding, before the end
    of speech (0: at the VAD's end of speech, as livekit's ``StreamAdapter`` does)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> TurnSettings:
        d = cls()
        with env_reader(environ) as env:
            return cls(
                vad_min_silence=env.number("VAD_MIN_SILENCE", d.vad_min_silence),
                mid_sentence_pause=env.number("MID_SENTENCE_PAUSE", d.mid_sentence_pause),
                endpointing_min_delay=env.number("ENDPOINTING_MIN_DELAY", d.endpointing_min_delay),
                endpointing_max_delay=env.number("ENDPOINTING_MAX_DELAY", d.endpointing_max_delay),
                turn_detector=env.choice("TURN_DETECTOR", _DETECTORS, d.turn_detector),
                interruption=env.choice("INTERRUPTION_MODE", _INTERRUPTIONS, d.interruption),
                preemptive=env.choice("PREEMPTIVE_GENERATION", _PREEMPTIVE, d.preemptive),
                early_decode=env.number("STT_EARLY_DECODE", d.early_decode),
            )

    def turn_handling(self, *, pause_floor: float = 0.0) -> TurnHandlingOptions:
        """livekit's options. ``pause_floor``: the shortest wait before a turn is committed,
        for STTs that do not join a sentence's pauses themselves (streaming ones), so a
        caller's mid-sentence pause does not end the turn with them either."""
        min_delay = max(self.endpointing_min_delay, pause_floor)
        options: TurnHandlingOptions = {
            "endpointing": {
                "min_delay": min_delay,
                "max_delay": max(self.endpointing_max_delay, min_delay),
            }
        }
        if self.turn_detector != "auto":
            options["turn_detection"] = self._detector()
        if self.interruption != "auto":
            options["interruption"] = {"mode": self.interruption}
        options["preemptive_generation"] = {
            "enabled": self.preemptive != "off",
            "preemptive_tts": self.preemptive == "tts",
        }
        return options

    def _detector(self) -> Any:
        if self.turn_detector == "vad":
            return "vad"
        from livekit.agents.inference import TurnDetector

        return TurnDetector(version="v1-mini" if self.turn_detector == "local" else "v1")

    def describe(self) -> dict[str, str]:
        """For the per-call log line: what decides the end of a caller's turn."""
        return {
            "turn_detector": self.turn_detector,
            "interruption": self.interruption,
            "preemptive": self.preemptive,
        }
