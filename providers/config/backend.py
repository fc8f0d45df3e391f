"""The backend's response format, and the one place where it becomes an ``OrgProviders``.

A whole-body problem (not JSON, not an object, another org's config) is a ``BackendError``
and the loader falls back. A problem in one entry (unknown provider, wrong type) skips that
entry with a warning naming the org, provider and field, so one bad row does not take a
tenant's whole configuration down. Error texts are built from field paths and pydantic's
messages only — never from input values, which may be secrets.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from providers.catalogue import is_known, names, parse_price, provider_config
from providers.config import bounded_json
from providers.errors import BackendError, ConfigError, who
from providers.log import logger
from providers.types import (
    AgentPersona,
    ConfigSource,
    FaqEntry,
    OrgProviders,
    ProviderConfig,
    ProviderKind,
    Strategy,
    ordered,
)


class _Camel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class WireProvider(_Camel):
    provider_id: str = Field(alias="providerId", min_length=1, max_length=64)
    type: ProviderKind
    is_enabled: bool = Field(alias="isEnabled", default=True)
    priority: int = 0
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)


class WirePersona(_Camel):
    instructions: str | None = None
    greeting: str | None = None
    faq: list[FaqEntry] = Field(default_factory=list)
    fallback: str | None = None


class WireResponse(_Camel):
    organization_id: str | None = Field(alias="organizationId", default=None)
    version: str | None = None
    providers: list[Any]
    agent: Any = None
    strategy: Any = None
    budget_usd: Any = Field(alias="budgetUsd", default=None)
    spent_usd: Any = Field(alias="spentUsd", default=None)

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) else v


def describe(e: ValidationError) -> str:
    """``field: message`` pairs without the offending input (it may be a secret)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" if err["loc"] else err["msg"]
        for err in e.errors()
    )


def parse_response(body: bytes, org_id: str, etag: str | None) -> OrgProviders:
    """Backend JSON → ``OrgProviders`` (source ``backend``); kinds may come back empty."""
    try:
        raw = bounded_json.loads(body)
    except bounded_json.JsonError as e:
        raise BackendError(f"{who(org_id)}backend answered with invalid JSON ({e})") from None
    if not isinstance(raw, dict):
        raise BackendError(f"{who(org_id)}backend answered {type(raw).__name__}, not an object")
    try:
        wire = WireResponse.model_validate(raw)
    except ValidationError as e:
        raise BackendError(f"{who(org_id)}backend answer is malformed: {describe(e)}") from None
    if wire.organization_id is not None and wire.organization_id != org_id:
        # never let a mixed-up answer run one tenant's call on another tenant's config
        raise BackendError(
            f"{who(org_id)}backend answered for another organization; refusing that config"
        )

    chains: dict[ProviderKind, list[ProviderConfig]] = {k: [] for k in ProviderKind}
    for i, entry in enumerate(wire.providers):
        config = _parse_entry(entry, i, org_id)
        if config is not None:
            chains[config.kind].append(config)

    return OrgProviders(
        organization_id=org_id,
        version=wire.version or etag,
        stt=ordered(chains[ProviderKind.STT]),
        llm=ordered(chains[ProviderKind.LLM]),
        tts=ordered(chains[ProviderKind.TTS]),
        realtime=ordered(chains[ProviderKind.REALTIME]),
        agent=_parse_persona(wire.agent, org_id),
        source=ConfigSource.BACKEND,
        strategy=_parse_strategy(wire.strategy, org_id),
        budget_usd=_parse_usd(wire.budget_usd, "budgetUsd", org_id),
        spent_usd=_parse_usd(wire.spent_usd, "spentUsd", org_id),
    )


def _parse_entry(entry: Any, index: int, org_id: str) -> ProviderConfig | None:
    name = entry.get("providerId") if isinstance(entry, dict) else None
    label = f"provider '{name}'" if isinstance(name, str) else f"providers[{index}]"
    try:
        wire = WireProvider.model_validate(entry)
    except ValidationError as e:
        logger.warning(
            "skipping invalid provider entry",
            extra={"org": org_id, "entry": label, "problem": describe(e)},
        )
        return None
    if not wire.is_enabled:
        return None
    if not is_known(wire.provider_id, wire.type):
        logger.warning(
            "skipping unknown provider",
            extra={
                "org": org_id,
                "entry": label,
                "kind": wire.type.value,
                "known": names(wire.type),
            },
        )
        return None
    options = dict(wire.config)
    pricing = None
    if "pricing" in options:
        try:
            pricing = parse_price(options.pop("pricing"), f"{who(org_id)}{label}")
        except ConfigError as e:  # the entry still works; its cost falls back to the defaults
            logger.warning("ignoring invalid provider pricing", extra={"problem": str(e)})
    try:  # the options become the provider's typed model here, once
        config = provider_config(
            provider=wire.provider_id,
            kind=wire.type,
            priority=wire.priority,
            options=options,
            secrets=wire.secrets,
            pricing=pricing,
        )
    except ValidationError as e:
        logger.warning(
            "skipping invalid provider entry",
            extra={"org": org_id, "entry": label, "kind": wire.type.value, "problem": describe(e)},
        )
        return None
    _warn_unknown_options(config, org_id)
    return config


def _warn_unknown_options(config: ProviderConfig, org_id: str | None) -> None:
    """Options the provider's model does not know are kept aside and named, not fatal."""
    if config.settings.model_extra:
        logger.warning(
            "ignoring unknown provider options",
            extra={
                "org": org_id,
                "provider": config.label,
                "options": sorted(config.settings.model_extra),
            },
        )


def _parse_strategy(raw: Any, org_id: str) -> Strategy | None:
    if raw is None:
        return None
    try:
        return Strategy(raw)
    except ValueError:
        logger.warning(
            "ignoring unknown strategy",
            extra={"org": org_id, "known": [s.value for s in Strategy]},
        )
        return None


def _parse_usd(raw: Any, field: str, org_id: str) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
        logger.warning(
            f"ignoring invalid {field}: it must be a non-negative number of USD",
            extra={"org": org_id},
        )
        return None
    return float(raw)


def _parse_persona(raw: Any, org_id: str) -> AgentPersona:
    if raw is None:
        return AgentPersona()
    try:
        wire = WirePersona.model_validate(raw)
    except ValidationError as e:
        logger.warning(
            "ignoring invalid agent persona", extra={"org": org_id, "problem": describe(e)}
        )
        return AgentPersona()
    default = AgentPersona()
    return AgentPersona(
        instructions=wire.instructions or default.instructions,
        greeting=wire.greeting,
        faq=tuple(wire.faq),
        fallback=wire.fallback,
    )
