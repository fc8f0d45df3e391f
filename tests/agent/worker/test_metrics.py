"""Prometheus series fed by provider health and failover events, with bounded org labels.
(The whole path, scraped from a real worker during and after a call with a failover, is in
``tests/e2e/test_rooms.py``.)"""

from __future__ import annotations

import pytest
from livekit.agents import APIStatusError
from prometheus_client import REGISTRY
from pydantic import SecretStr

from agent.worker import metrics
from providers.catalogue import provider_config
from providers.chains.events import FailoverLog
from providers.chains.health import HealthKeys, HealthRegistry
from providers.types import ProviderKind


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_org_labels_are_bounded() -> None:
    labels = metrics.OrgLabels(enabled=True, limit=2)
    assert [labels(o) for o in ("a", "b", "c", "a", None)] == ["a", "b", "other", "a", "other"]
    assert metrics.OrgLabels(enabled=False, limit=2)("a") == "all"


def test_breakers_and_switches_become_series() -> None:
    health = HealthRegistry()
    metrics.install(health)
    config = provider_config(
        provider="cartesia", kind=ProviderKind.TTS, options={"base_url": "http://metrics-test"}
    )
    keys = HealthKeys.of(config)
    errors = {"kind": "tts", "provider": "cartesia", "reason": "APIStatusError (HTTP 503)"}
    before = sample("voice_agent_provider_errors_total", **errors)

    health.record_failure(keys, APIStatusError("down", status_code=503))
    up = {"kind": "tts", "provider": "cartesia", "key": keys.endpoint}
    assert sample("voice_agent_provider_up", **up) == 0
    assert sample("voice_agent_provider_errors_total", **errors) == before + 1
    health.record_success(keys)
    assert sample("voice_agent_provider_up", **up) == 1

    switch = {
        "kind": "tts",
        "from_provider": "cartesia",
        "to_provider": "piper",
        "reason": "APIStatusError (HTTP 503)",
    }
    before = sample("voice_agent_failovers_total", **switch)
    FailoverLog("acme", [metrics.count_failover]).switch(
        ProviderKind.TTS, "cartesia", "piper", APIStatusError("x", status_code=503)
    )
    assert sample("voice_agent_failovers_total", **switch) == before + 1


def test_the_dashboard_only_queries_series_the_worker_exports() -> None:
    import json
    import re
    from pathlib import Path

    dashboard = Path(metrics.__file__).parents[1] / "data" / "grafana-dashboard.json"
    panels = json.loads(dashboard.read_text())["panels"]
    exported = {
        name
        for family in REGISTRY.collect()
        if family.name.startswith("voice_agent_")
        for name in {s.name for s in family.samples}
        | {family.name + suffix for suffix in ("_total", "_bucket", "_count", "_sum")}
    }
    queried = {
        m
        for p in panels
        for t in p["targets"]
        for m in re.findall(r"voice_agent_[a-z_]+", t["expr"])
    }
    assert queried and queried <= exported, queried - exported


def test_provider_up_series_are_bounded_and_org_configs_have_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    health = HealthRegistry()
    metrics.install(health)
    monkeypatch.setattr(metrics._up_series, "limit", 3)
    for i in range(6):  # a key a day: its series must not outlive the bound
        config = provider_config(
            provider="cartesia",
            kind=ProviderKind.TTS,
            options={"base_url": f"http://bounded-{i}"},
            secrets={"apiKey": SecretStr(f"key-{i}")},
        )
        keys = HealthKeys.of(config, f"org-{i}")
        health.record_failure(keys, APIStatusError("down", status_code=503))
        health.record_failure(keys, APIStatusError("bad", status_code=400))  # org's config
    up = [
        s.labels["key"]
        for family in REGISTRY.collect()
        if family.name == "voice_agent_provider_up"
        for s in family.samples
        if "bounded-" in s.labels["key"]
    ]
    assert len(up) == 3 and not any("~" in k for k in up), up
