"""Routing strategies: which providers an organization's chains hold, in which order.

``priority`` keeps the configured order. ``cost`` orders each chain by what one typical
caller turn would cost (``providers.catalogue.pricing``), cheapest first. ``local-only`` keeps only
providers that run on this machine, so no audio or text leaves it. In every strategy the
health registry still puts providers that are down last, and the offline responder stays
the LLM chain's last resort.

An organization's ``budgetUsd`` forces ``cost`` once its month's spend reaches it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from providers.catalogue import (
    NO_OVERRIDES,
    TYPICAL_TURN,
    Price,
    PriceOverrides,
    cost,
    get_spec,
    lookup,
)
from providers.env_vars import EnvReader, env_reader
from providers.errors import ConfigError, who
from providers.types import OrgProviders, ProviderConfig, ProviderKind, Strategy


def env_strategy(environ: Mapping[str, str] | EnvReader) -> Strategy:
    """``PROVIDER_STRATEGY``: the routing of orgs whose config names none."""
    with env_reader(environ) as env:
        return env.choice("PROVIDER_STRATEGY", tuple(Strategy), Strategy.PRIORITY)


@dataclass(frozen=True)
class Routing:
    """The strategy one call runs under, and why."""

    strategy: Strategy
    over_budget: bool = False
    """The org's ``budgetUsd`` is spent: ``cost`` replaced its own strategy."""

    @classmethod
    def of(cls, org: OrgProviders, default: Strategy = Strategy.PRIORITY) -> Routing:
        """``default``: the worker's ``PROVIDER_STRATEGY``, for an org that names none."""
        strategy = org.strategy or default
        spent, budget = org.spent_usd, org.budget_usd
        if (
            budget is not None
            and spent is not None
            and spent >= budget
            and strategy is Strategy.PRIORITY
        ):
            return cls(Strategy.COST, over_budget=True)
        return cls(strategy)


@dataclass(frozen=True)
class Dropped:
    config: ProviderConfig
    reason: str


def price_of(config: ProviderConfig, model: str, overrides: PriceOverrides | None = None) -> Price:
    """The org's own price for this entry, else ``overrides`` (the worker's ``PRICING_JSON``),
    else the registry's."""
    if config.pricing is not None:
        return config.pricing
    overrides = overrides or NO_OVERRIDES
    if (found := overrides.find(config.kind.value, config.provider, model)) is not None:
        return found
    spec = get_spec(config.provider, config.kind)
    return lookup(spec.prices, model) if spec is not None else {}


def turn_cost(config: ProviderConfig, overrides: PriceOverrides | None = None) -> float:
    """USD for one typical caller turn on this provider (what ``cost`` sorts by)."""
    model = str(getattr(config.settings, "model", None) or "")
    return cost(price_of(config, model, overrides), TYPICAL_TURN[config.kind.value])


def is_local(config: ProviderConfig) -> bool:
    """Runs on this machine: a local provider not pointed at another host, or any provider
    whose endpoint (its typed ``base_url``, ``host``…) is a loopback address (an
    OpenAI-compatible server on localhost)."""
    spec = get_spec(config.provider, config.kind)
    host = _host(config.endpoint)
    if host is None:
        return spec is not None and spec.local
    return _loopback(host)


def _host(endpoint: str | None) -> str | None:
    if not endpoint:
        return None
    parsed = urlparse(endpoint if "//" in endpoint else f"//{endpoint}")
    return parsed.hostname


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def apply_strategy(
    org: OrgProviders, strategy: Strategy, overrides: PriceOverrides | None = None
) -> tuple[OrgProviders, list[Dropped]]:
    """``org`` with its chains filtered and ordered by ``strategy``, and what was left out.
    Raises ``ConfigError`` when ``local-only`` leaves a kind with no provider."""
    if strategy is Strategy.PRIORITY:
        return org, []
    overrides = overrides or NO_OVERRIDES
    chains: dict[str, tuple[ProviderConfig, ...]] = {}
    dropped: list[Dropped] = []
    for kind in ProviderKind:
        chain = list(org.chain(kind))
        if strategy is Strategy.LOCAL_ONLY:
            for c in chain:
                if kind is ProviderKind.REALTIME:
                    dropped.append(Dropped(c, "local-only: a realtime model is a cloud service"))
                elif not is_local(c):
                    where = c.endpoint or "its cloud API"
                    dropped.append(Dropped(c, f"local-only: sends audio or text to {where}"))
            # a speech-to-speech model is a cloud service even behind a local proxy
            chain = [c for c in chain if is_local(c) and kind is not ProviderKind.REALTIME]
            if not chain and kind in (ProviderKind.STT, ProviderKind.TTS):  # offline LLM later
                raise ConfigError(
                    f"{who(org.organization_id)}the local-only strategy leaves no {kind} "
                    f"provider; add a local one (stt: vosk, whisper; tts: piper)"
                )
        else:  # cost; a stable sort keeps priority order among equal prices
            chain.sort(key=lambda c: turn_cost(c, overrides))
        chains[kind.value] = tuple(chain)
    return org.model_copy(update=chains), dropped
