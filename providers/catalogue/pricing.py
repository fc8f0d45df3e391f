"""What a provider costs per unit of use, for the usage records and the ``cost`` strategy.

Units are the ones livekit's usage accounting reports: STT audio seconds, LLM input /
cached input / output tokens, TTS characters. A price is USD per unit. The defaults are
approximate public list prices, declared per provider in its vendor module (local providers
cost 0); a deployment overrides them with ``PRICING_JSON`` and an organization with a
``pricing`` object in a provider entry's config — its contract price wins.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from providers.env_vars import EnvReader, env_reader
from providers.errors import ConfigError
from providers.types import Unit as Unit  # prices are per unit; re-exported here

Price = Mapping[Unit, float]
"""USD per unit."""

PriceTable = Mapping[str, Price]
"""Model name (or a prefix of it, or ``*`` for any) → price."""

FREE: PriceTable = {"*": {}}

MAX_PRICE = 1_000_000.0
"""USD per unit no real price reaches; above it a price is a typo (or ``1e308``, whose cost
of a whole call overflows to infinity and turns the record into invalid JSON)."""


def per_minute(usd: float) -> float:
    return usd / 60.0


def per_million(usd: float) -> float:
    return usd / 1_000_000.0


def tokens(input_: float, cached: float, output: float) -> Price:
    """Per-million-token list prices → a price."""
    return {
        Unit.INPUT_TOKENS: per_million(input_),
        Unit.CACHED_INPUT_TOKENS: per_million(cached),
        Unit.OUTPUT_TOKENS: per_million(output),
    }


def lookup(table: PriceTable, model: str) -> Price:
    """The price of ``model``: an exact entry, else the longest entry it starts with (dated
    snapshots such as ``gpt-4.1-mini-2025-04-14``), else ``*``, else free."""
    if model in table:
        return table[model]
    prefixes = [k for k in table if k != "*" and model.startswith(k)]
    if prefixes:
        return table[max(prefixes, key=len)]
    return table.get("*", {})


_CACHED = {
    Unit.INPUT_TOKENS: Unit.CACHED_INPUT_TOKENS,
    Unit.INPUT_AUDIO_TOKENS: Unit.CACHED_INPUT_AUDIO_TOKENS,
}
"""Units whose cached part is counted apart, at its own price."""


def realtime_tokens(text: tuple[float, float, float], audio: tuple[float, float, float]) -> Price:
    """A speech-to-speech model's per-million-token list prices: (input, cached input,
    output) for text, then for audio."""
    return {
        **tokens(*text),
        Unit.INPUT_AUDIO_TOKENS: per_million(audio[0]),
        Unit.CACHED_INPUT_AUDIO_TOKENS: per_million(audio[1]),
        Unit.OUTPUT_AUDIO_TOKENS: per_million(audio[2]),
    }


def cost(price: Price, units: Mapping[Unit, float]) -> float:
    """USD for ``units`` at ``price``; cached input tokens are billed at the cached price."""
    total = 0.0
    for unit, amount in units.items():
        if cached := _CACHED.get(unit):
            amount -= units.get(cached, 0.0)
        total += max(amount, 0.0) * price.get(unit, 0.0)
    return total


TYPICAL_TURN: Mapping[str, Mapping[Unit, float]] = {
    "stt": {Unit.AUDIO_SECONDS: 10.0},
    "llm": {Unit.INPUT_TOKENS: 1000.0, Unit.OUTPUT_TOKENS: 100.0},
    "tts": {Unit.CHARACTERS: 100.0},
    "realtime": {
        Unit.INPUT_TOKENS: 1000.0,
        Unit.OUTPUT_TOKENS: 25.0,
        Unit.INPUT_AUDIO_TOKENS: 100.0,
        Unit.OUTPUT_AUDIO_TOKENS: 100.0,
    },
}
"""What the ``cost`` strategy compares providers on: one caller turn."""


def parse_price(raw: object, where: str) -> dict[Unit, float]:
    """``{"audioSeconds": 0.0001}`` → a price; a clear ``ConfigError`` naming ``where``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: pricing must be an object of unit → USD per unit")
    price: dict[Unit, float] = {}
    for name, value in raw.items():
        try:
            unit = Unit(name)
        except ValueError:
            known = ", ".join(u.value for u in Unit)
            raise ConfigError(f"{where}: unknown pricing unit {name!r} (known: {known})") from None
        price[unit] = _usd(value, f"{where}: pricing.{name}")
    return price


def _usd(value: object, where: str) -> float:
    """A finite price in [0, MAX_PRICE]: JSON's ``NaN``, ``Infinity``, ``1e999`` (which
    Python's json reads as inf) and integers too big for a float are refused here, at
    parse, so no call's record is ever priced with them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where} must be a number (USD per unit)")
    try:
        usd = float(value)
    except OverflowError:
        raise ConfigError(f"{where} is too large a number") from None
    if not math.isfinite(usd) or not 0 <= usd <= MAX_PRICE:
        raise ConfigError(
            f"{where} must be a finite number from 0 to {MAX_PRICE:g} USD per unit, not {usd!r}"
        )
    return usd


@dataclass(frozen=True)
class PriceOverrides:
    """``PRICING_JSON``: ``{"stt/deepgram": {"audioSeconds": 0.0001},
    "llm/openai/gpt-4.1": {"inputTokens": 2e-6, "outputTokens": 8e-6}}`` — per kind and
    provider, optionally per model. Replaces the registry's default for what it names."""

    entries: Mapping[str, Price]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> PriceOverrides:
        with env_reader(environ) as env:
            return env.value("PRICING_JSON", cls.parse, NO_OVERRIDES)

    @classmethod
    def parse(cls, raw: str) -> PriceOverrides:
        try:
            data = json.loads(raw)
        except ValueError:
            raise ConfigError("PRICING_JSON is not valid JSON") from None
        if not isinstance(data, dict):
            raise ConfigError('PRICING_JSON must be an object: {"stt/deepgram": {...}, ...}')
        return cls({key: parse_price(v, f"PRICING_JSON[{key!r}]") for key, v in data.items()})

    def find(self, kind: str, provider: str, model: str) -> Price | None:
        return self.entries.get(f"{kind}/{provider}/{model}") or self.entries.get(
            f"{kind}/{provider}"
        )


NO_OVERRIDES = PriceOverrides({})
"""The registry's prices as they are (no ``PRICING_JSON``)."""
