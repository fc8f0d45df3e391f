"""The STT chain: a guard per provider (``guard``: watchdog and handover of the caller's
words), the non-streaming adapter (``early_decode``), livekit's fallback adapter as the
chain uses it (``fallback``) and their wiring (``wiring``)."""

from providers.chains.stt.wiring import build_stt_chain

__all__ = ["build_stt_chain"]
