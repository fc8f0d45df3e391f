"""Turns an ``OrgProviders`` into livekit objects: one STT, one LLM and one TTS per call,
each a fallback chain when more than one provider is configured.

A provider that cannot be built (missing key, bad option, plugin not installed, no local
model) is left out of its chain with one error line; the call goes on with the rest. Only a
kind left with no provider at all stops the job. Each kind's chain is wired in its own
package (``stt``, ``llm``, ``tts``): this module builds the providers and hands them over.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import APIConnectOptions, llm, stt, tts, vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS

from providers.catalogue import build_provider, offline_last
from providers.chains.budgets import FailoverSettings
from providers.chains.events import FailoverListener, FailoverLog
from providers.chains.health import HealthKeys, HealthRegistry, get_health
from providers.chains.llm import build_llm_chain
from providers.chains.realtime import RealtimeChain, build_realtime_chain
from providers.chains.stt import build_stt_chain
from providers.chains.stt.early_decode import DEFAULT_EARLY_DECODE, DEFAULT_JOIN_PAUSES
from providers.chains.tts import build_tts_chain
from providers.compat import SessionConnectOptions
from providers.errors import (
    ConfigError,
    ProviderError,
    ProviderUnavailableError,
    who,
)
from providers.log import logger
from providers.types import OrgProviders, ProviderConfig, ProviderKind


@dataclass
class Chains:
    stt: stt.STT[Any]
    llm: llm.LLM[Any]
    tts: tts.TTS[Any]
    providers: dict[ProviderKind, list[str]] = field(default_factory=dict)
    """Names actually in each chain, in the order they are tried."""
    skipped: list[str] = field(default_factory=list)
    """Why configured providers were left out (already logged)."""
    labels: dict[str, str] = field(default_factory=dict)
    """Plugin label → provider name: metrics carry the label of the provider that served."""
    configs: dict[tuple[str, str], ProviderConfig] = field(default_factory=dict)
    """(kind, the plugin's ``provider`` string) → its config: livekit's usage accounting
    names providers the way their plugins do."""
    failovers: FailoverLog = field(default_factory=lambda: FailoverLog(None))
    """This call's switches."""
    joins_pauses: bool = False
    """The first STT joins a sentence's short pauses into one transcript itself
    (``EarlyDecodeAdapter``); otherwise the session's endpointing has to wait them out."""
    plugins: list[Any] = field(default_factory=list)
    """The provider objects the chains wrap, closed by ``aclose``."""
    realtime: RealtimeChain | None = None
    """The org's speech-to-speech models, when it has a usable one: the call starts on it,
    and the three chains above are its fallback."""

    @property
    def session_options(self) -> SessionConnectOptions:
        """``AgentSession(conn_options=...)`` for these chains. The session does not retry
        a chain: it has tried every member once, without back-off, and the session's retries
        (3, after 0.1, 2 and 2 s) would only run the same round again in the caller's
        silence. A kind with one provider keeps livekit's retries."""

        def retries(kind: ProviderKind) -> APIConnectOptions:
            if len(self.providers.get(kind, ())) > 1:
                return dataclasses.replace(DEFAULT_API_CONNECT_OPTIONS, max_retry=0)
            return DEFAULT_API_CONNECT_OPTIONS

        return SessionConnectOptions(
            stt_conn_options=retries(ProviderKind.STT),
            llm_conn_options=retries(ProviderKind.LLM),
            tts_conn_options=retries(ProviderKind.TTS),
        )

    async def aclose(self) -> None:
        """Release what this call's providers hold: HTTP clients (OpenAI's, per object),
        websockets, connection pools and background tasks — ElevenLabs' prewarm retries an
        unreachable endpoint until its TTS is closed. A worker takes calls for weeks; a
        provider that fails to close is logged, never raised."""
        seen: set[int] = set()
        for obj in (self.stt, self.llm, self.tts, *self.plugins):
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            try:
                await asyncio.wait_for(obj.aclose(), CLOSE_TIMEOUT)
            except Exception as e:
                logger.warning(
                    "provider did not close cleanly",
                    extra={
                        "provider": self.labels.get(obj.label, obj.label),
                        "error": type(e).__name__,
                    },
                )


CLOSE_TIMEOUT = 5.0
"""Seconds one provider object may take to close."""


Built = list[tuple[ProviderConfig, Any]]


def _build_kind(
    org: OrgProviders, kind: ProviderKind, health: HealthRegistry, skipped: list[str]
) -> Built:
    """This call's providers of one kind, healthy ones first (a provider that failed in
    another call of this worker goes to the back until its breaker's cool-down ends)."""
    built: Built = []
    reasons: list[str] = []
    org_id = org.organization_id
    chain = health.order(org.chain(kind), lambda c: HealthKeys.of(c, org_id))
    if kind is ProviderKind.LLM:
        chain = list(offline_last(chain))  # after the health order: even a down LLM goes first
    for config in chain:
        try:
            built.append((config, build_provider(config, org)))
            health.register(HealthKeys.of(config, org_id))
        except ProviderError as e:
            reasons.append(str(e))
            # a missing plugin or local model is expected on some machines; a bad config is not
            level = logging.WARNING if isinstance(e, ProviderUnavailableError) else logging.ERROR
            logger.log(
                level,
                "provider left out of the chain",
                extra={"org": org.organization_id, "provider": config.label, "reason": str(e)},
            )
    skipped.extend(reasons)
    if not built:
        why = "; ".join(reasons) or "none configured"
        raise ConfigError(f"{who(org.organization_id)}no usable {kind} provider ({why})")
    return built


def build_chains(
    org: OrgProviders,
    *,
    vad: vad.VAD | None,
    health: HealthRegistry | None = None,
    failover: FailoverSettings | None = None,
    early_decode: float = DEFAULT_EARLY_DECODE,
    join_pauses: float = DEFAULT_JOIN_PAUSES,
    on_failover: Iterable[FailoverListener] = (),
) -> Chains:
    """The three chains of one call. ``vad`` drives non-streaming STTs, which start
    decoding after ``early_decode`` seconds of silence (``STT_EARLY_DECODE``; 0: at the
    VAD's end of speech, as livekit's ``StreamAdapter`` does). ``on_failover``: told every
    switch of this call (metrics)."""
    health = health or get_health()
    failover = failover or FailoverSettings()
    skipped: list[str] = []
    stts = _build_kind(org, ProviderKind.STT, health, skipped)
    llms = _build_kind(org, ProviderKind.LLM, health, skipped)
    ttss = _build_kind(org, ProviderKind.TTS, health, skipped)
    failovers = FailoverLog(org.organization_id, on_failover)
    realtime, rts = build_realtime_chain(
        org, health=health, failover=failover, failovers=failovers, skipped=skipped
    )
    configs: dict[tuple[str, str], ProviderConfig] = {}
    for c, obj in (*stts, *llms, *ttss, *rts):
        configs.setdefault((c.kind.value, obj.provider), c)
    providers = {
        kind: [c.provider for c, _ in built]
        for kind, built in (
            (ProviderKind.STT, stts),
            (ProviderKind.LLM, llms),
            (ProviderKind.TTS, ttss),
        )
    }
    if rts:
        providers[ProviderKind.REALTIME] = [c.provider for c, _ in rts]
    return Chains(
        stt=build_stt_chain(
            stts,
            health=health,
            failover=failover,
            failovers=failovers,
            vad=vad,
            org_id=org.organization_id,
            early_decode=early_decode,
            join_pauses=join_pauses,
        ),
        llm=build_llm_chain(
            llms, health=health, failover=failover, failovers=failovers, org_id=org.organization_id
        ),
        tts=build_tts_chain(
            ttss, health=health, failover=failover, failovers=failovers, org_id=org.organization_id
        ),
        providers=providers,
        skipped=skipped,
        labels={obj.label: c.provider for c, obj in (*stts, *llms, *ttss, *rts)},
        configs=configs,
        failovers=failovers,
        joins_pauses=not stts[0][1].capabilities.streaming and early_decode > 0,
        plugins=[obj for _, obj in (*stts, *llms, *ttss)] + ([realtime] if realtime else []),
        realtime=realtime,
    )
