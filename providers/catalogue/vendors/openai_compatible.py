"""Any OpenAI-compatible chat server — Ollama, vLLM, llama.cpp, OpenRouter — named by its
URL and model (the OpenAI plugin)."""

from __future__ import annotations

from providers.catalogue.spec import ProviderSpec, api_key
from providers.catalogue.vendors.openai import ChatOptions, compatible_chat


class CompatibleOptions(ChatOptions):
    """Any OpenAI-compatible server: Ollama, vLLM, llama.cpp, OpenRouter."""

    base_url: str  # required here
    model: str


SPECS: tuple[ProviderSpec, ...] = (
    compatible_chat(
        name="openai-compatible",
        options=CompatibleOptions,
        secrets=api_key("LLM_API_KEY", required=False),
        env_options={"model": "LLM_MODEL", "base_url": "LLM_BASE_URL"},
    ),
)
