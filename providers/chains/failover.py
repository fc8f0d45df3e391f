"""Failover settings and the glue between livekit's fallback adapters and provider health.

Budgets: how long a provider may take for its first result before the chain moves on —
``STT_CONNECT_TIMEOUT``, ``LLM_FIRST_TOKEN_TIMEOUT``, ``TTS_FIRST_AUDIO_TIMEOUT`` (default
2 s each), or a provider's own ``firstResultTimeout`` option. The last provider of a chain
gets no budget: there is nobody to hand over to, and waiting beats silence.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import APIConnectOptions, llm, stt
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from providers.chains.health import DEFAULT_COOLDOWN, HealthKeys, HealthRegistry, describe_error
from providers.chains.stt.guard import DEFAULT_REPLAY
from providers.config.settings import EnvReader, env_reader
from providers.config.types import ProviderConfig, ProviderKind
from providers.log import logger

DEFAULT_BUDGET = 2.0
_BUDGET_VARS = {
    ProviderKind.STT: "STT_CONNECT_TIMEOUT",
    ProviderKind.LLM: "LLM_FIRST_TOKEN_TIMEOUT",
    ProviderKind.TTS: "TTS_FIRST_AUDIO_TIMEOUT",
}


@dataclass(frozen=True)
class FailoverSettings:
    budgets: Mapping[ProviderKind, float] = field(
        default_factory=lambda: dict.fromkeys(_BUDGET_VARS, DEFAULT_BUDGET)
    )
    stt_replay: float = DEFAULT_REPLAY
    """``STT_REPLAY_SECONDS``: how much of what the caller said to a failed STT the next one
    hears (0: none). See ``providers.chains.stt.guard``."""
    cooldown: float = DEFAULT_COOLDOWN
    """``PROVIDER_COOLDOWN``: seconds a failed provider is skipped by every call of the
    worker before one call probes it (``providers.chains.health``)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> FailoverSettings:
        with env_reader(environ) as env:
            return cls(
                {k: env.number(var, DEFAULT_BUDGET) for k, var in _BUDGET_VARS.items()},
                stt_replay=env.number("STT_REPLAY_SECONDS", DEFAULT_REPLAY),
                cooldown=env.number("PROVIDER_COOLDOWN", DEFAULT_COOLDOWN),
            )

    def budget(self, config: ProviderConfig) -> float:
        """The provider's own ``firstResultTimeout`` (validated at load), else the kind's."""
        return config.settings.first_result_timeout or self.budgets[config.kind]


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
_listeners: list[FailoverListener] = []
_listeners_lock = threading.Lock()


def on_failover(listener: FailoverListener) -> None:
    """Call ``listener(failover, org_id)`` on every switch in this process (metrics)."""
    with _listeners_lock:
        if listener not in _listeners:
            _listeners.append(listener)


class FailoverLog:
    """A call's switches: logged once each, kept for its usage record, told to listeners."""

    def __init__(self, org_id: str | None) -> None:
        self.org_id = org_id
        self.events: list[Failover] = []

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
        with _listeners_lock:
            listeners = list(_listeners)
        for listener in listeners:
            listener(event, self.org_id)


class STTFallback(stt.FallbackAdapter):
    """livekit's adapter, prewarming every member: livekit's prewarms only the first, so a
    failover would pay DNS and TLS set-up in the caller's silence.

    The chain is not retried as a whole: it has tried every member without back-off, and
    the session's retries (3, after 0.1, 2 and 2 s) would only run the same round again in
    the caller's silence. Its error is final, like the TTS chain's."""

    def __init__(self, members: list[stt.STT[Any]], **kwargs: Any) -> None:
        super().__init__(members, **kwargs)
        self.members = list(members)

    def stream(
        self,
        *,
        language: NotGivenOr[str] = NOT_GIVEN,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
    ) -> stt.RecognizeStream:
        once = dataclasses.replace(conn_options, max_retry=0)
        return super().stream(language=language, conn_options=once)

    def prewarm(self) -> None:
        for member in self.members:
            member.prewarm()


class LLMFallback(llm.FallbackAdapter):
    """livekit's adapter, prewarming every member (see ``STTFallback``)."""

    def __init__(self, members: list[llm.LLM[Any]], **kwargs: Any) -> None:
        super().__init__(members, **kwargs)
        self.members = list(members)

    def prewarm(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        for member in self.members:
            member.prewarm(loop=loop)


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


def log_switches(
    adapter: stt.FallbackAdapter | llm.FallbackAdapter,
    names: list[str],
    instances: list[Any],
    *,
    failovers: FailoverLog,
    kind: ProviderKind,
    reason_of: Callable[[int], BaseException | None],
) -> None:
    """Record a switch (``FailoverLog.switch``) when the adapter marks a provider
    unavailable, and log its recovery."""
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
