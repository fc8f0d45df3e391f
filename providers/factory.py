"""Turns an ``OrgProviders`` into livekit objects: one STT, one LLM and one TTS per call,
each a fallback chain when more than one provider is configured.

A provider that cannot be built (missing key, bad option, plugin not installed, no local
model) is left out of its chain with one error line; the call goes on with the rest. Only a
kind left with no provider at all stops the job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import llm, stt, tts, vad
from pydantic import ValidationError

from .backend import describe
from .errors import (
    ConfigError,
    MissingSecretError,
    ProviderError,
    ProviderUnavailableError,
    who,
)
from .log import logger
from .registry import OFFLINE_LLM, BuildRequest, ProviderSpec, get_spec
from .types import ConfigSource, OrgProviders, ProviderConfig, ProviderKind


@dataclass
class Chains:
    stt: stt.STT[Any]
    llm: llm.LLM[Any]
    tts: tts.TTS[Any]
    providers: dict[ProviderKind, list[str]] = field(default_factory=dict)
    """Names actually in each chain, in the order they are tried."""
    skipped: list[str] = field(default_factory=list)
    """Why configured providers were left out (already logged)."""


def validate_options(spec: ProviderSpec, config: ProviderConfig, org_id: str | None) -> Any:
    try:
        options = spec.options.model_validate(dict(config.options))
    except ValidationError as e:
        raise ConfigError(
            f"{who(org_id)}provider {config.label} has bad options: {describe(e)}"
        ) from None
    if options.model_extra:
        logger.warning(
            "ignoring unknown provider options",
            extra={"org": org_id, "provider": config.label, "options": sorted(options.model_extra)},
        )
    return options


def build_provider(config: ProviderConfig, org: OrgProviders) -> Any:
    """One livekit STT/LLM/TTS object for one config. Raises ``ProviderError``."""
    spec = get_spec(config.provider, config.kind)
    if spec is None:
        raise ConfigError(f"{who(org.organization_id)}unknown provider {config.label}")
    options = validate_options(spec, config, org.organization_id)
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


def _build_kind(org: OrgProviders, kind: ProviderKind, skipped: list[str]) -> list[tuple[str, Any]]:
    built: list[tuple[str, Any]] = []
    reasons: list[str] = []
    for config in org.chain(kind):
        try:
            built.append((config.provider, build_provider(config, org)))
        except ProviderError as e:
            reasons.append(str(e))
            # a missing plugin or local model is expected on some machines; a bad config is not
            level = logging.WARNING if isinstance(e, ProviderUnavailableError) else logging.ERROR
            logger.log(
                level,
                "provider left out of the chain",
                extra={"org": org.organization_id, "provider": config.label, "reason": str(e)},
            )
    if kind is ProviderKind.LLM and (not built or built[-1][0] != OFFLINE_LLM):
        # never silence: the offline responder answers when every real LLM is down
        offline = ProviderConfig(provider=OFFLINE_LLM, kind=kind, priority=-(2**31))
        built = [b for b in built if b[0] != OFFLINE_LLM]
        built.append((OFFLINE_LLM, build_provider(offline, org)))
    skipped.extend(reasons)
    if not built:
        why = "; ".join(reasons) or "none configured"
        raise ConfigError(f"{who(org.organization_id)}no usable {kind} provider ({why})")
    return built


def build_chains(org: OrgProviders, *, vad: vad.VAD | None) -> Chains:
    """The three chains of one call. ``vad`` drives non-streaming STTs (StreamAdapter)."""
    skipped: list[str] = []
    stts = _build_kind(org, ProviderKind.STT, skipped)
    llms = _build_kind(org, ProviderKind.LLM, skipped)
    ttss = _build_kind(org, ProviderKind.TTS, skipped)
    return Chains(
        stt=_stt_chain([s for _, s in stts], vad, org.organization_id),
        llm=llms[0][1] if len(llms) == 1 else llm.FallbackAdapter([m for _, m in llms]),
        tts=ttss[0][1] if len(ttss) == 1 else tts.FallbackAdapter([t for _, t in ttss]),
        providers={
            ProviderKind.STT: [n for n, _ in stts],
            ProviderKind.LLM: [n for n, _ in llms],
            ProviderKind.TTS: [n for n, _ in ttss],
        },
        skipped=skipped,
    )


def _stt_chain(stts: list[stt.STT[Any]], vad_: vad.VAD | None, org_id: str | None) -> stt.STT[Any]:
    if vad_ is None and any(not s.capabilities.streaming for s in stts):
        raise ConfigError(f"{who(org_id)}a non-streaming STT needs a VAD to segment speech")
    wrapped = [
        s if s.capabilities.streaming else stt.StreamAdapter(stt=s, vad=vad_)  # type: ignore[arg-type]
        for s in stts
    ]
    return wrapped[0] if len(wrapped) == 1 else stt.FallbackAdapter(wrapped, vad=vad_)
