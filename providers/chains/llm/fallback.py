"""livekit's LLM fallback adapter, as a chain of this project uses it."""

from __future__ import annotations

import asyncio
from typing import Any

from livekit.agents import llm


class LLMFallback(llm.FallbackAdapter):
    """livekit's adapter, prewarming every member: livekit's prewarms only the first, so a
    failover would pay DNS and TLS set-up in the caller's silence."""

    def __init__(self, members: list[llm.LLM[Any]], **kwargs: Any) -> None:
        super().__init__(members, **kwargs)
        self.members = list(members)

    def prewarm(self, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        for member in self.members:
            member.prewarm(loop=loop)
