"""Prometheus metrics, served by livekit's own Prometheus server (``PROMETHEUS_PORT``).

Everything is in prometheus_client's default registry, which livekit's server exports
(with ``JOB_EXECUTOR=process``, through the multiprocess directory the worker sets up).
Organization labels are bounded: ``METRICS_ORG_LABEL=off`` drops them (every org is
``all``); otherwise the first ``METRICS_MAX_ORGS`` organizations this process sees keep
their id and later ones are counted as ``other``. Label values are redacted like log
lines: a breaker's endpoint shows no userinfo or query string, a key only its salted
fingerprint, a reason no secret.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from providers import EnvReader, Lru, env_reader
from providers.chains import (
    Blame,
    BreakerState,
    Failover,
    HealthKeys,
    HealthRegistry,
    describe_error,
)
from providers.redaction import redact_text, safe_urls

CALLS = Counter("voice_agent_calls", "Calls configured", ["org", "config_source"])
REFUSED = Counter(
    "voice_agent_calls_refused",
    "Calls refused: no usable config (no org label: an unknown org must not take a slot)",
)
FAILOVERS = Counter(
    "voice_agent_failovers",
    "Provider switches within calls",
    ["kind", "from_provider", "to_provider", "reason"],
)
PROVIDER_ERRORS = Counter(
    "voice_agent_provider_errors", "Provider failures", ["kind", "provider", "reason"]
)
PROVIDER_UP = Gauge(
    "voice_agent_provider_up",
    "1 while the provider's breaker is closed, 0 while open (key: endpoint or key hash)",
    ["kind", "provider", "key"],
    multiprocess_mode="mostrecent",
)
USAGE_UNITS = Counter(
    "voice_agent_usage_units", "Billed units", ["org", "kind", "provider", "unit"]
)
COST_USD = Counter("voice_agent_cost_usd", "Estimated cost", ["org", "provider"])
BUDGET_EXCEEDED = Counter(
    "voice_agent_budget_exceeded_calls",
    "Calls routed by cost because the org's monthly budget is spent",
    ["org"],
)
VOICE_TO_VOICE = Histogram(
    "voice_agent_voice_to_voice_seconds",
    "End of caller speech to the agent's first audio (livekit's e2e latency)",
    buckets=(0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0),
)
TTFB = Histogram(
    "voice_agent_ttfb_seconds",
    "Time to first token (llm) or first audio (tts)",
    ["kind", "provider"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0),
)
BACKEND_SECONDS = Histogram(
    "voice_agent_backend_request_seconds",
    "Backend requests: provider configs and usage posts",
    ["route"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0),
)
SPOOL_DEPTH = Gauge(
    "voice_agent_usage_spool_depth",
    "Usage records waiting in the spool",
    multiprocess_mode="mostrecent",
)
SPOOL_FULL = Counter("voice_agent_usage_spool_full", "Usage records the full spool could only log")
SPOOL_WRITE_ERRORS = Counter(
    "voice_agent_usage_spool_write_errors",
    "Usage spool writes that failed (full disk, broken file): op is checkpoint or close",
    ["op"],
)
RECOVERED = Counter(
    "voice_agent_usage_records_recovered",
    "Open usage records of calls whose process died, closed at their last checkpoint",
)
QUARANTINED = Counter(
    "voice_agent_usage_records_quarantined",
    "Spooled usage records that cannot be sent as they are (not JSON): kept, set aside",
)

OTHER = "other"
ALL = "all"


@dataclass(frozen=True)
class MetricsSettings:
    org_label: bool = True
    """``METRICS_ORG_LABEL``: per-org series keep the org's id (False: every org is ``all``)."""
    max_orgs: int = 100
    """``METRICS_MAX_ORGS``: orgs after this many are labelled ``other``."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | EnvReader) -> MetricsSettings:
        d = cls()
        with env_reader(environ) as env:
            return cls(
                org_label=env.flag("METRICS_ORG_LABEL", d.org_label),
                max_orgs=env.integer("METRICS_MAX_ORGS", d.max_orgs),
            )


class OrgLabels:
    """Bounded org label values (see the module docstring)."""

    def __init__(self, *, enabled: bool, limit: int) -> None:
        self.enabled = enabled
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def configure(self, settings: MetricsSettings) -> None:
        """The start-up settings (``org_label`` is made at import, before they are read)."""
        with self._lock:
            self.enabled, self.limit = settings.org_label, settings.max_orgs

    def __call__(self, org_id: str | None) -> str:
        if not self.enabled:
            return ALL
        org = org_id or "(none)"
        with self._lock:
            if org in self._seen:
                return org
            if len(self._seen) < self.limit:
                self._seen.add(org)
                return org
        return OTHER


org_label = OrgLabels(enabled=MetricsSettings.org_label, limit=MetricsSettings.max_orgs)


def count_failover(event: Failover, org_id: str | None) -> None:
    """A call's chains tell this every switch (``build_chains(on_failover=...)``)."""
    FAILOVERS.labels(
        event.kind.value,
        event.from_provider,
        event.to_provider or "none",
        redact_text(event.reason),
    ).inc()


MAX_UP_SERIES = 500
"""``voice_agent_provider_up`` series (one per endpoint and per key) one process exports;
past it the least recently updated is removed: a worker meets keys for weeks."""
_up_lock = threading.Lock()
_up_series: Lru[tuple[str, str, str], bool] = Lru(
    MAX_UP_SERIES, on_evict=lambda labels, _: PROVIDER_UP.remove(*labels)
)


def _on_health(
    keys: HealthKeys, key: str, state: BreakerState, error: BaseException | None
) -> None:
    if error is not None:
        reason = redact_text(describe_error(error))
        PROVIDER_ERRORS.labels(keys.kind, keys.provider, reason).inc()
    if keys.scope(key) is Blame.CONFIG:
        return  # one org's config, not the provider: no series per org and config
    labels = (keys.kind, keys.provider, safe_urls(key))
    with _up_lock:
        PROVIDER_UP.labels(*labels).set(0.0 if state is BreakerState.OPEN else 1.0)
        _up_series.put(labels, True)


_installed: set[int] = set()


def install(health: HealthRegistry) -> None:
    """Feed the breaker metrics from ``health``'s events (idempotent)."""
    if id(health) in _installed:
        return
    _installed.add(id(health))
    health.subscribe(_on_health)


def observe_latency(kind: str, provider: str | None, seconds: Any) -> None:
    if provider and isinstance(seconds, (int, float)) and seconds >= 0:
        TTFB.labels(kind, provider).observe(float(seconds))


def observe_session(session: Any, chains: Any) -> None:
    """Per-call latency metrics: livekit's e2e latency on each agent reply (from the
    session's conversation items), and each provider's time to first token / first audio
    (from the chains' own metrics events; ``chains.labels`` maps a plugin label to its
    provider name)."""
    from livekit.agents import llm
    from livekit.agents.metrics import LLMMetrics, TTSMetrics

    def on_item(ev: Any) -> None:
        item = ev.item
        if isinstance(item, llm.ChatMessage) and item.role == "assistant":
            e2e = (item.metrics or {}).get("e2e_latency")
            if isinstance(e2e, (int, float)) and e2e >= 0:
                VOICE_TO_VOICE.observe(float(e2e))

    def on_metrics(m: Any) -> None:
        if isinstance(m, LLMMetrics):
            observe_latency("llm", chains.labels.get(m.label), m.ttft)
        elif isinstance(m, TTSMetrics):
            observe_latency("tts", chains.labels.get(m.label), m.ttfb)

    session.on("conversation_item_added", on_item)
    chains.llm.on("metrics_collected", on_metrics)
    chains.tts.on("metrics_collected", on_metrics)
