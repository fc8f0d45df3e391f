"""Cartesia: streaming text-to-speech in the cloud (``livekit-plugins-cartesia``)."""

from __future__ import annotations

from providers.catalogue.pricing import Unit, per_million
from providers.catalogue.spec import (
    TTS,
    HttpCheck,
    ProviderSpec,
    UrlOptions,
    api_key,
    keyed_plugin,
    url,
)


class CartesiaOptions(UrlOptions):
    model: str = "sonic-3"
    voice: str | None = None
    language: str = "en"
    sample_rate: int = 24000


SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="cartesia",
        kind=TTS,
        build=keyed_plugin("livekit.plugins.cartesia", "TTS", provider="cartesia"),
        options=CartesiaOptions,
        secrets=api_key("CARTESIA_API_KEY"),
        env_options={"voice": "CARTESIA_VOICE"},
        prices={"*": {Unit.CHARACTERS: per_million(38.0)}},
        check=HttpCheck(url("https://api.cartesia.ai", "/voices?limit=1"), "X-API-Key", ""),
    ),
)
