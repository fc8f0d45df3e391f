"""The provider registry: one table from (name, kind) to everything the worker knows about
a provider — its typed options, required secrets and their env variables, how to build the
livekit object, how to check it, and what to load at prewarm.

This is the only module that knows provider names. Plugin packages are imported inside the
builders, so a worker never imports a plugin it does not use, and a missing one gives
``provider 'cartesia' needs: pip install livekit-plugins-cartesia``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pydantic import Field, ValidationError
from pydantic_core import PydanticCustomError

from providers.catalogue.pricing import FREE, PriceTable, Unit, per_million, per_minute, tokens
from providers.config.types import AgentPersona, Options, ProviderConfig, ProviderKind
from providers.errors import ProviderUnavailableError

STT, LLM, TTS = ProviderKind.STT, ProviderKind.LLM, ProviderKind.TTS
LOCAL_EXTRA_HINT = "pip install -e '.[local]'  (or: make install)"


class UrlOptions(Options):
    """A provider reached at ``base_url`` (None: the plugin's default URL)."""

    base_url: str | None = None

    @property
    def endpoint(self) -> str | None:
        return self.base_url


@dataclass(frozen=True)
class SecretSpec:
    name: str
    """The key in the backend's ``secrets`` object."""
    env: tuple[str, ...] = ()
    """Environment variables read in env mode, first set wins."""
    required: bool = True


@dataclass(frozen=True)
class HttpCheck:
    """The cheapest authenticated GET that proves a key works (``providers --check``)."""

    url: Callable[[Any], str]
    """Options → URL, so a ``base_url`` override (a proxy, a test server) is checked too."""
    header: str = "Authorization"
    scheme: str = "Bearer "


def _url(default_base: str, path: str) -> Callable[[Any], str]:
    return lambda o: (getattr(o, "base_url", None) or default_base).rstrip("/") + path


@dataclass(frozen=True)
class BuildRequest:
    """What a builder gets: validated options, resolved secrets and the org's persona."""

    options: Any
    secrets: Mapping[str, str]
    persona: AgentPersona
    org_id: str | None


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    kind: ProviderKind
    build: Callable[[BuildRequest], Any]
    options: type[Options] = Options
    secrets: tuple[SecretSpec, ...] = ()
    env_options: Mapping[str, str] = field(default_factory=dict)
    """Option name → environment variable, read in env mode. Settings whose values mean
    something to one provider only (models, voices, endpoints) get that provider's own
    variable: a chain sends each member only what is meant for it."""
    check: HttpCheck | None = None
    prewarm: Callable[[Any], None] | None = None
    """Loads the provider's local model once per process (called from the worker's setup)."""
    local: bool = False
    """Runs on this machine (``local-only`` keeps it unless its host option points away)."""
    prices: PriceTable = field(default_factory=lambda: FREE)
    """Default list prices per model (``providers.catalogue.pricing``); overridable."""


LIVEKIT_PLUGIN_MODULES = (
    "livekit.plugins.silero",
    "livekit.plugins.deepgram",
    "livekit.plugins.openai",
    "livekit.plugins.elevenlabs",
    "livekit.plugins.cartesia",
    "livekit.plugins.anthropic",
)
"""Every livekit plugin package a builder may import."""


def import_plugins() -> list[str]:
    """Import every installed livekit plugin now. livekit registers plugins on import and
    refuses to do so off the main thread, so a room job (which runs on a job thread) could
    not import one lazily. Call once from the main thread before jobs start; returns the
    modules imported. A missing optional package is skipped: its builder says what to
    install when an org asks for it."""
    imported = []
    for module in LIVEKIT_PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        imported.append(module)
    return imported


def _plugin(module: str, provider: str, package: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ProviderUnavailableError(f"provider '{provider}' needs: pip install {package}") from e


def _given(**kwargs: Any) -> dict[str, Any]:
    """Drop unset options so the plugin's own defaults apply."""
    return {k: v for k, v in kwargs.items() if v is not None}


# --- STT -------------------------------------------------------------------------------


class DeepgramOptions(UrlOptions):
    model: str = "nova-3"
    language: str = "en-US"
    endpointing_ms: int = 25
    smart_format: bool = False


def _deepgram(r: BuildRequest) -> Any:
    dg = _plugin("livekit.plugins.deepgram", "deepgram", "livekit-plugins-deepgram")
    o: DeepgramOptions = r.options
    return dg.STT(
        api_key=r.secrets["apiKey"],
        **_given(
            model=o.model,
            language=o.language,
            base_url=o.base_url,
            endpointing_ms=o.endpointing_ms,
            smart_format=o.smart_format,
        ),
    )


class OpenAISTTOptions(UrlOptions):
    model: str = "whisper-1"
    language: str = "en"


def _openai_stt(r: BuildRequest) -> Any:
    oai = _plugin("livekit.plugins.openai", "openai", "livekit-plugins-openai")
    o: OpenAISTTOptions = r.options
    return oai.STT(
        api_key=r.secrets["apiKey"],
        use_realtime=False,
        **_given(model=o.model, language=o.language, base_url=o.base_url),
    )


class VoskOptions(Options):
    host: str | None = None
    """A vosk-server's host; None: in-process."""
    port: int = 2700
    model_path: str | None = None
    sample_rate: int = 16000
    language: str = "en"

    @property
    def endpoint(self) -> str | None:
        return f"{self.host}:{self.port}" if self.host else None


def _vosk_module() -> ModuleType:
    return _plugin("plugins.vosk_stt", "vosk", LOCAL_EXTRA_HINT)


def _vosk(r: BuildRequest) -> Any:
    vosk = _vosk_module()
    o: VoskOptions = r.options
    if not o.host:
        if importlib.util.find_spec("vosk") is None:  # remote mode needs no vosk library
            raise ProviderUnavailableError(
                f"provider 'vosk' (in-process) needs: {LOCAL_EXTRA_HINT}"
            )
        try:  # cheap: finds the folder, loads nothing
            vosk.find_model_path(o.model_path)
        except vosk.VoskModelNotFoundError as e:
            raise ProviderUnavailableError(str(e)) from None
    return vosk.STT(
        host=o.host,
        port=o.port,
        model_path=o.model_path,
        sample_rate=o.sample_rate,
        language=o.language,
    )


def _vosk_prewarm(o: VoskOptions) -> None:
    if not o.host:
        _vosk_module().load_model(o.model_path)


class WhisperOptions(Options):
    model: str | None = None
    language: str = "en"
    compute_type: str = "int8"


def _whisper_module() -> ModuleType:
    return _plugin("plugins.whisper_stt", "whisper", LOCAL_EXTRA_HINT)


def _whisper(r: BuildRequest) -> Any:
    o: WhisperOptions = r.options
    return _whisper_module().STT(model=o.model, language=o.language, compute_type=o.compute_type)


def _whisper_prewarm(o: WhisperOptions) -> None:
    _whisper_module().load_model(o.model, compute_type=o.compute_type)


# --- TTS -------------------------------------------------------------------------------


class PiperOptions(Options):
    host: str | None = None
    port: int = 5000
    voice: str | None = None
    speaker: int | None = None
    length_scale: float | None = None
    sample_rate: int | None = None
    timeout: float = Field(default=5.0, gt=0)
    """Remote mode: seconds one sentence's request may take (also bounded by the caller's
    ``conn_options.timeout``)."""

    @property
    def endpoint(self) -> str | None:
        return f"{self.host}:{self.port}" if self.host else None


def _piper_module() -> ModuleType:
    return _plugin("plugins.piper_tts", "piper", LOCAL_EXTRA_HINT)


def _piper(r: BuildRequest) -> Any:
    piper = _piper_module()
    o: PiperOptions = r.options
    if not o.host and o.voice is None:
        try:  # the packaged default voice: cheap to locate, loaded only at prewarm
            piper.default_voice_path()
        except (ImportError, OSError, RuntimeError) as e:
            raise ProviderUnavailableError(f"provider 'piper' has no voice: {e}") from None
    return piper.TTS(
        voice=o.voice,
        host=o.host,
        port=o.port,
        speaker=o.speaker,
        length_scale=o.length_scale,
        sample_rate=o.sample_rate,
        timeout=o.timeout,
    )


def _piper_prewarm(o: PiperOptions) -> None:
    if not o.host:
        _piper_module().load_voice(o.voice)


class ElevenLabsOptions(UrlOptions):
    voice_id: str | None = None
    model: str = "eleven_flash_v2_5"
    language: str | None = None


def _elevenlabs(r: BuildRequest) -> Any:
    el = _plugin("livekit.plugins.elevenlabs", "elevenlabs", "livekit-plugins-elevenlabs")
    o: ElevenLabsOptions = r.options
    return el.TTS(
        api_key=r.secrets["apiKey"],
        **_given(voice_id=o.voice_id, model=o.model, language=o.language, base_url=o.base_url),
    )


class CartesiaOptions(UrlOptions):
    model: str = "sonic-3"
    voice: str | None = None
    language: str = "en"
    sample_rate: int = 24000


def _cartesia(r: BuildRequest) -> Any:
    ca = _plugin("livekit.plugins.cartesia", "cartesia", "livekit-plugins-cartesia")
    o: CartesiaOptions = r.options
    return ca.TTS(
        api_key=r.secrets["apiKey"],
        **_given(
            model=o.model,
            voice=o.voice,
            language=o.language,
            base_url=o.base_url,
            sample_rate=o.sample_rate,
        ),
    )


class OpenAITTSOptions(UrlOptions):
    model: str = "gpt-4o-mini-tts"
    voice: str = "ash"


def _openai_tts(r: BuildRequest) -> Any:
    oai = _plugin("livekit.plugins.openai", "openai", "livekit-plugins-openai")
    o: OpenAITTSOptions = r.options
    return oai.TTS(
        api_key=r.secrets["apiKey"], **_given(model=o.model, voice=o.voice, base_url=o.base_url)
    )


# --- LLM -------------------------------------------------------------------------------


class ChatOptions(UrlOptions):
    model: str = "gpt-4.1-mini"
    temperature: float | None = None


class GroqOptions(ChatOptions):
    model: str = "llama-3.3-70b-versatile"
    base_url: str | None = "https://api.groq.com/openai/v1"


class GeminiOptions(ChatOptions):
    model: str = "gemini-2.5-flash"
    base_url: str | None = "https://generativelanguage.googleapis.com/v1beta/openai/"


class CompatibleOptions(ChatOptions):
    """Any OpenAI-compatible server: Ollama, vLLM, llama.cpp, OpenRouter."""

    base_url: str  # required here
    model: str


class AzureOptions(Options):
    model: str = "gpt-4o"
    azure_endpoint: str
    azure_deployment: str | None = None
    api_version: str = "2024-10-21"
    temperature: float | None = None

    @property
    def endpoint(self) -> str | None:
        return self.azure_endpoint


class AnthropicOptions(UrlOptions):
    model: str = "claude-3-5-haiku-latest"
    temperature: float | None = None


def _openai_chat(r: BuildRequest) -> Any:
    oai = _plugin("livekit.plugins.openai", "openai", "livekit-plugins-openai")
    o: ChatOptions = r.options
    return oai.LLM(
        api_key=r.secrets.get("apiKey") or "not-needed",
        **_given(model=o.model, base_url=o.base_url, temperature=o.temperature),
    )


def _azure(r: BuildRequest) -> Any:
    oai = _plugin("livekit.plugins.openai", "azure-openai", "livekit-plugins-openai")
    o: AzureOptions = r.options
    return oai.LLM.with_azure(
        api_key=r.secrets["apiKey"],
        model=o.model,
        azure_endpoint=o.azure_endpoint,
        azure_deployment=o.azure_deployment,
        api_version=o.api_version,
        **_given(temperature=o.temperature),
    )


def _anthropic(r: BuildRequest) -> Any:
    an = _plugin("livekit.plugins.anthropic", "anthropic", "livekit-plugins-anthropic")
    o: AnthropicOptions = r.options
    return an.LLM(
        api_key=r.secrets["apiKey"],
        **_given(model=o.model, base_url=o.base_url, temperature=o.temperature),
    )


def _offline(r: BuildRequest) -> Any:
    from plugins.offline_llm import OfflineLLM

    return OfflineLLM(
        faq=[(e.question, e.answer, e.keywords) for e in r.persona.faq],
        fallback_reply=r.persona.fallback,
    )


# --- the table -------------------------------------------------------------------------


def _key(*env: str, required: bool = True) -> tuple[SecretSpec, ...]:
    return (SecretSpec("apiKey", env=env, required=required),)


_OPENAI_CHECK = HttpCheck(_url("https://api.openai.com/v1", "/models"))
ENV_HINTS: Mapping[str, str] = {
    "STT_MODEL": "DEEPGRAM_STT_MODEL or OPENAI_STT_MODEL",
    "TTS_VOICE": "ELEVENLABS_VOICE_ID, CARTESIA_VOICE or OPENAI_TTS_VOICE",
    "LLM_MODEL": (
        "OPENAI_LLM_MODEL, GROQ_LLM_MODEL, AZURE_OPENAI_LLM_MODEL, GEMINI_LLM_MODEL or "
        "ANTHROPIC_LLM_MODEL (LLM_MODEL is the openai-compatible server's model)"
    ),
}
"""Shared variables that once fed every provider of a chain (one model for OpenAI and
Groq alike), with the per-provider names that replace them: set but read by no provider of
the chain, they are reported rather than silently ignored."""
_OPENAI_PRICES: PriceTable = {
    "*": tokens(0.40, 0.10, 1.60),
    "gpt-4.1-mini": tokens(0.40, 0.10, 1.60),
    "gpt-4.1-nano": tokens(0.10, 0.025, 0.40),
    "gpt-4.1": tokens(2.0, 0.50, 8.0),
    "gpt-4o-mini": tokens(0.15, 0.075, 0.60),
    "gpt-4o": tokens(2.50, 1.25, 10.0),
}

_SPECS: tuple[ProviderSpec, ...] = (
    # STT
    ProviderSpec(
        "deepgram",
        STT,
        _deepgram,
        DeepgramOptions,
        _key("DEEPGRAM_API_KEY"),
        {"model": "DEEPGRAM_STT_MODEL", "language": "STT_LANGUAGE"},
        prices={
            "*": {Unit.AUDIO_SECONDS: per_minute(0.0077)},  # nova-3, streaming
            "nova-2": {Unit.AUDIO_SECONDS: per_minute(0.0058)},
        },
        check=HttpCheck(
            lambda o: (
                (o.base_url or "https://api.deepgram.com/v1/listen").rsplit("/", 1)[0] + "/projects"
            ),
            scheme="Token ",
        ),
    ),
    ProviderSpec(
        "openai",
        STT,
        _openai_stt,
        OpenAISTTOptions,
        _key("OPENAI_API_KEY"),
        {"model": "OPENAI_STT_MODEL", "language": "STT_LANGUAGE", "base_url": "OPENAI_BASE_URL"},
        prices={
            "*": {Unit.AUDIO_SECONDS: per_minute(0.006)},
            "gpt-4o-mini-transcribe": {Unit.AUDIO_SECONDS: per_minute(0.003)},
        },
        check=_OPENAI_CHECK,
    ),
    ProviderSpec(
        "vosk",
        STT,
        _vosk,
        VoskOptions,
        (),
        {"host": "STT_HOST", "port": "STT_PORT", "model_path": "VOSK_MODEL_PATH"},
        prewarm=_vosk_prewarm,
        local=True,
    ),
    ProviderSpec(
        "whisper",
        STT,
        _whisper,
        WhisperOptions,
        (),
        {"model": "WHISPER_MODEL", "language": "STT_LANGUAGE"},
        prewarm=_whisper_prewarm,
        local=True,
    ),
    # TTS
    ProviderSpec(
        "piper",
        TTS,
        _piper,
        PiperOptions,
        (),
        {"host": "TTS_HOST", "port": "TTS_PORT", "voice": "PIPER_VOICE"},
        prewarm=_piper_prewarm,
        local=True,
    ),
    ProviderSpec(
        "elevenlabs",
        TTS,
        _elevenlabs,
        ElevenLabsOptions,
        _key("ELEVEN_API_KEY", "ELEVENLABS_API_KEY"),
        {"voice_id": "ELEVENLABS_VOICE_ID"},
        prices={
            "*": {Unit.CHARACTERS: per_million(100.0)},
            "eleven_flash": {Unit.CHARACTERS: per_million(50.0)},
            "eleven_turbo": {Unit.CHARACTERS: per_million(50.0)},
        },
        check=HttpCheck(_url("https://api.elevenlabs.io/v1", "/user"), "xi-api-key", ""),
    ),
    ProviderSpec(
        "cartesia",
        TTS,
        _cartesia,
        CartesiaOptions,
        _key("CARTESIA_API_KEY"),
        {"voice": "CARTESIA_VOICE"},
        prices={"*": {Unit.CHARACTERS: per_million(38.0)}},
        check=HttpCheck(_url("https://api.cartesia.ai", "/voices?limit=1"), "X-API-Key", ""),
    ),
    ProviderSpec(
        "openai",
        TTS,
        _openai_tts,
        OpenAITTSOptions,
        _key("OPENAI_API_KEY"),
        {"voice": "OPENAI_TTS_VOICE", "base_url": "OPENAI_BASE_URL"},
        prices={
            "*": {Unit.CHARACTERS: per_million(15.0)},
            "tts-1-hd": {Unit.CHARACTERS: per_million(30.0)},
            "gpt-4o-mini-tts": {Unit.CHARACTERS: per_million(12.0)},
        },
        check=_OPENAI_CHECK,
    ),
    # LLM
    ProviderSpec(
        "openai",
        LLM,
        _openai_chat,
        ChatOptions,
        _key("OPENAI_API_KEY"),
        {"model": "OPENAI_LLM_MODEL", "base_url": "OPENAI_BASE_URL"},
        prices=_OPENAI_PRICES,
        check=_OPENAI_CHECK,
    ),
    ProviderSpec(
        "groq",
        LLM,
        _openai_chat,
        GroqOptions,
        _key("GROQ_API_KEY"),
        {"model": "GROQ_LLM_MODEL"},
        prices={
            "*": tokens(0.59, 0.59, 0.79),  # llama-3.3-70b-versatile
            "llama-3.1-8b": tokens(0.05, 0.05, 0.08),
        },
        check=HttpCheck(_url("", "/models")),
    ),
    ProviderSpec(
        "azure-openai",
        LLM,
        _azure,
        AzureOptions,
        _key("AZURE_OPENAI_API_KEY"),
        {
            "model": "AZURE_OPENAI_LLM_MODEL",
            "azure_endpoint": "AZURE_OPENAI_ENDPOINT",
            "azure_deployment": "AZURE_OPENAI_DEPLOYMENT",
            "api_version": "OPENAI_API_VERSION",
        },
        prices=_OPENAI_PRICES,
    ),
    ProviderSpec(
        "gemini",
        LLM,
        _openai_chat,
        GeminiOptions,
        _key("GOOGLE_API_KEY", "GEMINI_API_KEY"),
        {"model": "GEMINI_LLM_MODEL"},
        prices={
            "*": tokens(0.10, 0.025, 0.40),  # gemini-2.0-flash
            "gemini-2.5-flash": tokens(0.30, 0.075, 2.50),
            "gemini-2.5-pro": tokens(1.25, 0.31, 10.0),
        },
        check=HttpCheck(_url("", "/models")),
    ),
    ProviderSpec(
        "anthropic",
        LLM,
        _anthropic,
        AnthropicOptions,
        _key("ANTHROPIC_API_KEY"),
        {"model": "ANTHROPIC_LLM_MODEL"},
        prices={
            "*": tokens(0.80, 0.08, 4.0),  # claude-3-5-haiku
            "claude-sonnet": tokens(3.0, 0.30, 15.0),
            "claude-3-7-sonnet": tokens(3.0, 0.30, 15.0),
            "claude-haiku-4": tokens(1.0, 0.10, 5.0),
        },
        check=HttpCheck(_url("https://api.anthropic.com", "/v1/models"), "x-api-key", ""),
    ),
    ProviderSpec(
        "openai-compatible",
        LLM,
        _openai_chat,
        CompatibleOptions,
        _key("LLM_API_KEY", required=False),
        {"model": "LLM_MODEL", "base_url": "LLM_BASE_URL"},
        check=HttpCheck(_url("", "/models")),
    ),
    ProviderSpec("offline", LLM, _offline, Options, (), local=True),
)

REGISTRY: Mapping[tuple[str, ProviderKind], ProviderSpec] = {(s.name, s.kind): s for s in _SPECS}
OFFLINE_LLM = "offline"


def offline_last(chain: Iterable[ProviderConfig]) -> tuple[ProviderConfig, ...]:
    """An LLM chain as every call runs it: the offline responder last, once, whatever the
    config said, so a caller never meets silence when every real LLM is down. Its priority
    is below the rest, so the chain reads in priority order. Used by the factory and by
    ``python -m agent providers`` alike."""
    rest = tuple(c for c in chain if c.provider != OFFLINE_LLM)
    priority = min((c.priority for c in rest), default=1) - 1
    return (*rest, ProviderConfig(provider=OFFLINE_LLM, kind=LLM, priority=priority))


def get_spec(name: str, kind: ProviderKind) -> ProviderSpec | None:
    return REGISTRY.get((name, kind))


def typed_options(provider: Any, kind: Any, options: Any) -> Options | None:
    """``options`` validated into the provider's model, once, when a ``ProviderConfig`` is
    made (its ``settings``). None while the provider, kind or options are themselves
    invalid: the config's own validation reports those. A bad option raises an error
    naming each field as ``options.<field>`` and never its value (it may be a secret)."""
    try:
        spec = get_spec(str(provider), ProviderKind(kind))
    except ValueError:
        return None
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        return None
    model = spec.options if spec is not None else Options
    try:
        return model.model_validate(dict(options))
    except ValidationError as e:
        detail = "; ".join(
            f"options.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise PydanticCustomError("provider_options", "{detail}", {"detail": detail}) from None


def is_known(name: str, kind: ProviderKind) -> bool:
    return (name, kind) in REGISTRY


def names(kind: ProviderKind) -> list[str]:
    return [s.name for s in _SPECS if s.kind is kind]
