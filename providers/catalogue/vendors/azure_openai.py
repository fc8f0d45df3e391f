"""Azure OpenAI: OpenAI's chat models on an organization's own Azure resource (the OpenAI
plugin's ``LLM.with_azure``)."""

from __future__ import annotations

from providers.catalogue.spec import LLM, ProviderSpec, api_key, keyed_plugin
from providers.catalogue.vendors.openai import CHAT_PRICES
from providers.types import Options


class AzureOptions(Options):
    model: str = "gpt-4o"
    azure_endpoint: str
    azure_deployment: str | None = None
    api_version: str = "2024-10-21"
    temperature: float | None = None

    @property
    def endpoint(self) -> str | None:
        return self.azure_endpoint


SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="azure-openai",
        kind=LLM,
        build=keyed_plugin("livekit.plugins.openai", "LLM.with_azure", provider="azure-openai"),
        options=AzureOptions,
        secrets=api_key("AZURE_OPENAI_API_KEY"),
        env_options={
            "model": "AZURE_OPENAI_LLM_MODEL",
            "azure_endpoint": "AZURE_OPENAI_ENDPOINT",
            "azure_deployment": "AZURE_OPENAI_DEPLOYMENT",
            "api_version": "OPENAI_API_VERSION",
        },
        prices=CHAT_PRICES,
    ),
)
