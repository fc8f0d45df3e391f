"""The loader tests' world: the acme org as the backend serves it, the environment
config a hybrid fallback must produce, a fake clock, and bounded awaits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from providers.config.loader import ProviderLoader
from providers.types import OrgProviders
from tests.standins.backend import org_payload, provider_entry

T = TypeVar("T")

KEY = "internal-key-0123456789"
ORG = "acme"
PLANTED = "sk-test-PLANTED-1234567890"
DEEPGRAM_KEY = "dg-acme-key-000111"
OPENAI_KEY = "oa-acme-key-000222"

ENV = {"STT_PROVIDER": "whisper", "LLM_PROVIDER": "offline", "TTS_PROVIDER": "piper"}
"""The environment config the hybrid fallbacks must produce (distinct from the backend's)."""
ENV_SUMMARY = {"stt": ["whisper"], "llm": ["offline"], "tts": ["piper"]}

BACKEND_SUMMARY = {
    "stt": ["deepgram", "vosk"],
    "llm": ["groq", "openai"],
    "tts": ["piper", "cartesia"],
}


def acme_providers() -> list[Any]:
    """Deliberately out of priority order, with a disabled entry that would otherwise win."""
    return [
        provider_entry("vosk", "stt", priority=10, config={"host": "vosk.internal", "port": 2700}),
        provider_entry(
            "deepgram",
            "stt",
            priority=100,
            config={"model": "nova-3", "language": "en"},
            secrets={"apiKey": DEEPGRAM_KEY},
        ),
        provider_entry("openai", "stt", priority=500, enabled=False, secrets={"apiKey": "x"}),
        provider_entry("openai", "llm", priority=50, secrets={"apiKey": OPENAI_KEY}),
        provider_entry("groq", "llm", priority=80, secrets={"apiKey": "gq-acme"}),
        provider_entry("cartesia", "tts", priority=5, secrets={"apiKey": "ca-acme"}),
        provider_entry("piper", "tts", priority=20),
    ]


def acme_body(version: str = "17", providers: list[Any] | None = None) -> dict[str, Any]:
    return org_payload(
        ORG,
        version,
        acme_providers() if providers is None else providers,
        agent={
            "instructions": "You are the receptionist of Acme Dental.",
            "greeting": "Hello, Acme Dental, how can I help?",
            "faq": [{"question": "opening hours", "answer": "We are open nine to five."}],
        },
    )


async def within(aw: Awaitable[T], seconds: float = 10.0) -> T:
    """Every await a test makes is bounded."""
    return await asyncio.wait_for(aw, seconds)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MakeLoader = Callable[..., ProviderLoader]


def warnings_of(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and message in r.getMessage()]


def names(config: OrgProviders) -> dict[str, list[str]]:
    return config.summary()
