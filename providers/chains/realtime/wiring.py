"""Builds a call's realtime chain from its org's realtime configs: healthy ones only, in
the order the breakers allow."""

from __future__ import annotations

import logging
from typing import Any

from providers.catalogue import build_provider
from providers.chains.budgets import FailoverSettings
from providers.chains.events import FailoverLog
from providers.chains.health import HealthKeys, HealthRegistry
from providers.chains.realtime.chain import RealtimeChain
from providers.errors import ProviderError, ProviderUnavailableError
from providers.log import logger
from providers.types import OrgProviders, ProviderConfig, ProviderKind


def build_realtime_chain(
    org: OrgProviders,
    *,
    health: HealthRegistry,
    failover: FailoverSettings,
    failovers: FailoverLog,
    skipped: list[str],
) -> tuple[RealtimeChain | None, list[tuple[ProviderConfig, Any]]]:
    """The call's realtime chain and the models in it, or None: no realtime config, none
    can be built, or every one is behind an open breaker (this call starts on the
    pipeline at once, no time lost on an endpoint known to be down). A half-open one is
    let through as this call's probe."""
    org_id = org.organization_id
    built: list[tuple[ProviderConfig, Any]] = []
    for config in health.order(
        org.chain(ProviderKind.REALTIME), lambda c: HealthKeys.of(c, org_id)
    ):
        keys = HealthKeys.of(config, org_id)
        if not health.allow(keys):
            reason = health.why_skipped(keys)
            skipped.append(f"{config.label}: {reason}")
            logger.info(
                "realtime model skipped, the pipeline serves",
                extra={"org": org_id, "provider": config.label, "reason": reason},
            )
            continue
        try:
            built.append((config, build_provider(config, org)))
            health.register(keys)
        except ProviderError as e:
            health.release(keys)
            skipped.append(str(e))
            level = logging.WARNING if isinstance(e, ProviderUnavailableError) else logging.ERROR
            logger.log(
                level,
                "provider left out of the chain",
                extra={"org": org_id, "provider": config.label, "reason": str(e)},
            )
    if not built:
        return None, []
    chain = RealtimeChain(
        [m for _, m in built],
        names=[c.provider for c, _ in built],
        keys=[HealthKeys.of(c, org_id) for c, _ in built],
        health=health,
        budgets=[failover.budget(c) for c, _ in built],
        own_budgets=[failover.own_budget(c) for c, _ in built],
        failovers=failovers,
    )
    return chain, built
