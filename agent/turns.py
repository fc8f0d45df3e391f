"""Turn-taking settings: how long a caller's silence ends their turn.

Between the caller's last word and the agent's first, three waits can add up:
- Silero's silence (``VAD_MIN_SILENCE``) before speech counts as ended — also when a
  non-streaming STT such as Whisper starts decoding;
- livekit's endpointing delay (``ENDPOINTING_MIN_DELAY``) before the turn is committed;
- when livekit's end-of-turn model judges the sentence unfinished, up to
  ``ENDPOINTING_MAX_DELAY`` for the caller to go on.

livekit's defaults are 0.55 s / 0.5 s / 3.0 s. Ours are shorter — measured with
``make bench`` on the local stack (README, Benchmarks) — and safe because a sentence that
sounds unfinished still gets the longer wait. Too short a silence cuts callers off at a
breath; raise ``VAD_MIN_SILENCE`` for slow speakers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from livekit.agents.voice.turn import TurnHandlingOptions

from providers.settings import env_float


@dataclass(frozen=True)
class TurnSettings:
    vad_min_silence: float = 0.3
    endpointing_min_delay: float = 0.3
    endpointing_max_delay: float = 1.5

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TurnSettings:
        env = os.environ if environ is None else environ
        d = cls()
        return cls(
            vad_min_silence=env_float(env, "VAD_MIN_SILENCE", d.vad_min_silence),
            endpointing_min_delay=env_float(env, "ENDPOINTING_MIN_DELAY", d.endpointing_min_delay),
            endpointing_max_delay=env_float(env, "ENDPOINTING_MAX_DELAY", d.endpointing_max_delay),
        )

    def turn_handling(self) -> TurnHandlingOptions:
        return {
            "endpointing": {
                "min_delay": self.endpointing_min_delay,
                "max_delay": max(self.endpointing_max_delay, self.endpointing_min_delay),
            }
        }
