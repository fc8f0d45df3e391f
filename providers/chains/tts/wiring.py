"""One call's TTS chain: this project's own (``ChainTTS``) when there is more than one
provider."""

from __future__ import annotations

from typing import Any

from livekit.agents import tts

from providers.chains.budgets import FailoverSettings
from providers.chains.events import FailoverLog
from providers.chains.health import HealthKeys, HealthRegistry
from providers.chains.tts.fallback import ChainMember, ChainTTS
from providers.types import ProviderConfig


def build_tts_chain(
    built: list[tuple[ProviderConfig, tts.TTS[Any]]],
    *,
    health: HealthRegistry,
    failover: FailoverSettings,
    failovers: FailoverLog,
    org_id: str | None = None,
) -> tts.TTS[Any]:
    """``built``: the providers in the order they are tried; the last gets no budget.
    ``org_id``: whose call it is (its config's own breakers)."""
    if len(built) == 1:
        return built[0][1]
    last = len(built) - 1
    members = [
        ChainMember(
            c.provider,
            t,
            HealthKeys.of(c, org_id),
            None if i == last else failover.budget(c),
            own_budget=i != last and failover.own_budget(c),
        )
        for i, (c, t) in enumerate(built)
    ]
    return ChainTTS(members, health=health, failovers=failovers)
