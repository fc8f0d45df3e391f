"""Typed, validated provider configuration shared by the loader, env config and factory.

Secrets are ``SecretStr`` from the moment they are parsed: their repr, str and JSON dump
are redacted, so a config can be logged or printed without leaking a key.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic.alias_generators import to_camel

from providers.redaction import option_secrets, register


class ProviderKind(str, enum.Enum):
    STT = "stt"
    LLM = "llm"
    TTS = "tts"
    REALTIME = "realtime"
    """A speech-to-speech model (hears and speaks, its own turn detection): when an org has
    one, its calls run on it and the three pipeline kinds are its fallback."""

    def __str__(self) -> str:
        return self.value


PIPELINE_KINDS = (ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS)
"""The kinds every call needs (the cascaded pipeline); ``realtime`` is optional."""


class ConfigSource(str, enum.Enum):
    """Where a resolved config came from; shown in logs and `python -m agent providers`."""

    BACKEND = "backend"
    CACHE = "cache"
    STALE_CACHE = "stale-cache"
    ENV = "env"

    def __str__(self) -> str:
        return self.value


class Unit(str, enum.Enum):
    """What a provider's use is counted in (livekit's usage accounting); prices are USD per
    unit (``providers.catalogue.pricing``)."""

    AUDIO_SECONDS = "audioSeconds"
    INPUT_TOKENS = "inputTokens"
    """Every prompt token, cached ones included (livekit's ``input_tokens``)."""
    CACHED_INPUT_TOKENS = "cachedInputTokens"
    """The cached part of ``inputTokens``, billed at the cached price instead."""
    OUTPUT_TOKENS = "outputTokens"
    CHARACTERS = "characters"
    INPUT_AUDIO_TOKENS = "inputAudioTokens"
    """A realtime model's audio input tokens (its ``inputTokens`` are then text only)."""
    CACHED_INPUT_AUDIO_TOKENS = "cachedInputAudioTokens"
    """The cached part of ``inputAudioTokens``."""
    OUTPUT_AUDIO_TOKENS = "outputAudioTokens"
    """A realtime model's audio output tokens (its ``outputTokens`` are then text only)."""

    def __str__(self) -> str:
        return self.value

    @property
    def metric_label(self) -> str:
        """``audio_seconds``: the Prometheus spelling."""
        return "".join("_" + c.lower() if c.isupper() else c for c in self.value)


class Options(BaseModel):
    """Base of every provider's typed options (each vendor module of the catalogue declares
    its own): accepts ``base_url`` and ``baseUrl`` alike; unknown keys are kept aside
    (``model_extra``) and reported, not fatal."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )

    first_result_timeout: float | None = Field(default=None, gt=0)
    """Failover budget for this provider, seconds (see ``providers.chains.budgets``)."""

    @property
    def endpoint(self) -> str | None:
        """Where the provider is reached, when its options say (a URL or ``host:port``);
        None: the plugin's own default. Breakers and ``local-only`` key on it."""
        return None

    def shortens_timeouts(self) -> bool:
        """A ``*timeout`` option (Piper's ``timeout``…) is set below its default: a timeout
        the provider then meets is this config's doing, not an outage
        (``providers.chains.blame``). ``first_result_timeout`` is the chain's to judge."""
        for name, info in type(self).model_fields.items():
            if not name.endswith("timeout") or name == "first_result_timeout":
                continue
            value, default = getattr(self, name), info.default
            numbers = (int, float)
            if isinstance(value, numbers) and isinstance(default, numbers) and value < default:
                return True
        return False


class ProviderConfig(BaseModel):
    """One provider in one chain: which plugin, how eager, its settings and keys.

    ``options`` is what was configured (shown by ``python -m agent providers``);
    ``settings`` is the same, validated once into the provider's typed model when the
    config is made: everything downstream (factory, breakers, budgets, strategy) reads
    ``settings``. Make one with ``providers.catalogue.provider_config``, which knows each
    provider's model (this module knows none of them) and fails on a bad option, naming
    the field; made directly, ``settings`` stays the bare ``Options``."""

    # an input may be a secret (a key in the wrong field): errors name fields, not values
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    provider: str
    kind: ProviderKind
    priority: int = 0
    """Higher is tried first."""
    enabled: bool = True
    options: Mapping[str, Any] = Field(default_factory=dict)
    secrets: Mapping[str, SecretStr] = Field(default_factory=dict)
    pricing: Mapping[Unit, float] | None = None
    """This organization's price for this provider (the entry's ``config.pricing``)."""
    settings: Options = Field(default_factory=Options, repr=False, exclude=True)
    """``options`` as the provider's typed model (set by ``provider_config``)."""

    def model_post_init(self, __context: Any) -> None:
        # known from the moment it is parsed: a provider echoing it back is redacted
        register(*self.secrets.values(), *option_secrets(self.options))

    def secret(self, name: str) -> str | None:
        value = self.secrets.get(name)
        return value.get_secret_value() if value is not None else None

    @property
    def label(self) -> str:
        return f"'{self.provider}' ({self.kind})"

    @property
    def endpoint(self) -> str | None:
        """Where the provider is reached (``Options.endpoint``), else None: its default."""
        return self.settings.endpoint


class Strategy(str, enum.Enum):
    """How a chain is ordered (``strategy`` from the backend, ``PROVIDER_STRATEGY``)."""

    PRIORITY = "priority"
    """The configured priorities (healthy providers first)."""
    COST = "cost"
    """Cheapest first by the price table (healthy providers first)."""
    LOCAL_ONLY = "local-only"
    """Providers that run on this machine only: no audio or text leaves it."""

    def __str__(self) -> str:
        return self.value


class FaqEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    question: str
    answer: str
    keywords: tuple[str, ...] = ()
    """Other words callers use for this entry ("address", "directions"): the offline
    responder matches them like the question's own words."""


DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant. Keep answers short and conversational: one or two "
    "sentences, no lists, no markdown, since everything you say is spoken aloud."
)


class AgentPersona(BaseModel):
    """What the agent says and knows for one organization."""

    model_config = ConfigDict(frozen=True)

    instructions: str = DEFAULT_INSTRUCTIONS
    greeting: str | None = None
    faq: tuple[FaqEntry, ...] = ()
    fallback: str | None = None
    """What the offline responder says when nothing in the FAQ matches (default: the
    questions it can answer)."""


class OrgProviders(BaseModel):
    """The resolved configuration of one organization: three ordered chains and a persona."""

    model_config = ConfigDict(frozen=True)

    organization_id: str | None
    version: str | None = None
    stt: tuple[ProviderConfig, ...] = ()
    llm: tuple[ProviderConfig, ...] = ()
    tts: tuple[ProviderConfig, ...] = ()
    realtime: tuple[ProviderConfig, ...] = ()
    """Speech-to-speech models; empty (the usual case): calls run on the pipeline."""
    agent: AgentPersona = AgentPersona()
    source: ConfigSource = ConfigSource.ENV
    strategy: Strategy | None = None
    """None: the worker's ``PROVIDER_STRATEGY`` (default ``priority``)."""
    budget_usd: float | None = None
    """Monthly budget; once ``spent_usd`` reaches it, calls route by cost."""
    spent_usd: float | None = None
    """This month's spend as the backend counted it when it sent this config."""

    def chain(self, kind: ProviderKind) -> tuple[ProviderConfig, ...]:
        chain: tuple[ProviderConfig, ...] = getattr(self, kind.value)
        return chain

    def summary(self) -> dict[str, list[str]]:
        """Provider names per kind, in chain order (for log lines); ``realtime`` only when
        the org has one."""
        return {
            k.value: [c.provider for c in self.chain(k)]
            for k in ProviderKind
            if k in PIPELINE_KINDS or self.chain(k)
        }


def ordered(configs: list[ProviderConfig]) -> tuple[ProviderConfig, ...]:
    """Enabled configs, highest priority first; ties keep the order they were given in."""
    enabled = [c for c in configs if c.enabled]
    return tuple(sorted(enabled, key=lambda c: -c.priority))
