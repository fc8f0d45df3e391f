"""livekit's STT fallback adapter, as a chain of this project uses it: every member
prewarmed, every outcome reported to the process-wide health registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from livekit.agents import stt

from providers.chains.health import HealthKeys, HealthRegistry


class STTFallback(stt.FallbackAdapter):
    """livekit's adapter, prewarming every member: livekit's prewarms only the first, so a
    failover would pay DNS and TLS set-up in the caller's silence.

    Its error is final: the session is told not to run a chain again
    (``Chains.session_options``)."""

    def __init__(self, members: list[stt.STT[Any]], **kwargs: Any) -> None:
        super().__init__(members, **kwargs)
        self.members = list(members)

    def prewarm(self) -> None:
        for member in self.members:
            member.prewarm()


def report_stt_health(
    adapter: stt.FallbackAdapter,
    instances: list[Any],
    keys: list[HealthKeys],
    health: HealthRegistry,
) -> Callable[[int], BaseException | None]:
    """STTs are not wrapped (livekit's adapter drives their streams), so their outcomes reach
    the registry through events: every livekit STT emits ``error``; success is the adapter's
    own recovery verdict (a failing stream still emits usage metrics, so metrics prove
    nothing). Returns the last error of instance ``i``."""
    last: list[BaseException | None] = [None] * len(instances)

    for i, instance in enumerate(instances):

        def on_error(ev: stt.STTError, i: int = i) -> None:
            last[i] = ev.error
            health.record_failure(keys[i], ev.error)

        instance.on("error", on_error)

    def on_change(ev: Any) -> None:
        if ev.available:
            i = next(n for n, x in enumerate(instances) if x is ev.stt)
            health.record_success(keys[i])

    adapter.on("stt_availability_changed", on_change)
    return lambda i: last[i]
