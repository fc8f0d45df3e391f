"""Piper: local text-to-speech, in-process or through a piper HTTP server
(``plugins.piper_tts``)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pydantic import Field

from providers.catalogue.spec import (
    LOCAL_EXTRA_HINT,
    TTS,
    BuildRequest,
    ProviderSpec,
    ServerOptions,
    given,
    plugin,
    server_capable,
)
from providers.errors import ProviderUnavailableError


class PiperOptions(ServerOptions):
    port: int = 5000
    voice: str | None = None
    speaker: int | None = None
    length_scale: float | None = None
    sample_rate: int | None = None
    timeout: float = Field(default=5.0, gt=0)
    """Remote mode: seconds one sentence's request may take (also bounded by the caller's
    ``conn_options.timeout``)."""


def _module() -> ModuleType:
    return plugin("plugins.piper_tts", "piper", LOCAL_EXTRA_HINT)


def _load(o: PiperOptions) -> None:
    _module().load_voice(o.voice)


def build(r: BuildRequest) -> Any:
    piper = _module()
    o: PiperOptions = r.options
    if o.in_process and o.voice is None:
        try:  # the packaged default voice: cheap to locate, loaded only at prewarm
            piper.default_voice_path()
        except (ImportError, OSError, RuntimeError) as e:
            raise ProviderUnavailableError(f"provider 'piper' has no voice: {e}") from None
    return piper.TTS(**given(o))


SPECS: tuple[ProviderSpec, ...] = (
    server_capable(
        name="piper",
        kind=TTS,
        build=build,
        options=PiperOptions,
        env_options={"host": "TTS_HOST", "port": "TTS_PORT", "voice": "PIPER_VOICE"},
        load=_load,
    ),
)
