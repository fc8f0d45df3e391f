"""Per-process model loading. Runs in the worker's ``setup_fnc`` before any call, so the
first caller does not wait for a model, and every later call reuses the same objects."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from providers.env import env_providers
from providers.errors import ProviderError
from providers.factory import validate_options
from providers.registry import get_spec
from providers.types import ProviderKind

from .log import logger

if TYPE_CHECKING:
    from livekit.agents import JobProcess, vad


@functools.cache
def shared_vad() -> vad.VAD:
    """One Silero VAD per process; each session opens its own stream on it."""
    from livekit.plugins import silero

    return silero.VAD.load()


def load_local_models() -> list[str]:
    """Load the local models the environment config names (vosk, piper, whisper).

    Failures are logged once and not fatal: the factory leaves such a provider out of its
    chain and the next one serves. Returns the names that loaded.
    """
    loaded: list[str] = []
    try:
        org = env_providers(os.environ.get("DEFAULT_ORGANIZATION_ID"))
    except ProviderError as e:
        logger.error("cannot read the environment provider config", extra={"reason": str(e)})
        return loaded
    for kind in ProviderKind:
        for config in org.chain(kind):
            spec = get_spec(config.provider, config.kind)
            if spec is None or spec.prewarm is None:
                continue
            try:
                spec.prewarm(validate_options(spec, config, org.organization_id))
                loaded.append(config.provider)
            except Exception as e:
                logger.warning(
                    "local model not loaded; its chain goes on to the next provider",
                    extra={"provider": config.label, "reason": str(e) or type(e).__name__},
                )
    return loaded


def prewarm(proc: JobProcess) -> None:
    proc.userdata["vad"] = shared_vad()
    proc.userdata["local_models"] = load_local_models()
