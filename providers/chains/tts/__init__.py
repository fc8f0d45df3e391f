"""The TTS chain: this project's own fallback chain, which guards each provider itself
(``fallback``: budgets, the unspoken rest, shared breakers), and its wiring (``wiring``)."""

from providers.chains.tts.wiring import build_tts_chain

__all__ = ["build_tts_chain"]
