"""One call's LLM chain: every provider but the last guarded, behind livekit's fallback
adapter."""

from __future__ import annotations

from typing import Any

from livekit.agents import llm

from providers.chains.budgets import FailoverSettings
from providers.chains.events import FailoverLog, log_switches
from providers.chains.health import HealthKeys, HealthRegistry
from providers.chains.llm.fallback import LLMFallback
from providers.chains.llm.guard import GuardedLLM
from providers.types import ProviderConfig, ProviderKind


def build_llm_chain(
    built: list[tuple[ProviderConfig, llm.LLM[Any]]],
    *,
    health: HealthRegistry,
    failover: FailoverSettings,
    failovers: FailoverLog,
    org_id: str | None = None,
) -> llm.LLM[Any]:
    """``built``: the providers in the order they are tried, the offline responder last;
    ``org_id``: whose call it is (its config's own breakers)."""
    if len(built) == 1:
        return built[0][1]
    members: list[llm.LLM[Any]] = [
        GuardedLLM(
            m,
            name=c.provider,
            keys=HealthKeys.of(c, org_id),
            health=health,
            budget=failover.budget(c),
            own_budget=failover.own_budget(c),
        )
        for c, m in built[:-1]
    ]
    members.append(built[-1][1])  # the offline responder: nothing to guard, never fails
    # retry_on_chunk_sent: a provider dropping mid-reply still ends in a complete answer
    adapter = LLMFallback(members, max_retry_per_llm=0, retry_on_chunk_sent=True)
    log_switches(
        adapter,
        [c.provider for c, _ in built],
        members,
        failovers=failovers,
        kind=ProviderKind.LLM,
        reason_of=lambda i: getattr(members[i], "last_error", None),
    )
    return adapter
