"""Groq: chat through its OpenAI-compatible API (the OpenAI plugin)."""

from __future__ import annotations

from providers.catalogue.pricing import PriceTable, tokens
from providers.catalogue.spec import ProviderSpec, api_key
from providers.catalogue.vendors.openai import ChatOptions, compatible_chat


class GroqOptions(ChatOptions):
    model: str = "llama-3.3-70b-versatile"
    base_url: str | None = "https://api.groq.com/openai/v1"


PRICES: PriceTable = {
    "*": tokens(0.59, 0.59, 0.79),  # llama-3.3-70b-versatile
    "llama-3.1-8b": tokens(0.05, 0.05, 0.08),
}

SPECS: tuple[ProviderSpec, ...] = (
    compatible_chat(
        name="groq",
        options=GroqOptions,
        secrets=api_key("GROQ_API_KEY"),
        env_options={"model": "GROQ_LLM_MODEL"},
        prices=PRICES,
    ),
)
