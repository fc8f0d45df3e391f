"""Deepgram: streaming speech-to-text in the cloud (``livekit-plugins-deepgram``)."""

from __future__ import annotations

from providers.catalogue.pricing import PriceTable, Unit, per_minute
from providers.catalogue.spec import STT, HttpCheck, ProviderSpec, UrlOptions, api_key, keyed_plugin


class DeepgramOptions(UrlOptions):
    model: str = "nova-3"
    language: str = "en-US"
    endpointing_ms: int = 25
    smart_format: bool = False


PRICES: PriceTable = {
    "*": {Unit.AUDIO_SECONDS: per_minute(0.0077)},  # nova-3, streaming
    "nova-2": {Unit.AUDIO_SECONDS: per_minute(0.0058)},
}


def _projects_url(o: DeepgramOptions) -> str:
    """Deepgram's key check lists projects, one level above the ``listen`` endpoint."""
    return (o.base_url or "https://api.deepgram.com/v1/listen").rsplit("/", 1)[0] + "/projects"


SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="deepgram",
        kind=STT,
        build=keyed_plugin("livekit.plugins.deepgram", "STT", provider="deepgram"),
        options=DeepgramOptions,
        secrets=api_key("DEEPGRAM_API_KEY"),
        env_options={"model": "DEEPGRAM_STT_MODEL", "language": "STT_LANGUAGE"},
        prices=PRICES,
        check=HttpCheck(_projects_url, scheme="Token ", expect="projects"),
    ),
)
