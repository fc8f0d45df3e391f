"""A call's usage record: what livekit's own accounting (``AgentSession.usage``) counted,
per provider and model that actually served (after failovers), priced.

The record is what the backend bills from (``POST /api/usage/calls``); its JSON is the
wire format, camelCase like the rest of the backend contract.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from livekit.agents.metrics import (
    LLMModelUsage,
    ModelUsage,
    STTModelUsage,
    TTSModelUsage,
)

from agent.log import logger
from providers.catalogue import NO_OVERRIDES, PriceOverrides, Unit, cost
from providers.chains import Failover, price_of
from providers.config import ProviderConfig


@dataclass(frozen=True)
class UsageLine:
    kind: str
    provider: str
    """The registry's name ("deepgram"), or the plugin's own when no config matches."""
    model: str
    units: Mapping[Unit, float]
    cost_usd: float

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "provider": self.provider,
            "model": self.model,
            **{unit.value: _number(v) for unit, v in self.units.items()},
            "costUsd": round(self.cost_usd, 8),
        }


Completion = Literal["normal", "recovered"]
"""``normal``: the call's own end wrote the record. ``recovered``: the call's process died
(or its job did); another process (or the same worker, restarted) closed the record as the
last checkpoint left it, so ``endedAt`` is that checkpoint's time."""


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    organization_id: str | None
    started_at: float
    ended_at: float
    config_source: str
    config_version: str | None
    strategy: str
    usage: Sequence[UsageLine] = ()
    failovers: Sequence[Failover] = ()
    room: str | None = None
    completion: Completion = "normal"

    @property
    def estimated_cost_usd(self) -> float:
        return sum(line.cost_usd for line in self.usage)

    def to_json(self) -> dict[str, Any]:
        return {
            "callId": self.call_id,
            "organizationId": self.organization_id,
            "room": self.room,
            "startedAt": _iso(self.started_at),
            "endedAt": _iso(self.ended_at),
            "durationSeconds": round(self.ended_at - self.started_at, 3),
            "configSource": self.config_source,
            "configVersion": self.config_version,
            "strategy": self.strategy,
            "usage": [line.to_json() for line in self.usage],
            "failovers": [
                {
                    "kind": f.kind.value,
                    "from": f.from_provider,
                    "to": f.to_provider,
                    "error": f.reason,
                    "at": _iso(f.at),
                }
                for f in self.failovers
            ],
            "estimatedCostUsd": round(self.estimated_cost_usd, 8),
            "completion": self.completion,
        }


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="milliseconds")


def _number(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(v, 3)


def units_of(usage: ModelUsage, realtime: bool = False) -> tuple[str, dict[Unit, float]] | None:
    """livekit's usage entry → (kind, units); None for what is not billed per call here
    (turn-detector and interruption model requests). ``realtime``: the entry is a
    speech-to-speech model's (livekit counts it as an LLM's), billed for its text and audio
    tokens apart."""
    if realtime and isinstance(usage, STTModelUsage):  # its transcription of the caller
        return "realtime", {Unit.AUDIO_SECONDS: usage.audio_duration}
    if realtime and isinstance(usage, LLMModelUsage):
        return "realtime", {
            Unit.INPUT_TOKENS: usage.input_text_tokens,
            Unit.CACHED_INPUT_TOKENS: usage.input_cached_text_tokens,
            Unit.OUTPUT_TOKENS: usage.output_text_tokens,
            Unit.INPUT_AUDIO_TOKENS: usage.input_audio_tokens,
            Unit.CACHED_INPUT_AUDIO_TOKENS: usage.input_cached_audio_tokens,
            Unit.OUTPUT_AUDIO_TOKENS: usage.output_audio_tokens,
        }
    if isinstance(usage, STTModelUsage):
        return "stt", {Unit.AUDIO_SECONDS: usage.audio_duration}
    if isinstance(usage, LLMModelUsage):
        return "llm", {
            Unit.INPUT_TOKENS: usage.input_tokens,
            Unit.CACHED_INPUT_TOKENS: usage.input_cached_tokens,
            Unit.OUTPUT_TOKENS: usage.output_tokens,
        }
    if isinstance(usage, TTSModelUsage):
        return "tts", {
            Unit.CHARACTERS: usage.characters_count,
            Unit.AUDIO_SECONDS: usage.audio_duration,
        }
    return None


def usage_lines(
    model_usage: Sequence[ModelUsage],
    configs: Mapping[tuple[str, str], ProviderConfig],
    *,
    org_id: str | None,
    overrides: PriceOverrides | None = None,
    warn: bool = True,
) -> list[UsageLine]:
    """Price livekit's per-(provider, model) usage. ``configs`` maps (kind, the plugin's
    provider string) to the config that built it, whose org pricing applies; ``overrides``
    are the worker's ``PRICING_JSON``. ``warn``: log what is priced at 0 (once per call,
    at its close: not at every checkpoint)."""
    overrides = overrides or NO_OVERRIDES
    lines: list[UsageLine] = []
    for usage in model_usage:
        kind_units = units_of(usage, _is_realtime(usage, configs))
        if kind_units is None:
            continue
        kind, units = kind_units
        if not any(units.values()):
            continue
        config = configs.get((kind, usage.provider))
        if config is None:
            if warn:
                logger.warning(
                    "usage from a provider this call did not configure; priced at 0",
                    extra={"org": org_id, "kind": kind, "provider": usage.provider},
                )
            lines.append(UsageLine(kind, usage.provider, usage.model, units, 0.0))
            continue
        price = price_of(config, usage.model, overrides)
        lines.append(UsageLine(kind, config.provider, usage.model, units, cost(price, units)))
    return lines


def _is_realtime(usage: ModelUsage, configs: Mapping[tuple[str, str], ProviderConfig]) -> bool:
    """An entry from one of the call's realtime models. livekit names a realtime model,
    a chat LLM and an STT on one host alike (by the host): an LLM entry is the realtime
    model's when it has audio tokens (no chat LLM has) or the realtime model's name; an STT
    entry (the realtime model's transcription of the caller) when no STT of the call is
    on that host."""
    provider = getattr(usage, "provider", "")
    config = configs.get(("realtime", provider))
    if config is None:
        return False
    if isinstance(usage, STTModelUsage):
        return ("stt", provider) not in configs
    if not isinstance(usage, LLMModelUsage):
        return False
    audio = usage.input_audio_tokens or usage.output_audio_tokens
    return bool(audio) or usage.model == getattr(config.settings, "model", None)
