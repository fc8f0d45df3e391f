"""The provider registry: every vendor module's specs in one table from (name, kind) to
everything the worker knows about a provider, and the one place where a config becomes a
typed ``ProviderConfig`` (``provider_config``).

What one vendor is lives in its module (``providers.catalogue.vendors``); this module only
assembles them and answers questions across vendors.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from providers.catalogue.spec import LLM, ProviderSpec
from providers.catalogue.vendors import (
    anthropic,
    azure_openai,
    cartesia,
    deepgram,
    elevenlabs,
    gemini,
    groq,
    offline,
    openai,
    openai_compatible,
    openai_realtime,
    piper,
    vosk,
    whisper,
)
from providers.types import Options, ProviderConfig, ProviderKind

VENDORS = (
    deepgram,
    vosk,
    whisper,
    piper,
    elevenlabs,
    cartesia,
    openai,
    groq,
    azure_openai,
    gemini,
    anthropic,
    openai_compatible,
    offline,
    openai_realtime,
)
"""Every vendor module; their order is the order ``names`` lists a kind's providers in."""

_SPECS: tuple[ProviderSpec, ...] = tuple(spec for vendor in VENDORS for spec in vendor.SPECS)
REGISTRY: Mapping[tuple[str, ProviderKind], ProviderSpec] = {(s.name, s.kind): s for s in _SPECS}
OFFLINE_LLM = offline.NAME

LIVEKIT_PLUGIN_MODULES = (
    "livekit.plugins.silero",
    "livekit.plugins.deepgram",
    "livekit.plugins.openai",
    "livekit.plugins.elevenlabs",
    "livekit.plugins.cartesia",
    "livekit.plugins.anthropic",
)
"""Every livekit plugin package a builder may import."""

ENV_HINTS: Mapping[str, str] = {
    "STT_MODEL": "DEEPGRAM_STT_MODEL or OPENAI_STT_MODEL",
    "TTS_VOICE": "ELEVENLABS_VOICE_ID, CARTESIA_VOICE or OPENAI_TTS_VOICE",
    "LLM_MODEL": (
        "OPENAI_LLM_MODEL, GROQ_LLM_MODEL, AZURE_OPENAI_LLM_MODEL, GEMINI_LLM_MODEL or "
        "ANTHROPIC_LLM_MODEL (LLM_MODEL is the openai-compatible server's model)"
    ),
}
"""Shared variables that once fed every provider of a chain (one model for OpenAI and
Groq alike), with the per-provider names that replace them: set but read by no provider of
the chain, they are reported rather than silently ignored."""


def import_plugins() -> list[str]:
    """Import every installed livekit plugin now. livekit registers plugins on import and
    refuses to do so off the main thread, so a room job (which runs on a job thread) could
    not import one lazily. Call once from the main thread before jobs start; returns the
    modules imported. A missing optional package is skipped: its builder says what to
    install when an org asks for it."""
    imported = []
    for module in LIVEKIT_PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        imported.append(module)
    return imported


def get_spec(name: str, kind: ProviderKind) -> ProviderSpec | None:
    return REGISTRY.get((name, kind))


def is_known(name: str, kind: ProviderKind) -> bool:
    return (name, kind) in REGISTRY


def names(kind: ProviderKind) -> list[str]:
    return [s.name for s in _SPECS if s.kind is kind]


def typed_options(provider: Any, kind: Any, options: Any) -> Options | None:
    """``options`` validated into the provider's model (``provider_config``'s ``settings``).
    None while the provider, kind or options are themselves invalid: the config's own
    validation reports those. A bad option raises a ``ValidationError`` naming each field
    as ``options.<field>`` and never its value (it may be a secret)."""
    try:
        spec = get_spec(str(provider), ProviderKind(kind))
    except ValueError:
        return None
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        return None
    model = spec.options if spec is not None else Options
    try:
        return model.model_validate(dict(options))
    except ValidationError as e:
        detail = "; ".join(
            f"options.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        error = PydanticCustomError("provider_options", "{detail}", {"detail": detail})
        line: InitErrorDetails = {"type": error, "loc": (), "input": None}
        raise ValidationError.from_exception_data(
            ProviderConfig.__name__, [line], hide_input=True
        ) from None


def provider_config(**fields: Any) -> ProviderConfig:
    """A ``ProviderConfig`` from its fields, with ``settings``: its ``options`` typed into
    the provider's model, once. Every config source (backend, environment, the offline
    responder's place in a chain) makes its configs here. Raises pydantic's
    ``ValidationError``; a bad option is named ``options.<field>``, without its value."""
    settings = typed_options(fields.get("provider"), fields.get("kind"), fields.get("options"))
    if settings is not None:
        fields["settings"] = settings
    return ProviderConfig(**fields)


def offline_last(chain: Iterable[ProviderConfig]) -> tuple[ProviderConfig, ...]:
    """An LLM chain as every call runs it: the offline responder last, once, whatever the
    config said, so a caller never meets silence when every real LLM is down. Its priority
    is below the rest, so the chain reads in priority order. Used by the factory and by
    ``python -m agent providers`` alike."""
    rest = tuple(c for c in chain if c.provider != OFFLINE_LLM)
    priority = min((c.priority for c in rest), default=1) - 1
    return (*rest, provider_config(provider=OFFLINE_LLM, kind=LLM, priority=priority))
