"""OpenAI: speech-to-text, text-to-speech and chat (``livekit-plugins-openai``), one key and
one check for all three. The chat builder also serves every vendor that speaks OpenAI's chat
API at its own URL (``compatible_chat``: Groq, Gemini, any OpenAI-compatible server)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from providers.catalogue.pricing import FREE, PriceTable, Unit, per_million, per_minute, tokens
from providers.catalogue.spec import (
    LLM,
    STT,
    TTS,
    BuildRequest,
    HttpCheck,
    ProviderSpec,
    SecretSpec,
    UrlOptions,
    api_key,
    given,
    keyed_plugin,
    plugin,
    url,
)
from providers.types import Options, ProviderKind


class OpenAISTTOptions(UrlOptions):
    model: str = "whisper-1"
    language: str = "en"


class OpenAITTSOptions(UrlOptions):
    model: str = "gpt-4o-mini-tts"
    voice: str = "ash"


class ChatOptions(UrlOptions):
    model: str = "gpt-4.1-mini"
    temperature: float | None = None


def build_chat(r: BuildRequest) -> Any:
    """An OpenAI chat client; a server that needs no key (a local Ollama) gets a dummy."""
    oai = plugin("livekit.plugins.openai", "openai", "livekit-plugins-openai")
    return oai.LLM(api_key=r.secrets.get("apiKey") or "not-needed", **given(r.options))


STT_PRICES: PriceTable = {
    "*": {Unit.AUDIO_SECONDS: per_minute(0.006)},
    "gpt-4o-mini-transcribe": {Unit.AUDIO_SECONDS: per_minute(0.003)},
}
TTS_PRICES: PriceTable = {
    "*": {Unit.CHARACTERS: per_million(15.0)},
    "tts-1-hd": {Unit.CHARACTERS: per_million(30.0)},
    "gpt-4o-mini-tts": {Unit.CHARACTERS: per_million(12.0)},
}
CHAT_PRICES: PriceTable = {
    "*": tokens(0.40, 0.10, 1.60),
    "gpt-4.1-mini": tokens(0.40, 0.10, 1.60),
    "gpt-4.1-nano": tokens(0.10, 0.025, 0.40),
    "gpt-4.1": tokens(2.0, 0.50, 8.0),
    "gpt-4o-mini": tokens(0.15, 0.075, 0.60),
    "gpt-4o": tokens(2.50, 1.25, 10.0),
}
"""OpenAI's chat models (Azure OpenAI lists the same)."""


def _openai(
    *,
    kind: ProviderKind,
    build: Callable[[BuildRequest], Any],
    options: type[Options],
    env_options: Mapping[str, str],
    prices: PriceTable,
) -> ProviderSpec:
    """One of OpenAI's three kinds: the same key, the same check."""
    return ProviderSpec(
        name="openai",
        kind=kind,
        build=build,
        options=options,
        secrets=api_key("OPENAI_API_KEY"),
        env_options=env_options,
        prices=prices,
        check=HttpCheck(url("https://api.openai.com/v1", "/models")),
    )


def compatible_chat(
    *,
    name: str,
    options: type[ChatOptions],
    secrets: tuple[SecretSpec, ...],
    env_options: Mapping[str, str],
    prices: PriceTable = FREE,
) -> ProviderSpec:
    """The spec of a vendor that speaks OpenAI's chat API at its own ``base_url`` (Groq,
    Gemini, a local server): built by the OpenAI plugin, its key checked by listing the
    models there."""
    return ProviderSpec(
        name=name,
        kind=LLM,
        build=build_chat,
        options=options,
        secrets=secrets,
        env_options=env_options,
        prices=prices,
        check=HttpCheck(url("", "/models")),
    )


SPECS: tuple[ProviderSpec, ...] = (
    _openai(
        kind=STT,
        build=keyed_plugin("livekit.plugins.openai", "STT", provider="openai", use_realtime=False),
        options=OpenAISTTOptions,
        env_options={
            "model": "OPENAI_STT_MODEL",
            "language": "STT_LANGUAGE",
            "base_url": "OPENAI_BASE_URL",
        },
        prices=STT_PRICES,
    ),
    _openai(
        kind=TTS,
        build=keyed_plugin("livekit.plugins.openai", "TTS", provider="openai"),
        options=OpenAITTSOptions,
        env_options={"voice": "OPENAI_TTS_VOICE", "base_url": "OPENAI_BASE_URL"},
        prices=TTS_PRICES,
    ),
    _openai(
        kind=LLM,
        build=build_chat,
        options=ChatOptions,
        env_options={"model": "OPENAI_LLM_MODEL", "base_url": "OPENAI_BASE_URL"},
        prices=CHAT_PRICES,
    ),
)
