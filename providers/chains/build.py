"""Turns an ``OrgProviders`` into livekit objects: one STT, one LLM and one TTS per call,
each a fallback chain when more than one provider is configured.

A provider that cannot be built (missing key, bad option, plugin not installed, no local
model) is left out of its chain with one error line; the call goes on with the rest. Only a
kind left with no provider at all stops the job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, cast

from livekit.agents import llm, stt, tts, vad

from providers.catalogue.registry import BuildRequest, get_spec, offline_last
from providers.chains.failover import (
    FailoverLog,
    FailoverSettings,
    LLMFallback,
    STTFallback,
    log_switches,
    report_stt_health,
)
from providers.chains.health import HealthKeys, HealthRegistry, get_health
from providers.chains.llm.guard import GuardedLLM
from providers.chains.stt.early_decode import (
    DEFAULT_EARLY_DECODE,
    DEFAULT_JOIN_PAUSES,
    EarlyDecodeAdapter,
)
from providers.chains.stt.guard import GuardedSTT, Handover
from providers.chains.tts.chain import ChainMember, ChainTTS
from providers.config.types import ConfigSource, OrgProviders, ProviderConfig, ProviderKind
from providers.errors import (
    ConfigError,
    MissingSecretError,
    ProviderError,
    ProviderUnavailableError,
    who,
)
from providers.log import logger


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


def build_provider(config: ProviderConfig, org: OrgProviders) -> Any:
    """One livekit STT/LLM/TTS object for one config. Raises ``ProviderError``."""
    spec = get_spec(config.provider, config.kind)
    if spec is None:
        raise ConfigError(f"{who(org.organization_id)}unknown provider {config.label}")
    options = config.settings  # validated when the config was made
    for secret in spec.secrets:
        if secret.required and not config.secret(secret.name):
            hint = (
                f": set {' or '.join(secret.env)}"
                if org.source is ConfigSource.ENV
                else ": add it to this organization's provider secrets in the backend"
            )
            raise MissingSecretError(
                org.organization_id, config.provider, config.kind.value, secret.name, hint
            )
    secrets = {s.name: v for s in spec.secrets if (v := config.secret(s.name))}
    request = BuildRequest(
        options=options, secrets=secrets, persona=org.agent, org_id=org.organization_id
    )
    try:
        return spec.build(request)
    except ProviderError:
        raise
    except Exception as e:  # a plugin constructor rejected the options
        detail = str(e)
        for value in secrets.values():  # a plugin may echo what it was given
            detail = detail.replace(value, "**********")
        raise ConfigError(
            f"{who(org.organization_id)}provider {config.label} cannot be created: "
            f"{type(e).__name__}: {detail}"
        ) from None


Built = list[tuple[ProviderConfig, Any]]


def _build_kind(
    org: OrgProviders, kind: ProviderKind, health: HealthRegistry, skipped: list[str]
) -> Built:
    """This call's providers of one kind, healthy ones first (a provider that failed in
    another call of this worker goes to the back until its breaker's cool-down ends)."""
    built: Built = []
    reasons: list[str] = []
    chain = health.order(org.chain(kind), HealthKeys.of)
    if kind is ProviderKind.LLM:
        chain = list(offline_last(chain))  # after the health order: even a down LLM goes first
    for config in chain:
        try:
            built.append((config, build_provider(config, org)))
            health.register(HealthKeys.of(config))
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
) -> Chains:
    """The three chains of one call. ``vad`` drives non-streaming STTs, which start
    decoding after ``early_decode`` seconds of silence (``STT_EARLY_DECODE``; 0: at the
    VAD's end of speech, as livekit's ``StreamAdapter`` does)."""
    health = health or get_health()
    failover = failover or FailoverSettings()
    skipped: list[str] = []
    stts = _build_kind(org, ProviderKind.STT, health, skipped)
    llms = _build_kind(org, ProviderKind.LLM, health, skipped)
    ttss = _build_kind(org, ProviderKind.TTS, health, skipped)
    failovers = FailoverLog(org.organization_id)
    configs: dict[tuple[str, str], ProviderConfig] = {}
    for c, obj in (*stts, *llms, *ttss):
        configs.setdefault((c.kind.value, obj.provider), c)
    return Chains(
        stt=_stt_chain(
            stts, vad, org.organization_id, health, failover, early_decode, join_pauses, failovers
        ),
        llm=_llm_chain(llms, health, failover, failovers),
        tts=_tts_chain(ttss, health, failover, failovers),
        providers={
            kind: [c.provider for c, _ in built]
            for kind, built in (
                (ProviderKind.STT, stts),
                (ProviderKind.LLM, llms),
                (ProviderKind.TTS, ttss),
            )
        },
        skipped=skipped,
        labels={obj.label: c.provider for c, obj in (*stts, *llms, *ttss)},
        configs=configs,
        failovers=failovers,
        joins_pauses=not stts[0][1].capabilities.streaming and early_decode > 0,
        plugins=[obj for _, obj in (*stts, *llms, *ttss)],
    )


def _stt_chain(
    built: Built,
    vad_: vad.VAD | None,
    org_id: str | None,
    health: HealthRegistry,
    failover: FailoverSettings,
    early_decode: float,
    join_pauses: float,
    failovers: FailoverLog,
) -> stt.STT[Any]:
    if vad_ is None and any(not s.capabilities.streaming for _, s in built):
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
                vad=vad_,  # type: ignore[arg-type]
                after_silence=early_decode,
                join_pauses=join_pauses,
            )
        elif not s.capabilities.streaming:
            member = stt.StreamAdapter(stt=s, vad=vad_)  # type: ignore[arg-type]
        # a hang must hand over to the next one; the last one has nobody to hand over to
        watchdog = s.capabilities.streaming and i < last and vad_ is not None
        if watchdog or handover is not None:
            member = GuardedSTT(
                member,
                name=c.provider,
                vad=vad_ if watchdog else None,
                budget=failover.budget(c) if watchdog else None,
                handover=handover,
            )
        wrapped.append(member)
    if len(wrapped) == 1:
        return wrapped[0]
    adapter = STTFallback(
        wrapped,
        vad=vad_,
        # no retries of a failed provider, and connecting may take one budget
        attempt_timeout=failover.budget(built[0][0]),
        max_retry_per_stt=0,
    )
    if handover is not None:
        handover.watch(adapter, len(wrapped))
    last_error = report_stt_health(adapter, wrapped, [HealthKeys.of(c) for c, _ in built], health)
    log_switches(
        adapter,
        [c.provider for c, _ in built],
        wrapped,
        failovers=failovers,
        kind=ProviderKind.STT,
        reason_of=last_error,
    )
    return adapter


def _llm_chain(
    built: Built, health: HealthRegistry, failover: FailoverSettings, failovers: FailoverLog
) -> llm.LLM[Any]:
    if len(built) == 1:
        return cast("llm.LLM[Any]", built[0][1])
    members: list[llm.LLM[Any]] = [
        GuardedLLM(
            m, name=c.provider, keys=HealthKeys.of(c), health=health, budget=failover.budget(c)
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


def _tts_chain(
    built: Built, health: HealthRegistry, failover: FailoverSettings, failovers: FailoverLog
) -> tts.TTS[Any]:
    if len(built) == 1:
        return cast("tts.TTS[Any]", built[0][1])
    last = len(built) - 1
    members = [
        ChainMember(c.provider, t, HealthKeys.of(c), None if i == last else failover.budget(c))
        for i, (c, t) in enumerate(built)
    ]
    return ChainTTS(members, health=health, failovers=failovers)
