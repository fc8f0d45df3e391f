"""Provider configuration from environment variables: developer presets, and the last
resort of hybrid mode when the backend cannot answer.

``STT_PROVIDER`` names the primary, ``STT_FALLBACK`` the rest in order (same for TTS and
LLM). Which variables feed which provider option or secret is declared in the registry;
this module only reads them, from the mapping it is given: the worker passes the copy its
start-up took (``agent.worker.settings``); without one, this process's environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr, ValidationError

from providers.catalogue import ENV_HINTS, REGISTRY, get_spec, names, provider_config
from providers.config.backend import describe
from providers.errors import ConfigError
from providers.log import logger
from providers.types import (
    AgentPersona,
    ConfigSource,
    FaqEntry,
    OrgProviders,
    ProviderConfig,
    ProviderKind,
)

DEFAULT_CHAINS: Mapping[ProviderKind, tuple[str, ...]] = {
    ProviderKind.STT: ("vosk", "whisper"),
    ProviderKind.LLM: ("offline",),
    ProviderKind.TTS: ("piper",),
    ProviderKind.REALTIME: (),
}
"""The local stack: runs a whole call with no key and no network."""

_PERSONA = ("AGENT_INSTRUCTIONS", "AGENT_GREETING", "AGENT_FAQ_FILE", "AGENT_FALLBACK_REPLY")


def variables() -> set[str]:
    """Every variable this module reads: the chains, the persona, each provider's options
    and keys as the registry declares them, and the retired shared names it warns about."""
    found = {f"{k.value.upper()}_{part}" for k in ProviderKind for part in ("PROVIDER", "FALLBACK")}
    found |= {"LLM_BASE_URL", *_PERSONA, *ENV_HINTS}
    for spec in REGISTRY.values():
        found |= set(spec.env_options.values())
        found |= {var for secret in spec.secrets for var in secret.env}
    return found


def env_chain(kind: ProviderKind, environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    prefix = kind.value.upper()
    primary = env.get(f"{prefix}_PROVIDER", "").strip().lower()
    rest = [n.strip().lower() for n in env.get(f"{prefix}_FALLBACK", "").split(",") if n.strip()]
    if not primary:
        defaults = list(DEFAULT_CHAINS[kind])
        # an OpenAI-compatible server named in LLM_BASE_URL (Ollama, llama.cpp…) goes first
        if kind is ProviderKind.LLM and env.get("LLM_BASE_URL"):
            defaults.insert(0, "openai-compatible")
        return _dedupe(defaults + rest)
    return _dedupe([primary, *rest])


def env_provider(
    name: str, kind: ProviderKind, priority: int, environ: Mapping[str, str] | None = None
) -> ProviderConfig:
    env = os.environ if environ is None else environ
    spec = get_spec(name, kind)
    if spec is None:
        var = f"{kind.value.upper()}_PROVIDER/{kind.value.upper()}_FALLBACK"
        raise ConfigError(
            f"{var} names unknown {kind} provider '{name}': "
            f"known {kind} providers are {', '.join(names(kind))}"
        )
    options = {opt: env[var] for opt, var in spec.env_options.items() if env.get(var)}
    secrets = {}
    for secret in spec.secrets:
        value = next((env[v] for v in secret.env if env.get(v)), None)
        if value:
            secrets[secret.name] = SecretStr(value)
    try:  # the options become the provider's typed model here, once
        return provider_config(
            provider=name, kind=kind, priority=priority, options=options, secrets=secrets
        )
    except ValidationError as e:
        read = ", ".join(
            f"{var} ({opt})" for opt, var in spec.env_options.items() if opt in options
        )
        raise ConfigError(
            f"{kind} provider '{name}' has a bad option in the environment: {describe(e)}; "
            f"it reads {read}"
        ) from None


def env_persona(environ: Mapping[str, str] | None = None) -> AgentPersona:
    env = os.environ if environ is None else environ
    faq: tuple[FaqEntry, ...] = ()
    if path := env.get("AGENT_FAQ_FILE"):
        faq = load_faq_file(Path(path))
    defaults = AgentPersona()
    return AgentPersona(
        instructions=env.get("AGENT_INSTRUCTIONS") or defaults.instructions,
        greeting=env.get("AGENT_GREETING") or None,
        faq=faq,
        fallback=env.get("AGENT_FALLBACK_REPLY") or None,
    )


def load_faq_file(path: Path) -> tuple[FaqEntry, ...]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return tuple(FaqEntry.model_validate(e) for e in raw)
    except (OSError, ValueError, TypeError, ValidationError) as e:
        reason = e.strerror if isinstance(e, OSError) else type(e).__name__
        raise ConfigError(
            f"AGENT_FAQ_FILE={path}: cannot read it ({reason}); it must be a JSON list of "
            '{"question": ..., "answer": ..., "keywords": [...]} objects (keywords optional)'
        ) from None


def env_kind(
    kind: ProviderKind, environ: Mapping[str, str] | None = None
) -> tuple[ProviderConfig, ...]:
    chain = env_chain(kind, environ)
    # priorities descend with the order the variables list them in
    return tuple(
        env_provider(name, kind, priority=len(chain) - i, environ=environ)
        for i, name in enumerate(chain)
    )


def env_providers(
    organization_id: str | None = None, environ: Mapping[str, str] | None = None
) -> OrgProviders:
    config = OrgProviders(
        organization_id=organization_id,
        stt=env_kind(ProviderKind.STT, environ),
        llm=env_kind(ProviderKind.LLM, environ),
        tts=env_kind(ProviderKind.TTS, environ),
        realtime=env_kind(ProviderKind.REALTIME, environ),
        agent=env_persona(environ),
        source=ConfigSource.ENV,
    )
    _report_unread(config, os.environ if environ is None else environ)
    return config


_reported: set[str] = set()
"""Variables already reported by ``_report_unread`` (once per process, not once per call)."""


def _report_unread(config: OrgProviders, env: Mapping[str, str]) -> None:
    """Warn about a shared variable (``LLM_MODEL``…) that no provider of these chains reads:
    the setting it was meant to make is not made, and the per-provider name is the fix."""
    read = {
        var
        for kind in ProviderKind
        for c in config.chain(kind)
        if (spec := get_spec(c.provider, kind)) is not None
        for var in spec.env_options.values()
    }
    for var, instead in ENV_HINTS.items():
        if env.get(var) and var not in read and var not in _reported:
            _reported.add(var)
            logger.warning(
                "environment variable read by no provider of the chains, ignored",
                extra={"variable": var, "chains": config.summary(), "use": instead},
            )


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
