"""A thin wrapper around one LLM of a chain; livekit's ``llm.FallbackAdapter`` still does
the switching and recovery.

Why wrap: the adapter's ``attempt_timeout`` is a gap-between-chunks timeout, so a provider
that accepts the request and then thinks for a long time holds the caller in silence; and
its health is per adapter, so every new call would try a provider that just failed. The
guard gives each provider ``budget`` seconds for its first token, fails at once while the
process-wide breaker for it is open, and reports every outcome to the health registry.
"""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.agents import APIConnectionError, APIConnectOptions, APIError, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr

from providers.chains.blame import BudgetTimeout
from providers.chains.delegate import Delegate
from providers.chains.health import HealthKeys, HealthRegistry
from providers.compat import RelaysMetrics


class GuardedLLM(Delegate, llm.LLM[Any]):
    def __init__(
        self,
        inner: llm.LLM[Any],
        *,
        name: str,
        keys: HealthKeys,
        health: HealthRegistry,
        budget: float,
        own_budget: bool = False,
    ) -> None:
        """``own_budget``: ``budget`` is the org's, shorter than the worker's
        (``FailoverSettings.own_budget``)."""
        super().__init__()
        self.name, self.keys, self.budget, self.own_budget = name, keys, budget, own_budget
        self.health = health
        self.last_error: BaseException | None = None
        self.delegate_to(inner)

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> GuardedStream:
        inner, skipped = None, None
        if self.health.allow(self.keys):
            inner = self.inner.chat(
                chat_ctx=chat_ctx,
                tools=tools,
                conn_options=conn_options,
                parallel_tool_calls=parallel_tool_calls,
                tool_choice=tool_choice,
                extra_kwargs=extra_kwargs,
            )
        else:
            skipped = self.health.why_skipped(self.keys)
        return GuardedStream(
            self,
            inner,
            chat_ctx=chat_ctx,
            tools=tools or [],
            conn_options=conn_options,
            skipped=skipped,
        )


class GuardedStream(RelaysMetrics, llm.LLMStream):
    """The inner provider reports its own metrics (``RelaysMetrics``)."""

    def __init__(
        self,
        guard: GuardedLLM,
        inner: llm.LLMStream | None,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
        skipped: str | None = None,
    ) -> None:
        self._guard, self._inner = guard, inner
        self._skipped = skipped  # why the provider is not asked, when ``inner`` is None
        super().__init__(guard, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)

    async def _run(self) -> None:
        guard = self._guard
        if self._inner is None:
            # livekit's adapter logs this as "<label> recovery failed: <message>" when its
            # recovery check meets an open breaker: say what happened and what comes next
            raise APIConnectionError(
                f"'{guard.name}' not asked: {self._skipped}; the next LLM of the chain answers",
                retryable=False,
            )
        judged = False  # a verdict was recorded; else a probe in flight is released
        try:
            async with self._inner as stream:
                chunks = stream.__aiter__()
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), guard.budget)
                except StopAsyncIteration:
                    chunk = None
                except asyncio.TimeoutError:
                    raise BudgetTimeout(
                        f"no first token from '{guard.name}' within {guard.budget:g} s",
                        budget=guard.budget,
                        own=guard.own_budget,
                    ) from None
                while chunk is not None:
                    self._event_ch.send_nowait(chunk)
                    chunk = await anext(chunks, None)
        except APIError as e:
            guard.last_error = e
            guard.health.record_failure(guard.keys, e)
            judged = True
            raise
        else:
            guard.health.record_success(guard.keys)
            judged = True
        finally:  # interrupted, or an exception that is no verdict on the provider
            if not judged:
                guard.health.release(guard.keys)
