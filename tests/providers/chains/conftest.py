"""Fixtures the chain tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from livekit.agents.utils import http_context


@pytest.fixture
async def http() -> AsyncIterator[None]:
    """livekit's HTTP session, which the cloud plugins take from the job context."""
    async with http_context.open():
        yield
