"""One call's realtime chain: livekit's ``RealtimeModelFallbackAdapter`` over the org's
speech-to-speech models (realtime → realtime as livekit does it), whose last resort is the
org's cascaded pipeline, in the same call.

What counts as "cannot serve", each handled the same way (the next realtime model, else
``on_exhausted``, which the call answers by handing the conversation to the pipeline):

- an unrecoverable session error: connect refused, the handshake answered 401/429/5xx, the
  socket dropped (mid-reply too: the model makes no reconnects of its own), a fatal server
  error;
- no first audio within the budget (``REALTIME_FIRST_AUDIO_TIMEOUT``), counted from the end
  of the caller's speech as the call's own VAD hears it: a model that hangs hears nothing
  either, so its own turn detection cannot be the clock.

Failures count on the worker's shared breakers like any provider's
(``providers.chains.blame``): the next calls of every org skip a realtime endpoint known to
be down, and one call probes it after the cool-down.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from livekit.agents import (
    AgentStateChangedEvent,
    APIConnectionError,
    APIStatusError,
    UserStateChangedEvent,
    llm,
)
from livekit.agents.metrics import RealtimeModelMetrics

from providers.chains.blame import BudgetTimeout
from providers.chains.events import FailoverLog
from providers.chains.health import HealthKeys, HealthRegistry
from providers.compat import RealtimeFallbackSession
from providers.log import logger
from providers.types import ProviderKind

PIPELINE = "pipeline"
"""What a call's switches name as the realtime chain's successor."""


def realtime_failure(error: BaseException) -> BaseException:
    """The error a breaker should judge. livekit reports a rejected websocket handshake
    as a connection error; its HTTP status (401, 429, 500…) says whose fault it is."""
    cause = error.__cause__
    if isinstance(error, APIConnectionError) and isinstance(cause, aiohttp.WSServerHandshakeError):
        return APIStatusError(
            "realtime handshake rejected",
            status_code=cause.status,
            retryable=cause.status >= 500,
        )
    return error


class RealtimeChain(llm.RealtimeModelFallbackAdapter):
    """A call's realtime models, healthy first. ``attach`` binds it to the call's session
    and tells it how to hand over when none is left."""

    def __init__(
        self,
        models: list[llm.RealtimeModel],
        *,
        names: list[str],
        keys: list[HealthKeys],
        health: HealthRegistry,
        budgets: list[float],
        own_budgets: list[bool],
        failovers: FailoverLog,
    ) -> None:
        # within a call a failed model stays out: the breakers decide for the next calls
        super().__init__(models, cooldown=float("inf"), regenerate_on_swap=True)
        self.names, self.keys, self.health = names, keys, health
        self.budgets, self.own_budgets = budgets, own_budgets
        self.failovers = failovers
        self.handed_over = False
        self._session: RealtimeFallbackSession | None = None
        self._on_exhausted: Callable[[BaseException, bool], None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._heard = False

    # ------------------------------------------------------------------ the call's side

    def attach(self, session: Any, on_exhausted: Callable[[BaseException, bool], None]) -> None:
        """``session``: the call's ``AgentSession``, whose VAD and playout start and stop the
        first-audio clock. ``on_exhausted(error, was_speaking)``: every realtime model
        failed; the call continues on the pipeline."""
        self._on_exhausted = on_exhausted
        session.on("user_state_changed", self._on_user_state)
        session.on("agent_state_changed", self._on_agent_state)

    def session(self, *, turn_detection_disabled: bool = False) -> RealtimeFallbackSession:
        sess = RealtimeFallbackSession(
            self,
            turn_detection_disabled=turn_detection_disabled,
            on_failure=self._failed,
            on_exhausted=self._exhausted,
        )
        sess.on("metrics_collected", self._on_metrics)
        self._session = sess
        self._sessions.add(sess)
        return sess

    # ------------------------------------------------------------------ outcomes

    def _failed(self, index: int, error: BaseException) -> None:
        self._stop_clock()
        judged = realtime_failure(error)
        self.health.record_failure(self.keys[index], judged)
        nxt = next(
            (self.names[j] for j in range(index + 1, len(self.names)) if self._usable(j)),
            PIPELINE,
        )
        self.failovers.switch(ProviderKind.REALTIME, self.names[index], nxt, judged)

    def _usable(self, index: int) -> bool:
        sess = self._session
        return sess is not None and sess.usable(index)

    def _exhausted(self, error: BaseException, speaking: bool) -> None:
        if self.handed_over:
            return
        self.handed_over = True
        if self._on_exhausted is None:
            logger.error("realtime model failed and no pipeline is attached")
            return
        self._on_exhausted(realtime_failure(error), speaking)

    async def release(self, timeout: float = 1.0) -> None:
        """After the hand-over: close the failed model's session, ending any reply it left
        open (bounded: a hung socket may not answer its close)."""
        if self._session is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._session.close_active(), timeout)

    def _on_metrics(self, metrics: Any) -> None:
        if isinstance(metrics, RealtimeModelMetrics) and metrics.ttft >= 0 and self._session:
            self.health.record_success(self.keys[self._session.active_index])

    # ------------------------------------------------------------------ first-audio clock

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if self.handed_over:
            return
        if ev.new_state == "speaking":
            self._heard = True
            self._stop_clock()
        elif ev.old_state == "speaking" and self._heard:
            self._start_clock()

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            self._stop_clock()

    def _start_clock(self) -> None:
        self._stop_clock()
        sess = self._session
        if sess is None:
            return
        budget = self.budgets[sess.active_index]
        self._watchdog = asyncio.get_running_loop().call_later(budget, self._no_first_audio)

    def _stop_clock(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _no_first_audio(self) -> None:
        self._watchdog = None
        sess = self._session
        if sess is None or self.handed_over:
            return
        i = sess.active_index
        error = BudgetTimeout(
            f"no first audio within {self.budgets[i]:g} s",
            budget=self.budgets[i],
            own=self.own_budgets[i],
        )
        sess.fail_active(
            llm.RealtimeModelError(
                timestamp=time.time(), label=self.label, error=error, recoverable=False
            ),
            reply_owed=True,
        )
