"""OpenAI's speech-to-speech models (the Realtime API), directly or on an organization's
Azure resource: one model hears the caller, decides when the turn ends (server-side turn
detection) and speaks (``livekit.plugins.openai.realtime.RealtimeModel``).

A realtime model is built to fail fast: no reconnects of its own (``max_retry=0``), so a
refused, rejected or dropped socket hands the call to the org's pipeline at once instead
of retrying in the caller's silence (``providers.chains.realtime``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from providers.catalogue.pricing import PriceTable, Unit, per_minute, realtime_tokens
from providers.catalogue.spec import (
    BuildRequest,
    HttpCheck,
    ProviderSpec,
    UrlOptions,
    api_key,
    plugin,
    url,
)
from providers.types import Options, ProviderKind

REALTIME = ProviderKind.REALTIME
CONNECT_TIMEOUT = 5.0
"""Seconds the websocket handshake may take; a hung handshake is cut here, and a caller who
speaks meanwhile meets the first-audio budget first."""


class _TurnOptions(Options):
    """Server-side turn detection, as the Realtime API takes it."""

    turn_detection: Literal["server_vad", "semantic_vad"] = "server_vad"
    vad_threshold: float | None = Field(default=None, ge=0, le=1)
    """``server_vad``: speech probability above which audio is speech."""
    silence_duration_ms: int | None = Field(default=None, gt=0)
    """``server_vad``: silence that ends the caller's turn."""
    prefix_padding_ms: int | None = Field(default=None, ge=0)
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    """``semantic_vad``: how soon it answers."""
    voice: str = "marin"
    transcription_model: str = "gpt-4o-mini-transcribe"
    """What transcribes the caller (the transcript, the pipeline's context on failover)."""


class RealtimeOptions(_TurnOptions, UrlOptions):
    model: str = "gpt-realtime"


class AzureRealtimeOptions(_TurnOptions):
    azure_endpoint: str
    azure_deployment: str
    api_version: str | None = None
    """None: Azure's current (``/openai/v1``) API; set for a legacy preview version."""
    model: str = "gpt-realtime"
    """For pricing only: Azure serves the deployment's model."""

    @property
    def endpoint(self) -> str | None:
        return self.azure_endpoint


def _session_options(o: _TurnOptions) -> dict[str, Any]:
    from livekit.agents import APIConnectOptions
    from openai.types.realtime import AudioTranscription
    from openai.types.realtime.realtime_audio_input_turn_detection import SemanticVad, ServerVad

    turn: ServerVad | SemanticVad
    if o.turn_detection == "semantic_vad":
        turn = SemanticVad(type="semantic_vad", eagerness=o.eagerness or "auto")
    else:
        fields = {
            "threshold": o.vad_threshold,
            "silence_duration_ms": o.silence_duration_ms,
            "prefix_padding_ms": o.prefix_padding_ms,
        }
        turn = ServerVad(type="server_vad", **{k: v for k, v in fields.items() if v is not None})
    return {
        "voice": o.voice,
        "turn_detection": turn,
        "input_audio_transcription": AudioTranscription(model=o.transcription_model),
        "conn_options": APIConnectOptions(max_retry=0, timeout=CONNECT_TIMEOUT),
    }


def _realtime_module() -> Any:
    return plugin("livekit.plugins.openai.realtime", "openai-realtime", "livekit-plugins-openai")


def build_openai(r: BuildRequest) -> Any:
    o: RealtimeOptions = r.options
    extra = {"base_url": o.base_url} if o.base_url else {}
    return _realtime_module().RealtimeModel(
        api_key=r.secrets["apiKey"], model=o.model, **extra, **_session_options(o)
    )


def build_azure(r: BuildRequest) -> Any:
    o: AzureRealtimeOptions = r.options
    return _realtime_module().RealtimeModel.with_azure(
        api_key=r.secrets["apiKey"],
        azure_endpoint=o.azure_endpoint,
        azure_deployment=o.azure_deployment,
        api_version=o.api_version,
        **_session_options(o),
    )


PRICES: PriceTable = {
    # the caller's transcription (livekit counts its audio seconds)
    "gpt-4o-mini-transcribe": {Unit.AUDIO_SECONDS: per_minute(0.003)},
    "gpt-4o-transcribe": {Unit.AUDIO_SECONDS: per_minute(0.006)},
    "whisper-1": {Unit.AUDIO_SECONDS: per_minute(0.006)},
    "*": realtime_tokens((4.0, 0.40, 16.0), (32.0, 0.40, 64.0)),
    "gpt-realtime": realtime_tokens((4.0, 0.40, 16.0), (32.0, 0.40, 64.0)),
    "gpt-realtime-mini": realtime_tokens((0.60, 0.06, 2.40), (10.0, 0.30, 20.0)),
    "gpt-4o-realtime-preview": realtime_tokens((5.0, 2.50, 20.0), (40.0, 2.50, 80.0)),
    "gpt-4o-mini-realtime-preview": realtime_tokens((0.60, 0.30, 2.40), (10.0, 0.30, 20.0)),
}
"""USD per million tokens: text (input, cached, output), audio (input, cached, output);
the transcription models per audio second."""

SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="openai-realtime",
        kind=REALTIME,
        build=build_openai,
        options=RealtimeOptions,
        secrets=api_key("OPENAI_API_KEY"),
        env_options={
            "model": "OPENAI_REALTIME_MODEL",
            "voice": "OPENAI_REALTIME_VOICE",
            "base_url": "OPENAI_BASE_URL",
            "turn_detection": "OPENAI_REALTIME_TURN_DETECTION",
            "silence_duration_ms": "OPENAI_REALTIME_SILENCE_MS",
        },
        prices=PRICES,
        check=HttpCheck(url("https://api.openai.com/v1", "/models")),
    ),
    ProviderSpec(
        name="azure-openai-realtime",
        kind=REALTIME,
        build=build_azure,
        options=AzureRealtimeOptions,
        secrets=api_key("AZURE_OPENAI_API_KEY"),
        env_options={
            "azure_endpoint": "AZURE_OPENAI_ENDPOINT",
            "azure_deployment": "AZURE_OPENAI_REALTIME_DEPLOYMENT",
            "voice": "OPENAI_REALTIME_VOICE",
        },
        prices=PRICES,
    ),
)
