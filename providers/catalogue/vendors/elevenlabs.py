"""ElevenLabs: streaming text-to-speech in the cloud (``livekit-plugins-elevenlabs``)."""

from __future__ import annotations

from providers.catalogue.pricing import PriceTable, Unit, per_million
from providers.catalogue.spec import (
    TTS,
    HttpCheck,
    ProviderSpec,
    UrlOptions,
    api_key,
    keyed_plugin,
    url,
)


class ElevenLabsOptions(UrlOptions):
    voice_id: str | None = None
    model: str = "eleven_flash_v2_5"
    language: str | None = None


PRICES: PriceTable = {
    "*": {Unit.CHARACTERS: per_million(100.0)},
    "eleven_flash": {Unit.CHARACTERS: per_million(50.0)},
    "eleven_turbo": {Unit.CHARACTERS: per_million(50.0)},
}

SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="elevenlabs",
        kind=TTS,
        build=keyed_plugin("livekit.plugins.elevenlabs", "TTS", provider="elevenlabs"),
        options=ElevenLabsOptions,
        secrets=api_key("ELEVEN_API_KEY", "ELEVENLABS_API_KEY"),
        env_options={"voice_id": "ELEVENLABS_VOICE_ID"},
        prices=PRICES,
        check=HttpCheck(
            url("https://api.elevenlabs.io/v1", "/user"), "xi-api-key", "", expect="subscription"
        ),
    ),
)
