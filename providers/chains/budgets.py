"""What a chain allows each provider before it moves on.

Budgets: how long a provider may take for its first result before the chain moves on —
``STT_CONNECT_TIMEOUT``, ``LLM_FIRST_TOKEN_TIMEOUT``, ``TTS_FIRST_AUDIO_TIMEOUT`` (default
2 s each), or a provider's own ``firstResultTimeout`` option. The last provider of a chain
gets no budget: there is nobody to hand over to, and waiting beats silence. Replay: how
much of what the caller said to a failed STT the next one hears.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from providers.config.settings import env_float
from providers.types import ProviderConfig, ProviderKind

DEFAULT_BUDGET = 2.0
_BUDGET_VARS = {
    ProviderKind.STT: "STT_CONNECT_TIMEOUT",
    ProviderKind.LLM: "LLM_FIRST_TOKEN_TIMEOUT",
    ProviderKind.TTS: "TTS_FIRST_AUDIO_TIMEOUT",
}
DEFAULT_REPLAY = 5.0
"""Seconds of a failed STT's audio the next one hears (``STT_REPLAY_SECONDS``)."""


@dataclass(frozen=True)
class FailoverSettings:
    budgets: Mapping[ProviderKind, float]
    stt_replay: float = DEFAULT_REPLAY
    """``STT_REPLAY_SECONDS``: how much of what the caller said to a failed STT the next one
    hears (0: none). See ``providers.chains.stt.guard``."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FailoverSettings:
        env = os.environ if environ is None else environ
        return cls(
            {k: env_float(env, var, DEFAULT_BUDGET) for k, var in _BUDGET_VARS.items()},
            stt_replay=env_float(env, "STT_REPLAY_SECONDS", DEFAULT_REPLAY),
        )

    def budget(self, config: ProviderConfig) -> float:
        """The provider's own ``firstResultTimeout`` (validated at load), else the kind's."""
        return config.settings.first_result_timeout or self.budgets[config.kind]
