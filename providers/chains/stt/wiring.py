"""One call's STT chain: each provider adapted to streaming and guarded, behind livekit's
fallback adapter when there is more than one."""

from __future__ import annotations

from typing import Any

from livekit.agents import stt, vad

from providers.chains.budgets import FailoverSettings
from providers.chains.events import FailoverLog, log_switches
from providers.chains.health import HealthKeys, HealthRegistry
from providers.chains.stt.early_decode import EarlyDecodeAdapter
from providers.chains.stt.fallback import STTFallback, report_stt_health
from providers.chains.stt.guard import GuardedSTT, Handover
from providers.errors import ConfigError, who
from providers.types import ProviderConfig, ProviderKind


def build_stt_chain(
    built: list[tuple[ProviderConfig, stt.STT[Any]]],
    *,
    health: HealthRegistry,
    failover: FailoverSettings,
    failovers: FailoverLog,
    vad: vad.VAD | None,
    org_id: str | None,
    early_decode: float,
    join_pauses: float,
) -> stt.STT[Any]:
    """``built``: the providers in the order they are tried. ``vad`` segments speech for
    non-streaming STTs and runs the watchdog of streaming ones."""
    if vad is None and any(not s.capabilities.streaming for _, s in built):
        raise ConfigError(f"{who(org_id)}a non-streaming STT needs a VAD to segment speech")
    last = len(built) - 1
    # what the caller said to a failed STT goes to the next one (only a chain has a next)
    handover = Handover(failover.stt_replay) if last and failover.stt_replay > 0 else None
    wrapped: list[stt.STT[Any]] = []
    for i, (c, s) in enumerate(built):
        member: stt.STT[Any] = s
        if not s.capabilities.streaming and early_decode > 0:
            member = EarlyDecodeAdapter(
                stt=s,
                vad=vad,  # type: ignore[arg-type]
                after_silence=early_decode,
                join_pauses=join_pauses,
            )
        elif not s.capabilities.streaming:
            member = stt.StreamAdapter(stt=s, vad=vad)  # type: ignore[arg-type]
        # a hang must hand over to the next one; the last one has nobody to hand over to
        watchdog = s.capabilities.streaming and i < last and vad is not None
        if watchdog or handover is not None:
            member = GuardedSTT(
                member,
                name=c.provider,
                vad=vad if watchdog else None,
                budget=failover.budget(c) if watchdog else None,
                own_budget=watchdog and failover.own_budget(c),
                handover=handover,
            )
        wrapped.append(member)
    if len(wrapped) == 1:
        return wrapped[0]
    adapter = STTFallback(
        wrapped,
        vad=vad,
        # no retries of a failed provider, and connecting may take one budget — never less
        # than the worker's: a connect cut short by an org's own budget fails like an outage
        # (a plugin's connection error), so it would count against the shared endpoint
        attempt_timeout=max(failover.budget(built[0][0]), failover.budgets[ProviderKind.STT]),
        max_retry_per_stt=0,
    )
    if handover is not None:
        handover.watch(adapter, len(wrapped))
    keys = [HealthKeys.of(c, org_id) for c, _ in built]
    last_error = report_stt_health(adapter, wrapped, keys, health)
    log_switches(
        adapter,
        [c.provider for c, _ in built],
        wrapped,
        failovers=failovers,
        kind=ProviderKind.STT,
        reason_of=last_error,
    )
    return adapter
