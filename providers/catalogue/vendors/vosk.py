"""Vosk: local speech-to-text, in-process or through a vosk-server (``plugins.vosk_stt``)."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

from providers.catalogue.spec import (
    LOCAL_EXTRA_HINT,
    STT,
    BuildRequest,
    ProviderSpec,
    ServerOptions,
    given,
    plugin,
    server_capable,
)
from providers.errors import ProviderUnavailableError


class VoskOptions(ServerOptions):
    port: int = 2700
    model_path: str | None = None
    sample_rate: int = 16000
    language: str = "en"


def _module() -> ModuleType:
    return plugin("plugins.vosk_stt", "vosk", LOCAL_EXTRA_HINT)


def _load(o: VoskOptions) -> None:
    _module().load_model(o.model_path)


def build(r: BuildRequest) -> Any:
    vosk = _module()
    o: VoskOptions = r.options
    if o.in_process:
        if importlib.util.find_spec("vosk") is None:  # remote mode needs no vosk library
            raise ProviderUnavailableError(
                f"provider 'vosk' (in-process) needs: {LOCAL_EXTRA_HINT}"
            )
        try:  # cheap: finds the folder, loads nothing
            vosk.find_model_path(o.model_path)
        except vosk.VoskModelNotFoundError as e:
            raise ProviderUnavailableError(str(e)) from None
    return vosk.STT(**given(o))


SPECS: tuple[ProviderSpec, ...] = (
    server_capable(
        name="vosk",
        kind=STT,
        build=build,
        options=VoskOptions,
        env_options={"host": "STT_HOST", "port": "STT_PORT", "model_path": "VOSK_MODEL_PATH"},
        load=_load,
    ),
)
