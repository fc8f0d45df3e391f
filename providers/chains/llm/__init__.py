"""The LLM chain: a guard per provider (``guard``: first-token budget, shared breakers),
livekit's fallback adapter as the chain uses it (``fallback``) and their wiring
(``wiring``)."""

from providers.chains.llm.wiring import build_llm_chain

__all__ = ["build_llm_chain"]
