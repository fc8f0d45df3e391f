"""A call's provider switches: one ``Failover`` each, logged once, kept for the call's
usage record and told to the listeners the call was built with (metrics)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import llm, stt

from providers.chains.health import describe_error
from providers.log import logger
from providers.types import ProviderKind


@dataclass(frozen=True)
class Failover:
    """One switch in one call: ``kind``'s ``from_provider`` failed, ``to_provider`` (None:
    nobody left) takes over."""

    kind: ProviderKind
    from_provider: str
    to_provider: str | None
    reason: str
    """The error class (and HTTP status): no message, so never a secret."""
    at: float = field(default_factory=time.time)
    """Unix time."""


FailoverListener = Callable[[Failover, str | None], None]
"""``(failover, org_id)``, called on every switch."""


class FailoverLog:
    """A call's switches: logged once each, kept for its usage record, told to
    ``listeners``."""

    def __init__(self, org_id: str | None, listeners: Iterable[FailoverListener] = ()) -> None:
        self.org_id = org_id
        self.events: list[Failover] = []
        self.listeners = tuple(listeners)

    def switch(
        self, kind: ProviderKind, from_: str, to: str | None, error: BaseException | None
    ) -> None:
        event = Failover(kind, from_, to, describe_error(error) if error else "unavailable")
        self.events.append(event)
        logger.warning(
            "provider failed, switching",
            extra={
                "org": self.org_id,
                "kind": kind.value,
                "from": from_,
                "to": to,
                "reason": event.reason,
            },
        )
        for listener in self.listeners:
            listener(event, self.org_id)


def log_switches(
    adapter: stt.FallbackAdapter | llm.FallbackAdapter,
    names: list[str],
    instances: list[Any],
    *,
    failovers: FailoverLog,
    kind: ProviderKind,
    reason_of: Callable[[int], BaseException | None],
) -> None:
    """Record a switch (``FailoverLog.switch``) when one of livekit's fallback adapters marks
    a provider unavailable, and log its recovery."""
    available = [True] * len(instances)

    def on_change(ev: Any) -> None:
        instance = getattr(ev, kind.value)
        i = next(n for n, x in enumerate(instances) if x is instance)
        available[i] = ev.available
        if ev.available:
            logger.info(
                "provider recovered",
                extra={"org": failovers.org_id, "kind": kind.value, "to": names[i]},
            )
            return
        nxt = next((names[j] for j in range(i + 1, len(names)) if available[j]), None)
        failovers.switch(kind, names[i], nxt, reason_of(i))

    adapter.on(f"{kind.value}_availability_changed", on_change)  # type: ignore[arg-type]
