"""Anthropic: Claude chat (``livekit-plugins-anthropic``)."""

from __future__ import annotations

from providers.catalogue.pricing import PriceTable, tokens
from providers.catalogue.spec import (
    LLM,
    HttpCheck,
    ProviderSpec,
    UrlOptions,
    api_key,
    keyed_plugin,
    url,
)


class AnthropicOptions(UrlOptions):
    model: str = "claude-3-5-haiku-latest"
    temperature: float | None = None


PRICES: PriceTable = {
    "*": tokens(0.80, 0.08, 4.0),  # claude-3-5-haiku
    "claude-sonnet": tokens(3.0, 0.30, 15.0),
    "claude-3-7-sonnet": tokens(3.0, 0.30, 15.0),
    "claude-haiku-4": tokens(1.0, 0.10, 5.0),
}

SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="anthropic",
        kind=LLM,
        build=keyed_plugin("livekit.plugins.anthropic", "LLM", provider="anthropic"),
        options=AnthropicOptions,
        secrets=api_key("ANTHROPIC_API_KEY"),
        env_options={"model": "ANTHROPIC_LLM_MODEL"},
        prices=PRICES,
        check=HttpCheck(url("https://api.anthropic.com", "/v1/models"), "x-api-key", ""),
    ),
)
