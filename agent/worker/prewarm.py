"""Per-process model loading. Runs in the worker's ``setup_fnc`` before any call, so the
first caller does not wait for a model, and every later call reuses the same objects."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from agent.log import logger, quiet_known_noise
from agent.worker.settings import Settings, install
from agent.worker.turns import TurnSettings
from providers import ProviderError
from providers.catalogue import get_spec
from providers.config import OrgProviders, ProviderKind, env_providers
from providers.log import install_redaction

if TYPE_CHECKING:
    from livekit.agents import JobProcess, vad


@functools.cache
def shared_vad(min_silence: float = TurnSettings.vad_min_silence) -> vad.VAD:
    """One Silero VAD per process (per ``VAD_MIN_SILENCE``, which start-up fixes); each
    session opens its own stream on it, whose inference runs on the call's own loop
    (``providers.compat.inline_vad_stream``)."""
    from livekit.plugins import silero

    from providers import inline_vad_stream

    class InlineVAD(silero.VAD):
        def stream(self) -> silero.VADStream:
            return inline_vad_stream(super().stream())  # type: ignore[no-any-return]

    return InlineVAD.load(min_silence_duration=min_silence)


def load_models(
    org: OrgProviders,
    only: Mapping[ProviderKind, list[str]] | None = None,
    *,
    failure_level: int = logging.WARNING,
) -> list[str]:
    """Load the local models (vosk, piper, whisper) an org's chains use — each once per
    process; a model already in memory costs a dictionary lookup. ``only`` limits it to the
    providers a built chain kept, so one the factory already left out is not retried.

    Failures are logged once (at ``failure_level``) and not fatal: the factory leaves such a
    provider out of its chain and the next one serves. Blocking. Returns the names loaded.
    """
    loaded: list[str] = []
    for kind in ProviderKind:
        for config in org.chain(kind):
            spec = get_spec(config.provider, config.kind)
            if spec is None or spec.prewarm is None:
                continue
            if only is not None and config.provider not in only.get(kind, []):
                continue
            try:
                spec.prewarm(config.settings)
                loaded.append(config.provider)
            except Exception as e:
                logger.log(
                    failure_level,
                    "local model not loaded; its chain goes on to the next provider",
                    extra={"provider": config.label, "reason": str(e) or type(e).__name__},
                )
    return loaded


def load_local_models(settings: Settings) -> list[str]:
    """Load the models the environment config names: the worker's default stack, ahead of
    the first call. No chain is built here, so a model that cannot load (Vosk without
    ``make models``) is only noted: the warning comes from the call whose chain really
    holds that provider, and a worker whose calls never use it does not warn at all."""
    try:
        org = env_providers(settings.default_organization_id, settings.provider_env)
    except ProviderError as e:
        logger.error("cannot read the environment provider config", extra={"reason": str(e)})
        return []
    return load_models(org, failure_level=logging.INFO)


def prewarm(proc: JobProcess, *, settings: Settings) -> None:
    """livekit's ``setup_fnc`` (with ``settings`` bound): runs in each job process before
    its call, so a process of its own (``JOB_EXECUTOR=process``) installs them here. The
    log redaction too: livekit has put its handlers in place by then (in a job process, the
    ``LogQueueHandler`` that ships formatted lines to the worker)."""
    install_redaction()
    quiet_known_noise()
    install(settings)
    proc.userdata["vad"] = shared_vad(settings.turns.vad_min_silence)
    proc.userdata["local_models"] = load_local_models(settings)
