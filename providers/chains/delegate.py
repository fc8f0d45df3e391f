"""What a wrapper around one livekit STT/LLM keeps of the provider it wraps: its label,
model and provider (so logs, traces and metrics still name the real provider), its metrics,
re-emitted as the wrapper's own (so a fallback adapter above forwards them), and livekit's
``prewarm()`` hook (a wrapper that kept the base class's no-op would hide the provider's)."""

from __future__ import annotations

from typing import Any

from providers.compat import set_label


class Delegate:
    inner: Any

    def delegate_to(self, inner: Any) -> None:
        self.inner = inner
        set_label(self, inner.label)
        inner.on("metrics_collected", self._forward_metrics)

    @property
    def model(self) -> str:
        return str(self.inner.model)

    @property
    def provider(self) -> str:
        return str(self.inner.provider)

    def prewarm(self, **kwargs: Any) -> None:
        """livekit calls this when a session or agent activity starts (an LLM's takes
        ``loop=``): DNS and TLS are set up before the first request needs them."""
        self.inner.prewarm(**kwargs)

    def _forward_metrics(self, *args: Any, **kwargs: Any) -> None:
        self.emit("metrics_collected", *args, **kwargs)  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        self.inner.off("metrics_collected", self._forward_metrics)
