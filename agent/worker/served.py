"""Which provider of each chain served a call's latest work: the plugins' metrics carry the
label of the provider that produced them, so after a failover the name changes with them.

One tracker for everything that reports a turn's providers: ``python -m agent simulate``'s
transcript and the turn feed a room job publishes (``agent.worker.turn_feed``)."""

from __future__ import annotations

from typing import Any

from livekit.agents import llm
from livekit.agents.metrics import LLMMetrics, STTMetrics, TTSMetrics

from providers.chains import Chains
from providers.config import ProviderKind

KINDS = {"stt": ProviderKind.STT, "llm": ProviderKind.LLM, "tts": ProviderKind.TTS}
_METRICS_KIND: dict[type, str] = {STTMetrics: "stt", LLMMetrics: "llm", TTSMetrics: "tts"}


class ServedBy:
    """The provider name per kind (``stt``, ``llm``, ``tts``) that served last; before any
    metrics, each chain's first."""

    def __init__(self, chains: Chains) -> None:
        self._labels = chains.labels
        self.chain_names = {k: list(chains.providers.get(kind, [])) for k, kind in KINDS.items()}
        self.current = {k: names[0] for k, names in self.chain_names.items() if names}
        for component in (chains.stt, chains.llm, chains.tts):
            component.on("metrics_collected", self._on_metrics)

    def _on_metrics(self, metrics: Any) -> None:
        kind = _METRICS_KIND.get(type(metrics))
        name = self._labels.get(getattr(metrics, "label", ""))
        if kind and name:
            self.current[kind] = name

    def for_item(self, role: str) -> dict[str, str]:
        """A caller's turn is the STT's work alone; the LLM and TTS serve the replies."""
        return {k: v for k, v in self.current.items() if k == "stt" or role != "user"}


def scripted(item: llm.ChatMessage) -> bool:
    """An agent turn no LLM produced (``session.say``, the greeting): livekit records the
    LLM's metadata on every reply it generated, and none on a said text."""
    metrics = set(item.metrics or {})
    return item.role == "assistant" and not {"llm_metadata", "llm_node_ttft"} & metrics
