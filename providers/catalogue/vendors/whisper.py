"""faster-whisper: local speech-to-text, non-streaming (``plugins.whisper_stt``)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from providers.catalogue.spec import (
    LOCAL_EXTRA_HINT,
    STT,
    BuildRequest,
    ProviderSpec,
    given,
    plugin,
)
from providers.types import Options


class WhisperOptions(Options):
    model: str | None = None
    language: str = "en"
    compute_type: str = "int8"


def _module() -> ModuleType:
    return plugin("plugins.whisper_stt", "whisper", LOCAL_EXTRA_HINT)


def build(r: BuildRequest) -> Any:
    return _module().STT(**given(r.options))


def prewarm(o: WhisperOptions) -> None:
    _module().load_model(o.model, compute_type=o.compute_type)


SPECS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="whisper",
        kind=STT,
        build=build,
        options=WhisperOptions,
        env_options={"model": "WHISPER_MODEL", "language": "STT_LANGUAGE"},
        prewarm=prewarm,
        local=True,
    ),
)
