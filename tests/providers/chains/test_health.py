"""The process-wide breaker registry on its own: scopes, cool-down, half-open probing."""

from __future__ import annotations

from livekit.agents import APIConnectionError, APIStatusError, APITimeoutError
from pydantic import SecretStr

from providers.catalogue import provider_config
from providers.chains.health import BreakerState, HealthKeys, HealthRegistry
from providers.types import ProviderConfig, ProviderKind

KEY = "sk-test-HEALTH-secret-777"


def config(key: str = KEY, base_url: str = "https://api.example.com") -> ProviderConfig:
    return provider_config(
        provider="elevenlabs",
        kind=ProviderKind.TTS,
        options={"base_url": base_url},
        secrets={"apiKey": SecretStr(key)},
    )


def status(code: int) -> APIStatusError:
    return APIStatusError("x", status_code=code)


def test_keys_hash_the_credential_and_never_hold_it() -> None:
    keys = HealthKeys.of(config())
    assert keys.endpoint == "tts/elevenlabs@https://api.example.com"
    assert keys.credential is not None and KEY not in keys.credential
    assert HealthKeys.of(config(key="another")).credential != keys.credential


def test_auth_and_quota_failures_are_per_credential_outages_per_endpoint() -> None:
    health = HealthRegistry()
    acme, globex = HealthKeys.of(config()), HealthKeys.of(config(key="globex-key"))
    health.record_failure(acme, status(429))
    assert health.is_down(acme) and not health.is_down(globex)  # same endpoint, other key
    health.record_failure(acme, APIConnectionError())
    assert health.is_down(globex)  # the endpoint itself is down now


def test_cooldown_then_one_probe_then_closed_or_open_again() -> None:
    now = [0.0]
    health = HealthRegistry(cooldown=5.0, clock=lambda: now[0])
    keys = HealthKeys.of(config())
    health.record_failure(keys, status(500))
    assert not health.allow(keys)
    now[0] = 5.0
    assert health.allow(keys)  # the probe
    assert not health.allow(keys)  # only one at a time
    health.record_failure(keys, APITimeoutError())
    assert health.is_down(keys)
    now[0] = 10.0
    assert health.allow(keys)
    health.record_success(keys)
    assert health.allow(keys) and health.allow(keys)
    assert {b.state for b in health.snapshot()} == {BreakerState.CLOSED}


def test_a_cancelled_probe_frees_the_slot() -> None:
    now = [0.0]
    health = HealthRegistry(cooldown=1.0, clock=lambda: now[0])
    keys = HealthKeys.of(config())
    health.record_failure(keys, status(503))
    now[0] = 2.0
    assert health.allow(keys)
    health.release(keys)
    assert health.allow(keys)


def test_order_puts_down_providers_last_and_keeps_priority() -> None:
    health = HealthRegistry()
    a, b, c = (config(base_url=f"https://{n}.example.com") for n in "abc")
    health.record_failure(HealthKeys.of(a), APIConnectionError())
    assert health.order([a, b, c], HealthKeys.of) == [b, c, a]


def test_snapshot_reason_names_the_failure_not_its_text() -> None:
    health = HealthRegistry()
    health.record_failure(
        HealthKeys.of(config()), APIStatusError(f"bad key {KEY}", status_code=401)
    )
    (info,) = health.snapshot()
    assert info.reason == "APIStatusError (HTTP 401)" and KEY not in repr(info)


def test_why_skipped_says_what_failed_and_when_it_is_tried_again() -> None:
    now = [0.0]
    health = HealthRegistry(cooldown=30.0, clock=lambda: now[0])
    keys = HealthKeys.of(config())
    health.record_failure(keys, status(503))
    now[0] = 10.0
    assert not health.allow(keys)
    assert health.why_skipped(keys) == (
        "it failed 10 s ago (APIStatusError (HTTP 503)); every call skips it until one call "
        "tries it again in 20 s (PROVIDER_COOLDOWN)"
    )
    now[0] = 30.0
    assert health.allow(keys)  # this call probes; the next is turned away
    assert not health.allow(keys)
    assert health.why_skipped(keys) == (
        "it failed 30 s ago (APIStatusError (HTTP 503)); another call is trying it now"
    )
