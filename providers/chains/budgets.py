"""What a chain allows each provider before it moves on.

Budgets: how long a provider may take for its first result before the chain moves on —
``STT_CONNECT_TIMEOUT``, ``LLM_FIRST_TOKEN_TIMEOUT``, ``TTS_FIRST_AUDIO_TIMEOUT`` (default
2 s each), or a provider's own ``firstResultTimeout`` option. The last provider of a chain
gets no budget: there is nobody to hand over to, and waiting beats silence. Replay: how
much of what the caller said to a failed STT the next one hears.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from providers.chains.health import DEFAULT_COOLDOWN
from providers.env_vars import EnvReader, env_reader
from providers.types import ProviderConfig, ProviderKind

DEFAULT_BUDGET = 2.0
_BUDGET_VARS = {
    ProviderKind.STT: "STT_CONNECT_TIMEOUT",
    ProviderKind.LLM: "LLM_FIRST_TOKEN_TIMEOUT",
    ProviderKind.TTS: "TTS_FIRST_AUDIO_TIMEOUT",
    ProviderKind.REALTIME: "REALTIME_FIRST_AUDIO_TIMEOUT",
}
DEFAULT_REPLAY = 5.0
"""Seconds of a failed STT's audio the next one hears (``STT_REPLAY_SECONDS``)."""


@dataclass(frozen=True)
class FailoverSettings:
    budgets: Mapping[ProviderKind, float] = field(
        default_factory=lambda: dict.fromkeys(_BUDGET_VARS, DEFAULT_BUDGET)
    )
    stt_replay: float = DEFAULT_REPLAY
    """``STT_REPLAY_SECONDS``: how much of what the caller said to a failed STT the next one
    hears (0: none). See ``providers.chains.stt.guard``."""
    cooldown: float = DEFAULT_COOLDOWN
    """``PROVIDER_COOLDOWN``: seconds a failed provider is skipped by every call of the
    worker before one call probes it (``providers.chains.health``)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> FailoverSettings:
        with env_reader(environ) as env:
            return cls(
                {k: env.number(var, DEFAULT_BUDGET) for k, var in _BUDGET_VARS.items()},
                stt_replay=env.number("STT_REPLAY_SECONDS", DEFAULT_REPLAY),
                cooldown=env.number("PROVIDER_COOLDOWN", DEFAULT_COOLDOWN),
            )

    def budget(self, config: ProviderConfig) -> float:
        """The provider's own ``firstResultTimeout`` (validated at load), else the kind's."""
        return config.settings.first_result_timeout or self.budgets[config.kind]

    def own_budget(self, config: ProviderConfig) -> bool:
        """The config's own budget is shorter than the worker's for its kind: a provider
        missing it is a verdict on that org's choice, not on the provider
        (``providers.chains.blame``)."""
        return self.budget(config) < self.budgets[config.kind]
