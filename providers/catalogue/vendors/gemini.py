"""Google Gemini: chat through its OpenAI-compatible API (the OpenAI plugin)."""

from __future__ import annotations

from providers.catalogue.pricing import PriceTable, tokens
from providers.catalogue.spec import ProviderSpec, api_key
from providers.catalogue.vendors.openai import ChatOptions, compatible_chat


class GeminiOptions(ChatOptions):
    model: str = "gemini-2.5-flash"
    base_url: str | None = "https://generativelanguage.googleapis.com/v1beta/openai/"


PRICES: PriceTable = {
    "*": tokens(0.10, 0.025, 0.40),  # gemini-2.0-flash
    "gemini-2.5-flash": tokens(0.30, 0.075, 2.50),
    "gemini-2.5-pro": tokens(1.25, 0.31, 10.0),
}

SPECS: tuple[ProviderSpec, ...] = (
    compatible_chat(
        name="gemini",
        options=GeminiOptions,
        secrets=api_key("GOOGLE_API_KEY", "GEMINI_API_KEY"),
        env_options={"model": "GEMINI_LLM_MODEL"},
        prices=PRICES,
    ),
)
